"""The OpenAPI 3.1 description of the API (api.py), served at /api/v1/openapi.json.

Its Run and Job schemas list the keys of store.readhistory.run_json and JobRow.to_json; tests
check that they name exactly RUN_JSON_KEYS, the document against the OpenAPI schema, and a real
supervisor's replies against the document (a run with a key not described fails it).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_NUM = {"type": ["number", "null"]}

RUN_PROPERTIES: dict[str, Any] = {
    "run_id": {"type": "integer"},
    "job": {"type": "string"},
    "attempt": {"type": "integer"},
    "status": {"type": "string", "enum": ["running", "success", "failed", "timeout", "skipped", "upstream_failed",
                                          "missed", "interrupted"]},
    "exit_code": NULLABLE_INT,
    "signal": NULLABLE_INT,
    "reason": NULLABLE_STR,
    "trigger": {"type": "string", "enum": ["schedule", "catch-up", "manual", "reboot", "retry", "backfill"]},
    "host": NULLABLE_STR,
    "scheduled_at": NULLABLE_TIME,
    "started_at": NULLABLE_TIME,
    "ended_at": NULLABLE_TIME,
    "duration_s": NULLABLE_NUM,
    "log_path": NULLABLE_STR,
    "params": {"type": "object", "description": "the run's parameters ({} for none)"},
    "outputs": {"type": "object", "description": "what the run recorded as outputs ({} for none)"},
    "queued_s": NULLABLE_NUM,
    "sensor_s": NULLABLE_NUM,
    "peak_memory_bytes": NULLABLE_INT,
    "cpu_s": NULLABLE_NUM,
    "slow_at": NULLABLE_TIME,
    "queue": NULLABLE_STR,
}
JOB_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string"},
    "job": {"type": "string"},
    "schedule": NULLABLE_STR,
    "tz": NULLABLE_STR,
    "after": {"type": "array", "items": {"type": "string"}},
    "next_run": NULLABLE_TIME,
    "last_run_id": NULLABLE_INT,
    "last_status": NULLABLE_STR,
    "last_start": NULLABLE_TIME,
    "last_end": NULLABLE_TIME,
    "duration_s": NULLABLE_NUM,
    "running": {"type": "array", "items": {"type": "integer"}},
    "waiting": {"type": "boolean"},
    "paused": {"type": "boolean"},
    "paused_since": NULLABLE_TIME,
    "paused_by": NULLABLE_STR,
    "paused_all": {"type": "boolean", "description": "paused by `cronplus pause --all`"},
    "last_run": {"oneOf": [{"$ref": "#/components/schemas/Run"}, {"type": "null"}]},
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, ref: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _param(name: str, where: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "description": description, "required": required, "schema": schema}


NAME = _param("name", "path", "the job's name", {"type": "string"}, required=True)
RUN_ID = _param("run_id", "path", "the run's id", {"type": "integer", "minimum": 1}, required=True)


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    from cronplus import __version__

    return {
        "openapi": "3.1.0",
        "info": {"title": "cronplus", "version": __version__,
                 "description": "The jobs and runs of one cronplus supervisor. Reads need no token; "
                                "actions need `Authorization: Bearer TOKEN` (the token is in the state "
                                "directory, `http.token`) or the session cookie set by `POST /login`."},
        "servers": [{"url": "/"}],
        "paths": {
            "/api/v1/jobs": {"get": {
                "summary": "Every job of the crontab in effect, with its last run and runs in progress",
                "operationId": "listJobs",
                "responses": {"200": _ok("the jobs", "#/components/schemas/JobList")}}},
            "/api/v1/jobs/{name}": {"get": {
                "summary": "One job, with its options (alert and ping destinations only as set / not set)",
                "operationId": "getJob", "parameters": [NAME],
                "responses": {"200": _ok("the job", "#/components/schemas/JobDetail"),
                              "404": _error("no such job (suggestion: the closest name)")}}},
            "/api/v1/jobs/{name}/trigger": {"post": {
                "summary": "Start a run of the job now, as `cronplus trigger`",
                "operationId": "triggerJob", "security": [{"bearer": []}, {"session": []}],
                "parameters": [NAME, _param("force", "query", "run even if after= or overlap= would refuse",
                                            {"type": "string", "enum": ["0", "1", "true", "false"]})],
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"force": {"type": "boolean"}, "params": {
                        "type": "object", "additionalProperties": {"type": "string", "maxLength": 4096},
                        "maxProperties": 64,
                        "description": "CRONPLUS_PARAM_<K>=V for the run (K: letters, digits, _; case kept)"}}}}}},
                "responses": {"202": _ok("the run is started (run_id null: queued behind a run of the job)",
                                         "#/components/schemas/Triggered"),
                              "400": _error("a body that is not a JSON object, or bad params"),
                              "401": _error("no token"),
                              "403": _error("a cross-site request"),
                              "404": _error("no such job"),
                              "409": _error("after= or overlap= refuse it (force would start it)"),
                              "503": _error("the supervisor is stopping")}}},
            **{f"/api/v1/jobs/{{name}}/{verb}": {"post": {
                "summary": f"{verb.capitalize()} the job, as `cronplus {verb}` (persisted; trigger still runs a paused job)",
                "operationId": f"{verb}Job", "security": [{"bearer": []}, {"session": []}], "parameters": [NAME],
                "responses": {"200": _ok(f"{verb}d", "#/components/schemas/Paused"),
                              "401": _error("no token"),
                              "403": _error("a cross-site request"),
                              "404": _error("no such job (suggestion: the closest name)")}}}
               for verb in ("pause", "resume")},
            "/api/v1/runs": {"get": {
                "summary": "Runs, newest first, as `cronplus log --json`",
                "operationId": "listRuns",
                "parameters": [
                    _param("job", "query", "a job name or fnmatch glob; may repeat", {"type": "string"}),
                    _param("status", "query", "a run status; may repeat", RUN_PROPERTIES["status"]),
                    _param("since", "query", "as `cronplus log --since`: ISO 8601, @UNIX, -2h, today...",
                           {"type": "string"}),
                    _param("until", "query", "as `cronplus log --until`", {"type": "string"}),
                    _param("limit", "query", "at most this many runs (default 50)",
                           {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _param("before", "query", "the cursor: runs with a smaller id (see `next`)",
                           {"type": "integer", "minimum": 1})],
                "responses": {"200": _ok("a page of runs", "#/components/schemas/RunPage"),
                              "400": _error("a bad parameter")}}},
            "/api/v1/runs/{run_id}": {"get": {
                "summary": "One run", "operationId": "getRun", "parameters": [RUN_ID],
                "responses": {"200": _ok("the run", "#/components/schemas/Run"),
                              "400": _error("not a run id"), "404": _error("no such run")}}},
            "/api/v1/runs/{run_id}/output": {"get": {
                "summary": "The run's captured output, bytes as written",
                "operationId": "getRunOutput",
                "parameters": [RUN_ID,
                               _param("offset", "query", "start at this byte", {"type": "integer", "minimum": 0}),
                               _param("follow", "query", "1: keep sending what a running run writes until it ends",
                                      {"type": "string", "enum": ["0", "1", "true", "false"]})],
                "responses": {"200": {"description": "the output (X-Run-Status: the run's status)",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}},
                              "404": _error("no such run, or it never started"),
                              "410": _error("its log was deleted by retention")}}},
            "/metrics": {"get": {
                "summary": "Prometheus metrics", "operationId": "metrics",
                "responses": {"200": {"description": "text format 0.0.4",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/healthz": {"get": {
                "summary": "Whether the scheduling loop lives", "operationId": "healthz",
                "responses": {"200": {"description": "ok", "content": {"text/plain": {"schema": {"type": "string"}}}},
                              "503": {"description": "the scheduling loop is dead or stuck",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "session": {"type": "apiKey", "in": "cookie", "name": "cronplus_session"}},
            "schemas": {
                "Run": {"type": "object", "required": list(RUN_PROPERTIES), "properties": RUN_PROPERTIES,
                        "additionalProperties": False},
                "Job": {"type": "object", "required": list(JOB_PROPERTIES), "properties": JOB_PROPERTIES},
                "JobDetail": {"allOf": [{"$ref": "#/components/schemas/Job"}], "type": "object",
                              "required": ["options"], "properties": {"options": {"type": "object"}}},
                "JobList": {"type": "object", "required": ["jobs"],
                            "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}}},
                "RunPage": {"type": "object", "required": ["runs", "next"],
                            "properties": {"runs": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}},
                                           "next": NULLABLE_STR}},
                "Triggered": {"type": "object", "required": ["ok", "run_id", "notes"],
                              "properties": {"ok": {"const": True}, "run_id": NULLABLE_INT,
                                             "notes": {"type": "array", "items": {"type": "string"}}}},
                "Paused": {"type": "object", "required": ["ok", "jobs", "all", "resumed"],
                           "properties": {"ok": {"const": True}, "jobs": {"type": "array", "items": {"type": "string"}},
                                          "all": {"type": "boolean"}, "resumed": {"type": "boolean"}}},
                "Error": {"type": "object", "required": ["error", "status"],
                          "properties": {"error": {"type": "string"}, "status": {"type": "integer"},
                                         "suggestion": NULLABLE_STR, "refused": {"type": "boolean"}}},
            },
        },
    }

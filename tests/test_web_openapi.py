"""`/api/v1/openapi.json` is a valid OpenAPI 3.1 document (openapi-spec-validator), names every
API route the server has, and the replies of a real supervisor validate against its schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from cronplus.web import api, metrics
from tests.web_supervisor import start_web

JOBS = """\
# cronplus: name=hello
0 0 1 1 * echo hello
# cronplus: name=after-hello after=hello
0 0 1 1 * true
"""


def check(document: dict[str, Any], schema: str, instance: Any) -> None:
    root = {"components": document["components"], "$ref": f"#/components/schemas/{schema}"}
    errors = [e.message for e in Draft202012Validator(root).iter_errors(instance)]
    assert errors == [], (schema, errors)


def test_the_document_is_valid_openapi_and_names_every_route() -> None:
    from cronplus.web.openapi import document

    doc = document()
    validate(doc)
    described = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = {(r.method, r.pattern) for r in [*api.ROUTES, *metrics.ROUTES]
              if r.pattern not in ("/login", "/logout", "/api/v1/openapi.json")}
    assert described == served
    assert {("POST", "/api/v1/jobs/{name}/pause"), ("POST", "/api/v1/jobs/{name}/resume")} <= described  # issue 13
    from cronplus.store.readhistory import RUN_JSON_KEYS

    assert list(doc["components"]["schemas"]["Run"]["properties"]) == list(RUN_JSON_KEYS)


@pytest.mark.e2e
def test_the_replies_of_a_real_supervisor_follow_the_document(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    doc = sup.get("/api/v1/openapi.json").json()
    validate(doc)
    triggered = sup.trigger("hello")
    check(doc, "Triggered", triggered.json())
    sup.wait_final(triggered.json()["run_id"])
    check(doc, "JobList", sup.get("/api/v1/jobs").json())
    check(doc, "JobDetail", sup.get("/api/v1/jobs/after-hello").json())
    page = sup.get("/api/v1/runs?limit=1").json()
    check(doc, "RunPage", page)
    assert page["runs"] and page["next"]
    check(doc, "Run", page["runs"][0])
    for path in ("/api/v1/runs/999", "/api/v1/jobs/nope", "/api/v1/runs?limit=-1"):
        check(doc, "Error", sup.get(path).json())
    check(doc, "Error", sup.trigger("nope").json())

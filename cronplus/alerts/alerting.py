"""Which alerts a run's end deserves, with incident semantics; enqueue them in the outbox.

`Alerting.subscribe(bus)` makes it a transactional subscriber of the run events
(engine/events.py): RunStarted, RunEnded, RunNotRun, TicksMissed and ConfigRejected reach
`on_start/on_end/on_not_run/on_config_error` inside the transaction of the history write they
are about. Each call is a few SQL statements on the History connection (no network:
delivery.py sends later) in a savepoint of its own, and never raises (an alert problem must
never fail a job) but for a storage error, which the scheduler's Store holds with the write.
A backfill's runs (the events' `backfill`, retries too) get nothing here: no alert, ping or mail,
and they neither open, count in nor close an incident (README "Backfill": all are the schedule's).

Incidents, so a minutely job that breaks does not send 60 alerts an hour (state per job in the
kv table, key `alert.incident.<job>`, JSON):

- the first final failure opens an incident and sends `failure` (or `timeout` when the run
  timed out: a timeout *is* a failure; if `timeout` is not in alert-on but `failure` is, it is
  sent as `failure` with status `timeout`);
- further failures while it is open are counted and stay quiet, except a reminder (same event,
  `incident.reminder: true`) at most every `alert-remind` seconds;
- `slow` (alerts/slowalert.py, on RunSlow): once per run, while it still runs;
- the next success closes it with one `recovery` carrying the number of failed runs and the
  incident's duration (first failing tick to the recovering run's end);
- `retry` (an attempt failed and another follows) and `success` are sent each time, if enabled;
  `skipped` (skip-exit) and `interrupted` runs neither open nor close incidents;
- `missed` / `upstream_failed` are sent once, then at most every `alert-remind` until the job
  succeeds again; `config_error` once per distinct error text (again after `alert-remind`).

Cron mail (README "Alerts", mail.py): a run made final (no retry follows) that wrote output or ended
`failed`/`timeout`, on a line with a non-empty MAILTO, gets one `mail` row holding the whole
message (its output read from the log now, so a later log prune loses nothing); an alert to
`alert=mailto:ADDR` is a `mail` row too. The delivery worker runs the mailer (maildelivery.py).

Pings (healthchecks.io / Cronitor): `/start` at each attempt's start, the base URL on success
(and skip), `/fail` on a final failure or timeout, with the output tail as body.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cronplus.alerts import mail, payloads, slowalert
from cronplus.clock import Clock, SystemClock
from cronplus.crontab.mailto import MAILTO_SCHEME
from cronplus.engine import events
from cronplus.status import AlertEvent, RunStatus
from cronplus.store.faults import is_storage_error

if TYPE_CHECKING:
    from cronplus.errors import CrontabError
    from cronplus.model import JobOptions, JobSpec, RunRecord
    from cronplus.store.api import AlertStore, OutboxWriter

log = logging.getLogger("cronplus.alerts")

_FAILURES = (RunStatus.FAILED, RunStatus.TIMEOUT)


def read_tail(log_path: str | None, *, max_bytes: int = payloads.OUTPUT_TAIL_BYTES,
              max_lines: int = payloads.OUTPUT_TAIL_LINES) -> tuple[str, bool]:
    """The last lines of a run's log (at most `max_bytes`), and whether anything was cut."""
    if not log_path:
        return "", False
    try:
        with open(log_path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            raw = f.read(max_bytes)
    except OSError:
        return "", False
    text = raw.decode("utf-8", errors="replace")
    lines = text.splitlines()
    tail = payloads.tail_text(text, max_bytes=max_bytes, max_lines=max_lines)
    return tail, size > max_bytes or len(lines) > max_lines


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _version() -> str:
    from cronplus import __version__

    return __version__


def new_payload(data: dict[str, Any], *, now: float) -> dict[str, Any]:
    """The stored payload: the envelope plus the webhook-id every attempt reuses. A run's alert
    has the id of its event (job, event, run; never the host): the supervisors of a cluster
    sharing the store name one event alike, so a receiver can drop a second delivery of it."""
    run_id = data.get("run_id")
    key = f"cronplus:{data.get('job')}:{data.get('event')}:{run_id}" if run_id is not None else None
    return {"id": f"msg_{(uuid.uuid5(uuid.NAMESPACE_URL, key) if key else uuid.uuid4()).hex}",
            **payloads.envelope(data, timestamp=now)}


def enqueue_alert(
    store: OutboxWriter, options: JobOptions, data: dict[str, Any], *, now: float, run_id: int | None = None
) -> int | None:
    """One outbox row for `options.alert`, or None when the job has no alert target."""
    if not options.alert:
        return None
    if options.alert.startswith(MAILTO_SCHEME):
        recipients = mail.split_recipients(options.alert[len(MAILTO_SCHEME):])
        message = mail.alert_message(recipients=recipients, sender=own_user(), data=data)
        return store.enqueue_outbox(kind="mail", event=str(data["event"]), job=data.get("job"), run_id=run_id,
                                    target=options.alert, format="mail", secret_ref=None,
                                    payload={"recipients": list(recipients), "message": message,
                                             "sender": mail.envelope_sender(own_user(), socket.gethostname())},
                                    now=now)
    return store.enqueue_outbox(
        kind="alert",
        event=str(data["event"]),
        job=data.get("job"),
        run_id=run_id,
        target=options.alert,
        format=str(options.alert_format),
        secret_ref=options.alert_secret,
        payload=new_payload(data, now=now),
        now=now,
    )


def own_user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def test_alert_data(job: JobSpec, *, host: str) -> dict[str, Any]:
    return {
        "event": str(AlertEvent.TEST),
        "job": job.name,
        "run_id": None,
        "attempt": None,
        "status": None,
        "exit_code": None,
        "message": "test alert sent by `cronplus alerts --test`",
        "host": host,
        "output_tail": "",
        "cronplus_version": _version(),
    }


def _reraise_storage(exc: Exception) -> None:
    """A full (or read-only) disk is not an alerting failure: the caller's Store holds the whole
    write, the run's end with this decision, and makes it again when the disk takes it."""
    if is_storage_error(exc):
        raise exc


class Alerting:
    """Run events -> outbox rows. Used from the scheduler's thread only."""

    def __init__(
        self,
        history: AlertStore,
        *,
        clock: Clock | None = None,
        wake: Callable[[], None] | None = None,
        hostname: str | None = None,
    ) -> None:
        self.history = history
        self.clock = clock or SystemClock()
        self._wake = wake
        self.hostname = hostname or socket.gethostname()

    def subscribe(self, bus: events.Bus) -> None:
        bus.subscribe(events.RunStarted, lambda e: None if e.backfill else self.on_start(e.job, e.record), transactional=True)
        bus.subscribe(events.RunEnded, lambda e: None if e.backfill else self.on_end(e.job, e.record, will_retry=e.will_retry), transactional=True)
        bus.subscribe(events.RunNotRun, self._run_not_run, transactional=True)
        bus.subscribe(events.TicksMissed, self._ticks_missed, transactional=True)
        bus.subscribe(events.ConfigRejected, self._config_rejected, transactional=True)
        bus.subscribe(events.RunSlow, lambda e: slowalert.on_slow(self, e, enqueue_alert), transactional=True)  # alert-on=slow

    def _run_not_run(self, event: events.RunNotRun) -> None:
        if not event.backfill and event.record.status is not RunStatus.SKIPPED:  # a skip is no alert (a skip-exit end is on_end's)
            self.on_not_run(event.job, event.record)

    def _ticks_missed(self, event: events.TicksMissed) -> None:
        if event.records:  # one alert for the whole gap, not one per tick
            self.on_not_run(event.job, event.records[-1])

    def _config_rejected(self, event: events.ConfigRejected) -> None:
        from cronplus.errors import CrontabError

        if isinstance(event.error, CrontabError):  # an unreadable file is the log's (and STATUS='s)
            self.on_config_error(event.defaults, event.error)

    # -- the decisions' entry points (never raise) ---------------------------------------------
    def on_start(self, job: JobSpec, record: RunRecord) -> None:
        try:
            if job.options.ping:
                self._ping(job, record, "start", body="")
                self._notify()
        except Exception as exc:  # noqa: BLE001 - alerts never fail a job
            _reraise_storage(exc)
            log.exception("alerting: on_start for %s failed", job.name)

    def on_end(self, job: JobSpec, record: RunRecord, *, will_retry: bool) -> None:
        try:
            recipients = mail.mailto(job)
            if job.options.alert or job.options.ping or recipients:
                with self.history.transaction():  # the decision's state and rows: all or nothing
                    self._on_end(job, record, will_retry)
                    if recipients and not will_retry:
                        self._cron_mail(job, record, recipients)
                self._notify()
        except Exception as exc:  # noqa: BLE001
            _reraise_storage(exc)
            log.exception("alerting: on_end for %s failed", job.name)

    def on_not_run(self, job: JobSpec, record: RunRecord) -> None:
        try:
            if job.options.alert:
                with self.history.transaction():  # the decision's state and rows: all or nothing
                    self._on_not_run(job, record)
                self._notify()
        except Exception as exc:  # noqa: BLE001
            _reraise_storage(exc)
            log.exception("alerting: on_not_run for %s failed", job.name)

    def on_config_error(self, defaults: JobOptions, error: CrontabError) -> None:
        try:
            if defaults.alert and AlertEvent.CONFIG_ERROR in defaults.alert_on:
                with self.history.transaction():  # the decision's state and rows: all or nothing
                    self._on_config_error(defaults, error)
                self._notify()
        except Exception as exc:  # noqa: BLE001
            _reraise_storage(exc)
            log.exception("alerting: on_config_error failed")

    # -- decisions ----------------------------------------------------------------------------
    def _on_end(self, job: JobSpec, record: RunRecord, will_retry: bool) -> None:
        opts = job.options
        tail, cut = read_tail(record.log_path)
        if record.status in _FAILURES:
            if will_retry:
                if AlertEvent.RETRY in opts.alert_on:
                    self._alert(job, record, AlertEvent.RETRY, tail, cut)
                return
            self._ping(job, record, "fail", body=tail)
            self._final_failure(job, record, tail, cut)
        elif record.status is RunStatus.SUCCESS:
            self._ping(job, record, "success", body=tail)
            self._success(job, record, tail, cut)
        elif record.status is RunStatus.SKIPPED:
            self._ping(job, record, "success", body=tail)

    def _final_failure(self, job: JobSpec, record: RunRecord, tail: str, cut: bool) -> None:
        opts, now = job.options, self.clock.time()
        state = self._load(job.name)
        event = AlertEvent.TIMEOUT if record.status is RunStatus.TIMEOUT else AlertEvent.FAILURE
        incident = state.get("incident")
        if incident is None:
            since = _ts(record.scheduled_at) or _ts(record.started_at) or now
            incident = {"event": str(event), "since": since, "first_run_id": record.run_id, "failed_runs": 1,
                        "last_alert_at": now, "alerts": 0}
            send, reminder = True, False
        else:
            incident["failed_runs"] += 1
            send = now - float(incident.get("last_alert_at") or 0) >= opts.alert_remind
            reminder = True
        chosen = event if event in opts.alert_on else (AlertEvent.FAILURE if AlertEvent.FAILURE in opts.alert_on else None)
        if send:
            incident["last_alert_at"] = now
            if chosen is not None:
                info = self._incident_info(incident, end=_ts(record.ended_at) or now, reminder=reminder)
                self._alert(job, record, chosen, tail, cut, incident=info)
                incident["alerts"] += 1
        state["incident"] = incident
        self._save(job.name, state)

    def _success(self, job: JobSpec, record: RunRecord, tail: str, cut: bool) -> None:
        opts = job.options
        state = self._load(job.name)
        incident = state.pop("incident", None)
        changed = incident is not None or bool(state.pop("not_run", None))
        if incident is not None and AlertEvent.RECOVERY in opts.alert_on:
            info = self._incident_info(incident, end=_ts(record.ended_at) or self.clock.time(), reminder=False)
            self._alert(job, record, AlertEvent.RECOVERY, tail, cut, incident=info)
        if AlertEvent.SUCCESS in opts.alert_on:
            self._alert(job, record, AlertEvent.SUCCESS, tail, cut)
        if changed:
            self._save(job.name, state)

    def _on_not_run(self, job: JobSpec, record: RunRecord) -> None:
        if record.status not in (RunStatus.MISSED, RunStatus.UPSTREAM_FAILED):
            return
        event = AlertEvent(str(record.status))
        if event not in job.options.alert_on:
            return
        now = self.clock.time()
        state = self._load(job.name)
        not_run = state.setdefault("not_run", {})
        last = not_run.get(str(event))
        if last is not None and now - float(last) < job.options.alert_remind:
            return
        not_run[str(event)] = now
        self._alert(job, record, event, "", False)
        self._save(job.name, state)

    def _on_config_error(self, defaults: JobOptions, error: CrontabError) -> None:
        text = str(error)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        now = self.clock.time()
        key = "alert.config_error"
        raw = self._kv_get(key)
        state = json.loads(raw) if raw else {}
        if state.get("digest") == digest and now - float(state.get("last_alert_at", 0)) < defaults.alert_remind:
            return
        diagnostics = getattr(error, "diagnostics", ())
        data = {
            "event": str(AlertEvent.CONFIG_ERROR),
            "job": None,
            "path": diagnostics[0].loc.path if diagnostics else None,
            "errors": [str(d) for d in diagnostics[:20]] or [text[:2000]],
            "message": f"crontab reload refused, the previous crontab stays in effect: {text.splitlines()[0] if text else ''}"[:500],
            "host": self.hostname,
            "output_tail": "\n".join(text.splitlines()[:20])[: payloads.OUTPUT_TAIL_BYTES],
            "cronplus_version": _version(),
        }
        enqueue_alert(self.history, defaults, data, now=now)
        self._kv_set(key, json.dumps({"digest": digest, "last_alert_at": now}))

    def _cron_mail(self, job: JobSpec, record: RunRecord, recipients: tuple[str, ...]) -> None:
        """cron's mail of a final run: when it wrote output (as cron) or failed (cronplus too)."""
        output, left_out = mail.read_output(record.log_path)
        if not output and record.status not in _FAILURES:
            return
        if left_out:
            sep = "" if output.endswith("\n") else "\n"
            output += f"{sep}[cronplus: {left_out} more bytes of output: cronplus output {record.run_id}]\n"
        user = job.user or own_user()
        message = mail.cron_message(
            job=job, recipients=recipients, user=user, hostname=self.hostname, output=output,
            status_line=mail.status_line(job=job.name, run_id=record.run_id, attempt=record.attempt,
                                         status=str(record.status), reason=record.reason),
            cron_env=self._cron_env(job, record),
        )
        self.history.enqueue_outbox(kind="mail", event=str(record.status), job=job.name, run_id=record.run_id,
                                    target=MAILTO_SCHEME + ",".join(recipients), format="mail", secret_ref=None,
                                    payload={"recipients": list(recipients), "message": message,
                                             "sender": mail.envelope_sender(mail.mailfrom(job, user), self.hostname)},
                                    now=self.clock.time())

    def _cron_env(self, job: JobSpec, record: RunRecord) -> list[tuple[str, str]]:
        """The job's environment as the runner built it, for cronie's X-Cron-Env headers."""
        import pwd

        from cronplus.engine.runner import build_env

        try:
            pw = pwd.getpwnam(job.user) if job.user else pwd.getpwuid(os.getuid())
        except KeyError:
            return list(job.env)
        when = record.scheduled_at or record.started_at or datetime.fromtimestamp(self.clock.time())
        return list(build_env(job, run_id=record.run_id, attempt=record.attempt, scheduled_at=when, user=pw).items())

    # -- building and storing -------------------------------------------------------------------
    def _incident_info(self, incident: dict[str, Any], *, end: float, reminder: bool) -> dict[str, Any]:
        since = float(incident["since"])
        return {
            "failed_runs": int(incident["failed_runs"]),
            "since": payloads.iso(since),
            "duration_s": round(max(0.0, end - since), 3),
            "first_run_id": incident.get("first_run_id"),
            "reminder": reminder,
        }

    def _data(self, job: JobSpec, record: RunRecord, event: AlertEvent, tail: str, cut: bool) -> dict[str, Any]:
        duration = record.duration_s
        return {
            "event": str(event),
            "job": job.name,
            "run_id": record.run_id,
            "attempt": record.attempt,
            "status": str(record.status),
            "exit_code": record.exit_code,
            "reason": record.reason,
            "trigger": str(record.trigger),
            "scheduled_at": payloads.iso(record.scheduled_at),
            "started_at": payloads.iso(record.started_at),
            "ended_at": payloads.iso(record.ended_at),
            "duration_s": round(duration, 3) if duration is not None else None,
            "host": self.hostname,
            "output_tail": tail,
            "output_truncated": cut,
            "incident": None,
            "cronplus_version": _version(),
        }

    def _alert(self, job: JobSpec, record: RunRecord, event: AlertEvent, tail: str, cut: bool,
               incident: dict[str, Any] | None = None) -> None:
        data = self._data(job, record, event, tail, cut)
        data["incident"] = incident
        enqueue_alert(self.history, job.options, data, now=self.clock.time(), run_id=record.run_id)

    def _ping(self, job: JobSpec, record: RunRecord, event: str, *, body: str) -> None:
        if not job.options.ping:
            return
        self.history.enqueue_outbox(
            kind="ping",
            event=event,
            job=job.name,
            run_id=record.run_id,
            target=job.options.ping,
            format="json",
            secret_ref=None,
            payload={"body": body, "rid": self._ping_run_id(job, record)},
            now=self.clock.time(),
        )

    def _ping_run_id(self, job: JobSpec, record: RunRecord) -> str:
        """healthchecks' `rid`: one UUID per run (a job's tick, across its attempts), the same for
        its /start and its end, so overlapping runs (overlap=allow) get their own durations."""
        tick = _ts(record.scheduled_at) or _ts(record.started_at)
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cronplus:{job.name}:{tick}"))  # not the host: one run, one rid in a cluster

    def _notify(self) -> None:
        if self._wake is not None:
            self.history.after_commit(self._wake)

    def _load(self, job: str) -> dict[str, Any]:
        raw = self._kv_get(f"alert.incident.{job}")
        try:
            return dict(json.loads(raw)) if raw else {}
        except ValueError:
            return {}

    def _save(self, job: str, state: dict[str, Any]) -> None:
        self._kv_set(f"alert.incident.{job}", json.dumps(state, sort_keys=True))

    def _kv_get(self, key: str) -> str | None:
        value = self.history.kv_get(key)
        return None if value is None else str(value)

    def _kv_set(self, key: str, value: str) -> None:
        self.history.kv_set(key, value)

"""Alert payloads, pure: an event's data dict in, the HTTP body + headers for each format out.

The event data (the `data` of the JSON envelope, documented in docs/alerts.md) is built once, at
enqueue time, and stored in the outbox; the format is applied at send time by `render`, so a
payload never has to be rebuilt from history. Every builder keeps within the receiving service's
limits (Slack section text 3,000 chars, header 150; Discord content 2,000, embed title 256,
description 4,096, field value 1,024, 6,000 in all; titles counted in UTF-16 code units, as
those services count, so an emoji counts 2; ntfy messages over 4,096 bytes become attachments).
No I/O here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cronplus.status import AlertEvent, AlertFormat

OUTPUT_TAIL_BYTES = 4096
OUTPUT_TAIL_LINES = 20

_TITLES: dict[str, str] = {
    AlertEvent.FAILURE: "failed",
    AlertEvent.TIMEOUT: "timed out",
    AlertEvent.RETRY: "failed, will retry",
    AlertEvent.RECOVERY: "recovered",
    AlertEvent.MISSED: "missed a run",
    AlertEvent.UPSTREAM_FAILED: "not run: upstream failed",
    AlertEvent.SUCCESS: "succeeded",
    AlertEvent.CONFIG_ERROR: "crontab reload refused",
    AlertEvent.TEST: "test alert",
    AlertEvent.SLOW: "is running slow",
}
_EMOJI: dict[str, str] = {
    AlertEvent.FAILURE: "🔴",
    AlertEvent.TIMEOUT: "⏱️",
    AlertEvent.RETRY: "🔁",
    AlertEvent.RECOVERY: "✅",
    AlertEvent.MISSED: "⚠️",
    AlertEvent.UPSTREAM_FAILED: "⚠️",
    AlertEvent.SUCCESS: "✅",
    AlertEvent.CONFIG_ERROR: "⚠️",
    AlertEvent.TEST: "🧪",
    AlertEvent.SLOW: "🐢",
}
_COLORS: dict[str, int] = {  # Discord embed colour (RGB int); Teams uses the style names below
    AlertEvent.FAILURE: 0xD9363E,
    AlertEvent.TIMEOUT: 0xD9363E,
    AlertEvent.RETRY: 0xE8A33D,
    AlertEvent.RECOVERY: 0x2EA043,
    AlertEvent.SUCCESS: 0x2EA043,
    AlertEvent.TEST: 0x4A90D9,
    AlertEvent.SLOW: 0xE8A33D,
}
_NTFY: dict[str, tuple[str, str]] = {  # event -> (Priority, Tags) per docs.ntfy.sh/publish
    AlertEvent.FAILURE: ("high", "rotating_light"),
    AlertEvent.TIMEOUT: ("high", "hourglass"),
    AlertEvent.RETRY: ("low", "repeat"),
    AlertEvent.RECOVERY: ("default", "white_check_mark"),
    AlertEvent.MISSED: ("default", "warning"),
    AlertEvent.UPSTREAM_FAILED: ("default", "warning"),
    AlertEvent.SUCCESS: ("low", "heavy_check_mark"),
    AlertEvent.CONFIG_ERROR: ("high", "warning"),
    AlertEvent.TEST: ("default", "test_tube"),
    AlertEvent.SLOW: ("default", "turtle"),
}


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What to POST: the body, its headers, and a suffix for the URL (pings: `/start`, `/fail`)."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    url_suffix: str = ""


def iso(ts: float | datetime | None) -> str | None:
    if ts is None:
        return None
    if isinstance(ts, datetime):
        return ts.isoformat()
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def event_type(event: str) -> str:
    """The envelope `type`: `cronplus.job.failure`, ..., `cronplus.config_error`."""
    return "cronplus.config_error" if event == AlertEvent.CONFIG_ERROR else f"cronplus.job.{event}"


def envelope(data: dict[str, Any], *, timestamp: float) -> dict[str, Any]:
    """The Standard Webhooks envelope: {"type", "timestamp", "data"}."""
    return {"type": event_type(str(data["event"])), "timestamp": iso(timestamp), "data": data}


def tail_text(text: str, *, max_bytes: int = OUTPUT_TAIL_BYTES, max_lines: int = OUTPUT_TAIL_LINES) -> str:
    """The last `max_lines` lines, at most `max_bytes` UTF-8 bytes (cut on a character)."""
    lines = text.splitlines()[-max_lines:] if max_lines else []
    out = "\n".join(lines)
    raw = out.encode("utf-8")
    if len(raw) > max_bytes:
        out = raw[-max_bytes:].decode("utf-8", errors="ignore")
    return out


def title(data: dict[str, Any]) -> str:
    """One line: `🔴 backup failed on web1`."""
    event = str(data.get("event", ""))
    who = data.get("job") or "cronplus"
    host = data.get("host")
    text = f"{_EMOJI.get(event, '')} {who} {_TITLES.get(event, event)}".strip()
    return f"{text} on {host}" if host else text


def _human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return " ".join(parts[:2])


def summary(data: dict[str, Any]) -> str:
    """The human sentence under the title: what happened, the reason, the incident so far."""
    event = data.get("event")
    bits: list[str] = []
    if data.get("reason"):
        bits.append(str(data["reason"]))
    elif data.get("status"):
        bits.append(f"status {data['status']}")
    if data.get("run_id") is not None:
        bits.append(f"run {data['run_id']} attempt {data.get('attempt', 1)}")
    incident = data.get("incident") or {}
    if event == AlertEvent.RECOVERY and incident:
        bits.append(
            f"after {incident.get('failed_runs', '?')} failed run(s) over {_human_duration(incident.get('duration_s'))}"
        )
    elif incident.get("reminder"):
        bits.append(
            f"still failing: {incident.get('failed_runs', '?')} failed run(s) over {_human_duration(incident.get('duration_s'))}"
        )
    if data.get("message"):
        bits.append(str(data["message"]))
    return "; ".join(bits)


def facts(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs of the run: job, status, exit code, attempt, run, when, host."""
    out = []
    for key, label in (("job", "Job"), ("status", "Status"), ("exit_code", "Exit code"), ("attempt", "Attempt"),
                       ("run_id", "Run"), ("scheduled_at", "Scheduled"), ("duration_s", "Duration"), ("host", "Host")):
        value = data.get(key)
        if value is None:
            continue
        if key == "duration_s":
            value = _human_duration(float(value))
        out.append((label, str(value)))
    return out


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: how Slack and Discord count their limits (JavaScript
    string length), so an emoji outside the BMP counts 2."""
    return len(text.encode("utf-16-le")) // 2


def clip_utf16(text: str, limit: int) -> str:
    """`text` within `limit` UTF-16 code units, cut on a code point (never half a surrogate
    pair) with an ellipsis (1 unit) when it had to be cut."""
    if utf16_len(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        size = 2 if ord(ch) > 0xFFFF else 1
        if used + size > limit - 1:
            break
        out.append(ch)
        used += size
    return "".join(out) + "…"


_clip = clip_utf16  # every Slack / Discord / Teams limit here is counted that way


def _code_block(text: str, limit: int) -> str:
    """A ``` block that cannot be closed early by the output itself, within `limit` chars."""
    body = text.replace("```", "`\u200b``")
    room = limit - 8
    if len(body) > room:
        body = "…" + body[-(room - 1) :]
    return f"```\n{body}\n```"


def render_json(payload: dict[str, Any]) -> HttpRequest:
    body = json.dumps({k: payload[k] for k in ("type", "timestamp", "data")}, separators=(",", ":"), ensure_ascii=False)
    return HttpRequest(body.encode("utf-8"), {"Content-Type": "application/json"})


def render_slack(payload: dict[str, Any]) -> HttpRequest:
    """Slack incoming webhook: `text` (notification fallback) + Block Kit `blocks`."""
    data = payload["data"]
    esc = _slack_escape
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip_utf16(title(data), 150), "emoji": True}},
    ]
    if summary(data):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(esc(summary(data)), 3000)}})
    pairs = facts(data)[:10]
    if pairs:
        fields = [{"type": "mrkdwn", "text": _clip(f"*{label}*\n{esc(value)}", 2000)} for label, value in pairs]
        blocks.append({"type": "section", "fields": fields})
    if data.get("output_tail"):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _code_block(esc(data["output_tail"]), 3000)}})
    # The fallback is mrkdwn too (it is the notification text): escaped like the blocks.
    body = {"text": clip_utf16(esc(f"{title(data)}: {summary(data)}"), 3000), "blocks": blocks}
    return HttpRequest(json.dumps(body, ensure_ascii=False).encode("utf-8"), {"Content-Type": "application/json"})


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats &, <, > as control characters (api.slack.com "Formatting text").
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_discord(payload: dict[str, Any]) -> HttpRequest:
    """Discord execute-webhook: `content` + one embed, within Discord's embed limits."""
    data = payload["data"]
    event = str(data.get("event"))
    description = _clip(summary(data), 1000)
    if data.get("output_tail"):
        description += "\n" + _code_block(data["output_tail"], 3000)
    embed: dict[str, Any] = {
        "title": clip_utf16(title(data), 256),
        "description": _clip(description, 4096),
        "color": _COLORS.get(event, 0xE8A33D),
        "fields": [{"name": label, "value": _clip(value, 1024), "inline": True} for label, value in facts(data)[:25]],
        "footer": {"text": f"cronplus {data.get('cronplus_version', '')}".strip()},
    }
    if payload.get("timestamp"):
        embed["timestamp"] = payload["timestamp"]
    body = {
        "content": clip_utf16(title(data), 2000),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},  # job output must never ping @everyone
    }
    return HttpRequest(json.dumps(body, ensure_ascii=False).encode("utf-8"), {"Content-Type": "application/json"})


def render_teams(payload: dict[str, Any]) -> HttpRequest:
    """Teams Workflows ("Post to a channel when a webhook request is received"): an Adaptive Card
    in a `message` envelope; the old Office 365 connector MessageCard is retired."""
    data = payload["data"]
    event = str(data.get("event"))
    good = event in (AlertEvent.RECOVERY, AlertEvent.SUCCESS, AlertEvent.TEST)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title(data), "weight": "Bolder", "size": "Medium", "wrap": True,
         "color": "Good" if good else "Attention"},
    ]
    if summary(data):
        body.append({"type": "TextBlock", "text": summary(data), "wrap": True})
    pairs = facts(data)
    if pairs:
        body.append({"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in pairs]})
    if data.get("output_tail"):
        body.append({"type": "TextBlock", "text": data["output_tail"], "fontType": "Monospace", "wrap": True,
                     "size": "Small"})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    message = {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}],
    }
    return HttpRequest(json.dumps(message, ensure_ascii=False).encode("utf-8"), {"Content-Type": "application/json"})


def render_ntfy(payload: dict[str, Any]) -> HttpRequest:
    """ntfy: POST the plain-text message to the topic URL; Title/Priority/Tags as headers."""
    data = payload["data"]
    priority, tags = _NTFY.get(str(data.get("event")), ("default", "bell"))
    text = summary(data) or title(data)
    if data.get("output_tail"):
        text += "\n\n" + data["output_tail"]
    raw = text.encode("utf-8")
    if len(raw) > 4000:  # over 4,096 bytes ntfy turns the message into an attachment
        raw = raw[:4000].decode("utf-8", errors="ignore").encode("utf-8")
    # HTTP header values are latin-1; the title drops the emoji (ntfy shows the tag's emoji).
    header_title = title(data).encode("ascii", errors="ignore").decode("ascii").strip()
    headers = {
        "Content-Type": "text/plain; charset=utf-8",
        "Title": _clip(header_title, 200),
        "Priority": priority,
        "Tags": f"{tags},cronplus",
    }
    return HttpRequest(raw, headers)


_RENDERERS = {
    AlertFormat.JSON: render_json,
    AlertFormat.SLACK: render_slack,
    AlertFormat.DISCORD: render_discord,
    AlertFormat.TEAMS: render_teams,
    AlertFormat.NTFY: render_ntfy,
}


def render(fmt: str, payload: dict[str, Any]) -> HttpRequest:
    """The request for an alert envelope in format `fmt`; ValueError for an unknown format."""
    return _RENDERERS[AlertFormat(fmt)](payload)


PING_SUFFIX = {"start": "/start", "success": "", "fail": "/fail"}


def render_ping(event: str, payload: dict[str, Any]) -> HttpRequest:
    """healthchecks.io / Cronitor convention: POST <base>/start, <base>, <base>/fail, with the
    run's `?rid=` (a UUID pairing a start with its end); the body (the output tail) is shown in
    the check's event log."""
    body = str(payload.get("body") or "").encode("utf-8")
    suffix = PING_SUFFIX[event]
    if payload.get("rid"):
        suffix += f"?rid={payload['rid']}"
    return HttpRequest(body, {"Content-Type": "text/plain; charset=utf-8"}, suffix)

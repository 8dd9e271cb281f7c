"""Payload builders: each format's shape and the receiving service's size limits."""

from __future__ import annotations

import json

import pytest

from cronplus.alerts import payloads


def envelope(event: str = "failure", tail: str = "line\n" * 5, **extra: object) -> dict:
    data = {
        "event": event, "job": "backup", "run_id": 7, "attempt": 3, "status": "failed", "exit_code": 2,
        "reason": "exit 2", "scheduled_at": "2026-01-01T03:00:00+01:00", "duration_s": 61.5,
        "host": "web1", "output_tail": tail, "incident": None, "cronplus_version": "0.1.0", **extra,
    }
    return payloads.envelope(data, timestamp=1700000000.0)


def test_json_is_the_standard_webhooks_envelope_with_type_timestamp_and_data() -> None:
    body = json.loads(payloads.render("json", {"id": "msg_x", **envelope()}).body)
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "cronplus.job.failure"
    assert body["timestamp"] == "2023-11-14T22:13:20Z"
    assert body["data"]["exit_code"] == 2 and body["data"]["job"] == "backup"


def test_config_error_has_its_own_type() -> None:
    assert payloads.event_type("config_error") == "cronplus.config_error"


def test_slack_has_fallback_text_and_blocks_within_slack_limits() -> None:
    body = json.loads(payloads.render("slack", envelope(tail="<x> & y\n" * 2000)).body)
    assert "backup failed" in body["text"]
    assert body["blocks"][0]["type"] == "header" and len(body["blocks"][0]["text"]["text"]) <= 150
    for block in body["blocks"]:
        if "text" in block:
            assert len(block["text"]["text"]) <= 3000
    assert "&lt;x&gt; &amp; y" in json.dumps(body)


def test_discord_stays_within_embed_limits_and_never_pings_anyone() -> None:
    body = json.loads(payloads.render("discord", envelope(tail="@everyone " + "x" * 9000)).body)
    embed = body["embeds"][0]
    assert len(body["content"]) <= 2000 and len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    total = len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"])
    total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= 6000
    assert body["allowed_mentions"] == {"parse": []}


def test_teams_is_an_adaptive_card_in_a_message_envelope() -> None:
    body = json.loads(payloads.render("teams", envelope()).body)
    assert body["type"] == "message"
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["type"] == "AdaptiveCard"
    assert any(b["type"] == "FactSet" for b in attachment["content"]["body"])


def test_ntfy_posts_plain_text_with_title_priority_and_tags_headers() -> None:
    request = payloads.render("ntfy", envelope(tail="boom\n" * 3000))
    assert request.headers["Priority"] == "high"
    assert "rotating_light" in request.headers["Tags"]
    assert request.headers["Title"].startswith("backup failed")
    request.headers["Title"].encode("latin-1")  # must be a valid header value
    assert len(request.body) <= 4096 and b"exit 2" in request.body


@pytest.mark.parametrize(("event", "suffix"), [("start", "/start"), ("success", ""), ("fail", "/fail")])
def test_pings_follow_the_healthchecks_url_convention(event: str, suffix: str) -> None:
    assert payloads.render_ping(event, {"body": "tail"}).url_suffix == suffix


def test_the_output_tail_keeps_the_last_lines_within_the_byte_cap() -> None:
    text = "".join(f"line {i}\n" for i in range(100))
    assert payloads.tail_text(text, max_lines=20).splitlines()[0] == "line 80"
    assert len(payloads.tail_text("é" * 5000, max_bytes=4096).encode()) <= 4096


def test_recovery_summary_says_how_many_runs_failed_and_for_how_long() -> None:
    env = envelope("recovery", incident={"failed_runs": 5, "duration_s": 3720.0, "reminder": False})
    assert "after 5 failed run(s) over 1h 2m" in payloads.summary(env["data"])

"""Slack and Discord count their limits in UTF-16 code units (JavaScript string length): a
title with an emoji outside the BMP must fit as they count it, cut on a whole code point; and
Slack's `text` fallback is mrkdwn, escaped like the blocks."""

from __future__ import annotations

import json

import pytest

from cronplus.alerts import payloads


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def no_lone_surrogate(text: str) -> bool:
    text.encode("utf-16-le")  # strict: a lone surrogate raises
    return True


def envelope(job: str, *, event: str = "failure", host: str = "web1", reason: str = "exit 2") -> dict:
    data = {"event": event, "job": job, "run_id": 7, "attempt": 1, "status": "failed", "exit_code": 2,
            "reason": reason, "host": host, "output_tail": "x", "incident": None, "cronplus_version": "0"}
    return payloads.envelope(data, timestamp=1700000000.0)


@pytest.mark.parametrize("length", range(230, 262))
def test_a_discord_embed_title_never_exceeds_256_utf16_units(length: int) -> None:
    # "🔴 <job> failed on web1": the emoji is 2 UTF-16 units but 1 Python character.
    job = "j" * (length - len("🔴  failed on web1") - 1)
    embed = json.loads(payloads.render("discord", envelope(job)).body)["embeds"][0]
    assert utf16(embed["title"]) <= 256 and no_lone_surrogate(embed["title"])
    assert embed["title"].startswith("🔴 jjj")


@pytest.mark.parametrize("length", range(130, 160))
def test_a_slack_header_never_exceeds_150_utf16_units(length: int) -> None:
    job = "j" * (length - len("🔴  failed on web1") - 1)
    header = json.loads(payloads.render("slack", envelope(job)).body)["blocks"][0]["text"]["text"]
    assert utf16(header) <= 150 and no_lone_surrogate(header)


def test_the_cut_falls_between_code_points_even_when_an_emoji_straddles_the_limit() -> None:
    host = "🐳" * 200  # astral characters all the way: a naive cut at 255 units splits one
    for fmt, limit in (("discord", 256), ("slack", 150)):
        body = json.loads(payloads.render(fmt, envelope("j" * 3, host=host)).body)
        text = body["embeds"][0]["title"] if fmt == "discord" else body["blocks"][0]["text"]["text"]
        assert utf16(text) <= limit and utf16(text) >= limit - 2 and text.endswith("…")
        assert no_lone_surrogate(text)


def test_a_title_that_fits_is_left_whole() -> None:
    title = payloads.title(envelope("backup")["data"])
    embed = json.loads(payloads.render("discord", envelope("backup")).body)["embeds"][0]
    assert embed["title"] == title == "🔴 backup failed on web1"


def test_slack_fallback_text_is_escaped_like_the_blocks() -> None:
    body = json.loads(payloads.render("slack", envelope("backup", reason="exit 1 <!channel> & <@U1>")).body)
    assert "<!channel>" not in body["text"] and "<@U1>" not in body["text"]
    assert "&lt;!channel&gt; &amp; &lt;@U1&gt;" in body["text"]
    assert "&lt;!channel&gt;" in body["blocks"][1]["text"]["text"]

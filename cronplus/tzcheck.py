"""Time zone names for CRON_TZ and tz=: is a name a zone zoneinfo knows? Also the local zone."""

from __future__ import annotations

import os
from datetime import tzinfo
from functools import cache


@cache
def check_zone(name: str) -> str | None:
    """None when `name` is a known IANA zone, else a one-line reason."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone '{name}' (an IANA name like Europe/Berlin or UTC)"
    return None


@cache
def get_zone(name: str | None) -> tzinfo | None:
    """The zone object for `name`; None = the local zone ($TZ, else /etc/localtime)."""
    from zoneinfo import ZoneInfo

    try:
        if name:
            return ZoneInfo(name)
        env = os.environ.get("TZ", "").lstrip(":")
        if env:
            return ZoneInfo(env)
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f)
    except Exception:  # noqa: BLE001 - no zone data: lint just has nothing to say
        return None

"""Time zone names for CRON_TZ and tz=: is a name a zone zoneinfo knows? Also the local zone.

`check_zone(name) -> str | None` checks the name's shape before asking zoneinfo: an IANA name is
at most 5 `/`-separated parts of ASCII letters, digits and `_ + - .` (a part does not start with
`.`, so no `..`), 100 characters in all. zoneinfo itself is not safe on other text: a long name
with many `/` recurses through importlib (the tzdata package lookup) into RecursionError, NUL
raises ValueError, a long part OSError (ENAMETOOLONG). Anything zoneinfo still raises is "unknown
time zone", never a crash.
"""

from __future__ import annotations

import os
import re
from datetime import tzinfo
from functools import cache, lru_cache

from cronplus.errors import shown

_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_+.-]*(?:/[A-Za-z0-9_+-][A-Za-z0-9_+.-]*){0,4}\Z", re.ASCII)
MAX_ZONE_NAME = 100


def well_formed(name: str) -> bool:
    """True when `name` has the shape of an IANA zone name (known or not)."""
    return len(name) <= MAX_ZONE_NAME and _ZONE_NAME.match(name) is not None


@lru_cache(maxsize=256)
def check_zone(name: str) -> str | None:
    """None when `name` is a known IANA zone, else a one-line reason."""
    from zoneinfo import ZoneInfo

    unknown = f"unknown time zone '{shown(name)}' (an IANA name like Europe/Berlin or UTC)"
    if not well_formed(name):
        return unknown
    try:
        ZoneInfo(name)
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError, OSError, RecursionError...
        return unknown
    return None


@cache
def get_zone(name: str | None) -> tzinfo | None:
    """The zone object for `name`; None = the local zone ($TZ, else /etc/localtime)."""
    from zoneinfo import ZoneInfo

    try:
        if name:
            return ZoneInfo(name) if well_formed(name) else None
        env = os.environ.get("TZ", "").lstrip(":")
        if env:
            return ZoneInfo(env) if well_formed(env) else None
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f)
    except Exception:  # noqa: BLE001 - no zone data: lint just has nothing to say
        return None

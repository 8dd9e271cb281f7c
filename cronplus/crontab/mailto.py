"""A mail address as a crontab may write it (MAILTO=, MAILFROM=, alert=mailto:ADDR): the one check
that the crontab language and mail sending share. Pure.

- `address_problem(value)`: why cron would refuse the value, or None.
- `MAILTO_SCHEME`: the prefix of an `alert=mailto:ADDR` target.
"""

from __future__ import annotations

import re

MAILTO_SCHEME = "mailto:"
# cronie's safe_p(): the first character alphanumeric, then alphanumerics and "@!:%-.,_+".
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9@!:%\-.,_+]*")


def address_problem(value: str) -> str | None:
    """Why cron would refuse this MAILTO / MAILFROM value (cronie logs it UNSAFE and does not
    mail), or None. Also refuses empty items in a comma list."""
    if not _SAFE.fullmatch(value):
        return (f"'{value}' is not a safe mail address list: cron accepts letters, digits and @!:%-.,_+"
                " (not first), no spaces")
    if any(not item for item in value.split(",")):
        return f"'{value}' has an empty address in its comma list"
    return None

"""redact.redact_db_url: a PostgreSQL URL as cronplus prints it (the store's messages, repr):
where the database is, never how to get in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronplus.redact import redact_db_url, redact_urls_in


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://ops:s3cret@db1:5432/cron", "postgresql://ops@db1:5432/cron"),
    ("postgres://ops@db1/cron", "postgres://ops@db1/cron"),
    ("postgresql://ops:s3cret@db1:5432,db2:5433/cron?target_session_attrs=read-write",
     "postgresql://ops@db1:5432,db2:5433/cron"),
    ("postgresql://db1/cron?user=ops&password=s3cret&sslmode=verify-full&sslpassword=k3y",
     "postgresql://db1/cron?user=ops"),
    ("postgresql:///cron?host=/run/postgresql&port=5433", "postgresql:///cron?host=/run/postgresql&port=5433"),
    ("postgresql://?service=cronplus&options=-csearch_path%3Dcp", "postgresql://?service=cronplus"),
    ("postgresql://:s3cret@db1/cron", "postgresql://db1/cron"),
    ("postgresql://ops:s3/cr?e@t@db1/cron#frag", "postgresql://ops@db1/cron"),  # unencoded / ? @
    ("db1:5432", "<redacted>"),
    ("postgresql://ops:s3cret@db1/\x1b[2J", "<redacted>"),
])
def test_a_database_url_keeps_where_and_drops_how(url: str, shown: str) -> None:
    assert redact_db_url(url) == shown


@given(st.text(min_size=1).map(lambda s: "Zq" + s + "Qz"))
def test_no_password_ever_shows(password: str) -> None:
    for url in (f"postgresql://ops:{password}@db1:5432/cron", f"postgresql://db1/cron?password={password}&port=1",
                f"postgresql://ops:{password}@db1/cron?sslmode=require"):
        assert password not in redact_db_url(url)


def test_a_database_url_in_free_text_loses_its_credentials() -> None:
    text = 'connection to postgresql://ops:s3cret@db1:5432/cron failed'
    assert redact_urls_in(text) == "connection to postgresql://db1:5432/… failed"

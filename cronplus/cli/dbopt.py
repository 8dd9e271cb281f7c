"""`--db URL|PATH`: the option of `run` and of every command that reads history (README "Where files live").
paths.from_args reads it (before $CRONPLUS_DB, before the state dir's history.db), and
cronplus.store.open opens what it names."""

from __future__ import annotations

import argparse


def add_db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL|PATH",
                   help="where history, incident state and the alert outbox are: an SQLite file, or "
                        "postgresql://... (env CRONPLUS_DB; default <state>/history.db)")

"""`cronplus edit`: `crontab -e` with its flaws fixed (see cronplus/service/editor.py for the contract)."""

from __future__ import annotations

import argparse

HELP = "edit the crontab in $VISUAL/$EDITOR, validate, install (like crontab -e)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "Editor: $VISUAL, then $EDITOR, then sensible-editor/editor/vi. Invalid text is never "
        "installed: on a terminal you are offered to re-edit it; otherwise it exits 1 and names "
        "the file holding your edits. The replaced version is kept as <crontab>.bak."
    )


def run(args: argparse.Namespace) -> int:
    from cronplus.cli.install import print_install
    from cronplus.paths import environ_of, from_args
    from cronplus.service.editor import edit_session

    paths = from_args(args)
    outcome = edit_session(paths, env=environ_of(args))
    if outcome.installed is not None:
        print_install(outcome.installed, paths)
    return outcome.exit_code

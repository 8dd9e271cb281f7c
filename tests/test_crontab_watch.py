"""The crontab watcher (service/crontabwatch.py) on a real inotify watch: every way an editor or
a tool replaces the crontab reloads, and a job writing into the crontab's directory does not wake
the watcher for every write (only the events an edit makes are asked of inotify)."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("watchdog")

from watchdog.events import FileSystemEventHandler  # noqa: E402
from watchdog.observers import Observer  # noqa: E402

from cronplus.service.crontabwatch import schedule, stop_watching, watch_crontab  # noqa: E402

WAIT_S = 20.0  # generous: a loaded machine delays the watcher thread, never loses the event


class Seen(FileSystemEventHandler):
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.changed = threading.Condition()

    def on_any_event(self, event: Any) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def wait_for(self, name: str) -> None:
        deadline = time.monotonic() + WAIT_S
        with self.changed:
            while not any(Path(str(e.src_path)).name == name or Path(str(getattr(e, "dest_path", "") or "")).name == name
                          for e in self.events):
                left = deadline - time.monotonic()
                assert left > 0, f"no event for {name}: {self.events}"
                self.changed.wait(left)


def test_a_job_appending_beside_the_crontab_wakes_the_watcher_once_not_per_write(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("* * * * * true\n")
    seen = Seen()
    observer = Observer()
    observer.daemon = True
    schedule(observer, seen, tmp_path)
    observer.start()
    try:
        with open(tmp_path / "job.log", "a") as log:  # a job's log beside the crontab: 200 writes
            for i in range(200):
                log.write(f"line {i}\n")
                log.flush()
        (tmp_path / "marker").write_text("x")  # the events of one watch arrive in order: after this one, all earlier ones did
        seen.wait_for("marker")
    finally:
        stop_watching(observer)
    about_log = [e for e in seen.events if Path(str(e.src_path)).name == "job.log"]
    assert 1 <= len(about_log) <= 3, [e.event_type for e in about_log]  # created, closed; not 200 modified


def _in_place(path: Path) -> None:
    with open(path, "r+") as f:
        f.seek(0, os.SEEK_END)
        f.write("# edited\n")


def _renamed_over(path: Path) -> None:
    new = path.with_name(".crontab.new")
    new.write_text(path.read_text() + "# replaced\n")
    os.replace(new, path)


def _deleted_and_created(path: Path) -> None:
    text = path.read_text()
    path.unlink()
    path.write_text(text + "# recreated\n")


def _copied_over(path: Path) -> None:
    source = path.with_name("other")
    source.write_text("0 0 * * * true\n")
    shutil.copyfile(source, path)


@pytest.mark.parametrize("edit", [_in_place, _renamed_over, _deleted_and_created, _copied_over])
def test_every_way_of_replacing_the_crontab_reloads(tmp_path: Path, edit: Any) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("* * * * * true\n")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reloads: asyncio.Queue[bool] = asyncio.Queue()
        observer = watch_crontab(crontab, loop, reloads.put_nowait)
        try:
            await asyncio.sleep(0)  # the observer's thread is started; its watch was added before start() returned
            edit(crontab)
            await asyncio.wait_for(reloads.get(), timeout=WAIT_S)
        finally:
            stop_watching(observer)

    asyncio.run(main())

"""Watching the crontab for edits (split out of daemon.py): a watchdog observer on the crontab's
directory, since editors and `cronplus install` replace the file by rename (a new inode that a
watch on the file itself would miss).

- `watch_crontab(crontab, loop, request_reload) -> observer | None`: a daemon thread that calls
  `request_reload(False)` on the loop (call_soon_threadsafe) for every event naming the file;
  None, with a warning, when watchdog is not installed or the directory does not exist
  (SIGHUP still reloads).
- `stop_watching(observer)`: stops it (None: nothing to stop).
- `schedule(observer, handler, directory)`: the watch itself, asking inotify only for what an edit
  of a file makes (closed after writing, created, moved in or out, deleted): the crontab's
  directory may be a busy one (a home directory its jobs write logs into), and every open, write
  or read there would otherwise wake the watcher thread and take the GIL from the supervisor
  (~60-120 us of its CPU per job run that appends to a file there, measured). An attribute change
  (`touch crontab`) is not an edit: `cronplus reload` or SIGHUP reload without one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("cronplus")


def watch_crontab(crontab: Path, loop: asyncio.AbstractEventLoop, request_reload: Callable[[bool], None]) -> Any:
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError:  # SIGHUP still works
        log.warning("watchdog not installed: reload with SIGHUP")
        return None
    target = crontab.name

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            names = {Path(str(event.src_path)).name, Path(str(getattr(event, "dest_path", "") or "")).name}
            if target in names:
                loop.call_soon_threadsafe(request_reload, False)

    directory = crontab.parent
    if not directory.is_dir():
        log.warning("crontab directory %s does not exist: reload with SIGHUP", directory)
        return None
    observer = Observer()
    observer.daemon = True
    schedule(observer, Handler(), directory)
    observer.start()
    return observer


def schedule(observer: Any, handler: Any, directory: Path) -> None:
    """Watch `directory` (not its subdirectories) for the events an edit makes (module docstring)."""
    from watchdog.events import FileClosedEvent, FileCreatedEvent, FileDeletedEvent, FileMovedEvent

    observer.schedule(handler, str(directory), recursive=False,
                      event_filter=[FileClosedEvent, FileCreatedEvent, FileMovedEvent, FileDeletedEvent])


def stop_watching(observer: Any) -> None:
    """Stop the crontab watcher. watchdog's inotify emitter races its own stop and may log
    "queue_events() called when the thread is inactive" (watchdog 7.1): once we have asked it
    to stop, nothing it reports concerns the supervisor, so its logger is quieted first."""
    if observer is None:
        return
    logging.getLogger("watchdog").setLevel(logging.CRITICAL)
    observer.stop()
    observer.join(timeout=2.0)

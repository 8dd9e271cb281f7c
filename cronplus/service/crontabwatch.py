"""Watching the crontab for edits (split out of daemon.py): a watchdog observer on the crontab's
directory, since editors and `cronplus install` replace the file by rename (a new inode that a
watch on the file itself would miss).

- `watch_crontab(crontab, loop, request_reload) -> observer | None`: a daemon thread that calls
  `request_reload(False)` on the loop (call_soon_threadsafe) for every event naming the file;
  None, with a warning, when watchdog is not installed or the directory does not exist
  (SIGHUP still reloads).
- `stop_watching(observer)`: stops it (None: nothing to stop).
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
    observer.schedule(Handler(), str(directory), recursive=False)
    observer.start()
    return observer


def stop_watching(observer: Any) -> None:
    """Stop the crontab watcher. watchdog's inotify emitter races its own stop and may log
    "queue_events() called when the thread is inactive" (watchdog 7.1): once we have asked it
    to stop, nothing it reports concerns the supervisor, so its logger is quieted first."""
    if observer is None:
        return
    logging.getLogger("watchdog").setLevel(logging.CRITICAL)
    observer.stop()
    observer.join(timeout=2.0)

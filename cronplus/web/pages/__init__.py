"""The pages (docs/web.md): server-rendered HTML that works without JavaScript, one module per page.

- `layout.py`: the one escaping helper (`esc`, `fmt`: every value put into markup goes through
  it, so a hostile job name or output renders as text), the page frame (navigation, the
  Content-Security-Policy: no inline script or style; assets from /static/), statuses as a
  colour AND a symbol AND a word (colour-blind safe), times.
- `svg.py`: the charts as inline SVG (outcome strip, duration bars, Gantt rows, graph boxes).
- `jobs.py` (/), `job.py` (/jobs/NAME), `run.py` (/runs/RUN_ID, its output tail for the live
  follow), `graph.py` (/graph), `timeline.py` (/timeline), `alerts.py` (/alerts),
  `static.py` (/static/NAME: the CSS and the small refresh script, shipped as package data).
- `routes.py`: `ROUTES`, the list of `Route`s the server mounts.

Every page reads through `Site` only (web/http.py) and never shows a secret: alert and ping
targets go through redact.py, commands through `redact_urls_in`.

May import: foundation, crontab, store, engine, alerts, service (as web/__init__.py says).
"""

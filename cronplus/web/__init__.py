"""The web stage: the pages, the HTTP API and `/metrics` that `cronplus run --http HOST:PORT`
serves from the supervisor (docs/web.md).

Off by default: nothing here is imported unless `--http` (or CRONPLUS_HTTP) is given, so
`cronplus --help` and an idle supervisor do not pay for it.

- `http.py`: the request/response shapes, the route entry and `Site`, what a handler may read
  and do. Pure data; the seam between the server and the handlers.
- the server (server.py), the API (api.py), auth (auth.py), metrics (metrics.py): the serving side.
- `pages/`: server-rendered HTML pages, one module per page, plus their shared layout and SVG.

Only cli imports it (cli/run.py, when `--http` is given, hands it the supervisor's facade).

May import: foundation, crontab, store, engine, alerts, service.
"""

"""`/static/NAME`: the stylesheet, the small script and the icon, read from the package (cronplus/web/static/,
shipped as package data: nothing is fetched from the internet). Only the names listed here are
served; anything else is 404 (no path is ever built from the request)."""

from __future__ import annotations

from functools import cache

from cronplus.web.http import Request, Response, Site

TYPES = {"cronplus.css": "text/css; charset=utf-8", "cronplus.js": "text/javascript; charset=utf-8",
         "favicon.svg": "image/svg+xml"}


@cache
def asset(name: str) -> bytes:
    from importlib.resources import files

    return files("cronplus.web").joinpath("static", name).read_bytes()


def handle(request: Request, site: Site) -> Response:
    name = request.params.get("name", "")
    if name not in TYPES:
        return Response(status=404, body=b"not found\n", content_type="text/plain; charset=utf-8")
    return Response(body=asset(name), content_type=TYPES[name],
                    headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})

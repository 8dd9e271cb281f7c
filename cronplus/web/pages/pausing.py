"""A paused job on the pages (engine/pausing.py): the "paused since T (by USER)" badge (the jobs
page's next-run cell, the job's page), and the job page's pause / resume button: `POST
/jobs/NAME/pause` and `/resume`, actions (token or session, origin check, as run now) carried
out by Site.pause / Site.resume, then a redirect (303) back to the job's page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cronplus.web.http import Request, Response, Site
from cronplus.web.pages.layout import Html, fmt, job_href, not_found

if TYPE_CHECKING:
    from cronplus.engine.pausing import Pause


def paused_badge(pause: Pause) -> Html:
    return fmt('<span class="badge st-waiting paused"><span class="sym" aria-hidden="true">⏸</span> {}</span>',
               pause.shown)


def button(name: str, *, paused: bool) -> Html:
    """A form POST (works without the script): resume a paused job, else pause it."""
    verb, label = ("resume", "▶ Resume") if paused else ("pause", "⏸ Pause")
    return fmt('<form class="pause" method="post" action="{}/{}"><button type="submit">{}</button></form>',
               job_href(name), verb, label)


def _act(request: Request, site: Site, *, resume: bool) -> Response:
    name = request.params.get("name", "")
    reply = site.resume(name) if resume else site.pause(name)
    if reply.get("ok"):
        return Response(status=303, headers={"Location": job_href(name)})
    hint = f" (did you mean {reply['suggestion']}?)" if reply.get("suggestion") else ""
    return not_found(f"{reply.get('error') or 'no such job'}{hint}", now=site.now())


def pause(request: Request, site: Site) -> Response:
    return _act(request, site, resume=False)


def resume(request: Request, site: Site) -> Response:
    return _act(request, site, resume=True)

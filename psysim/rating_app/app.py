"""The web app raters use: one response per page, blind to its source, saved when given.

Routes (no admin action exists over HTTP; studies are created, exported and closed by the CLI):

* ``GET /r/{token}/start``: the start page (what the study is, how long it takes, the
  instructions, the consent text if the template has one); linked from every page.
* ``POST /r/{token}/start``: pass the start page (once; with the consent box ticked when there is
  a consent text). Until then every rating page leads to the start page.
* ``GET /r/{token}``: resume at the first unanswered page (or the end page).
* ``GET /r/{token}/{position}``: the page at that position of this rater's own order.
* ``POST /r/{token}/{position}``: save the answer (committed), then go to the next page.

Every POST is refused (403) unless its ``Origin`` (else its ``Referer``) is this server or its
configured base URL (a page on another site cannot post for a rater who opened it), and is
refused (409) once the study is closed; its fields are validated by the server (400 with the
reason, nothing saved).

A rater is known only by the token in their link, and sees and changes only their own answers.
Nothing is logged: no access log (the path holds the token), no transcript text.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from psysim.inputs.data_files import package_file
from psysim.rating_app.study import AnswerError, Page, Study, StudyClosedError

HERE = package_file("rating_app")
templates = Jinja2Templates(directory=str(HERE / "templates"))


def paragraphs(text: str) -> list[str]:
    """A template's text as paragraphs: blank lines separate them; a YAML file's line wraps within one are spaces."""
    return [" ".join(part.split()) for part in re.split(r"\n\s*\n", text or "") if part.strip()]


templates.env.filters["paragraphs"] = paragraphs

SECURITY_HEADERS = {
    # everything from this server only (no CDN, no inline script); the token never leaves in a
    # Referer to another site ("same-origin", not "no-referrer": under "no-referrer" a browser sends
    # a form post's Origin as "null", and the post could not be told from a cross-site one)
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next):  # noqa: ANN201 - Starlette's signature
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url`` (lower case), or None if it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + ("" if port is None or port == default else f":{port}")


def same_origin(request: Request, base_url: str | None) -> bool:
    """True if a POST comes from a page of this server (its Host) or of ``base_url``: judged by
    its ``Origin``, else (absent or ``null``) its ``Referer``; a POST with neither is refused."""
    allowed = {origin_of(f"{request.url.scheme}://{request.headers.get('host', '')}")}
    if base_url:
        allowed.add(origin_of(base_url))
    allowed.discard(None)
    origin = request.headers.get("origin", "").strip()
    source = origin if origin and origin != "null" else request.headers.get("referer", "")
    return bool(source) and origin_of(source) in allowed


def create_app(study_path: str | Path, base_url: str | None = None) -> Starlette:
    """The rating app over one study database.

    Args:
        base_url: The address raters use when it is not this server's own (a proxy in front):
            form posts from its pages are accepted too.
    """
    study = Study(study_path)

    def render(request: Request, name: str, status: int = 200, **context) -> Response:  # noqa: ANN003
        return templates.TemplateResponse(request, name, {"study": study, "template": study.template, **context},
                                          status_code=status)

    def not_found(request: Request) -> Response:
        return render(request, "message.html", 404, heading="Link not recognised",
                      message="This link does not open a rating page. Check that you copied the whole link.")

    async def rater_of(request: Request) -> tuple[int, str] | None:
        return await run_in_threadpool(study.rater, request.path_params["token"])

    def refused(request: Request) -> Response | None:
        """The origin check of every POST: a 403 page, or None when the POST comes from this study's pages."""
        if same_origin(request, base_url):
            return None
        return render(request, "message.html", 403, heading="Request refused",
                      message="Answers are accepted only from the rating pages of this study. Open your "
                              "personal link and answer there.")

    def to_start(request: Request) -> Response:
        return RedirectResponse(f"/r/{request.path_params['token']}/start", status_code=303)

    async def start(request: Request) -> Response:
        rater = await rater_of(request)
        if rater is None:
            return not_found(request)
        token = request.path_params["token"]
        if request.method == "POST":
            if (refusal := refused(request)) is not None:
                return refusal
            form = await request.form()
            agreed = str(form.get("consent", ""))
            if study.template.consent and agreed != "yes":
                return await start_page(request, rater[0], status=400,
                                        error="consent: tick the box to agree before you start (or close this page "
                                              "if you do not agree)")
            if agreed not in ("", "yes"):
                return await start_page(request, rater[0], status=400, error="consent: unexpected value")
            try:
                await run_in_threadpool(study.start, rater[0])
            except StudyClosedError as ex:
                return render(request, "message.html", 409, heading="Study closed", message=str(ex))
            return RedirectResponse(f"/r/{token}", status_code=303)
        return await start_page(request, rater[0])

    async def start_page(request: Request, rater_id: int, status: int = 200, error: str = "") -> Response:
        answered, total, first = await run_in_threadpool(study.progress, rater_id)
        started = await run_in_threadpool(study.started, rater_id)
        practice = await run_in_threadpool(study.practice_count)
        minutes = max(1, round(total * study.template.seconds_per_page / 60))
        return render(request, "start.html", status, token=request.path_params["token"], started=started,
                      answered=answered, total=total, first=first, practice=practice, minutes=minutes, error=error,
                      closed=study.closed())

    async def home(request: Request) -> Response:
        return render(request, "message.html", heading=study.template.title,
                      message="Open the personal link you were given to start or resume rating.")

    async def resume(request: Request) -> Response:
        rater = await rater_of(request)
        if rater is None:
            return not_found(request)
        if not await run_in_threadpool(study.started, rater[0]):
            return to_start(request)
        _, _, first = await run_in_threadpool(study.progress, rater[0])
        token = request.path_params["token"]
        return RedirectResponse(f"/r/{token}/{first}" if first else f"/r/{token}/done", status_code=303)

    async def done(request: Request) -> Response:
        rater = await rater_of(request)
        if rater is None:
            return not_found(request)
        if not await run_in_threadpool(study.started, rater[0]):
            return to_start(request)
        answered, total, first = await run_in_threadpool(study.progress, rater[0])
        return render(request, "done.html", answered=answered, total=total, first=first,
                      token=request.path_params["token"])

    async def page(request: Request) -> Response:
        rater = await rater_of(request)
        if rater is None:
            return not_found(request)
        position = request.path_params["position"]
        viewing = request.method == "GET"
        if viewing and not await run_in_threadpool(study.started, rater[0]):
            return to_start(request)
        shown = await run_in_threadpool(study.page, rater[0], position, viewing)
        if shown is None:
            return not_found(request)
        if viewing:
            return _page(request, shown)
        if (refusal := refused(request)) is not None:
            return refusal
        if not await run_in_threadpool(study.started, rater[0]):
            return render(request, "message.html", 409, heading="Start page first",
                          message="Not saved: read the start page of your link and press its button first.")
        form = await request.form()
        skip = form.get("action") == "skip"
        try:
            await run_in_threadpool(study.save, rater[0], position, str(form.get("response", "")),
                                    None if skip else str(form.get("rating", "")), skip, str(form.get("comment", "")))
        except StudyClosedError as ex:
            return render(request, "message.html", 409, heading="Study closed", message=str(ex))
        except AnswerError as ex:
            # the page again with what was typed and the reason; nothing was saved
            shown.comment = str(form.get("comment", ""))
            return _page(request, shown, error=str(ex), typed=str(form.get("rating", "")), status=400)
        token = request.path_params["token"]
        _, total, first = await run_in_threadpool(study.progress, rater[0])
        following = position + 1 if position < total else first
        return RedirectResponse(f"/r/{token}/{following}" if following else f"/r/{token}/done", status_code=303)

    def _page(request: Request, shown: Page, error: str = "", typed: str = "", status: int = 200) -> Response:
        value = typed if error else ("" if shown.rating is None else str(shown.rating))
        return render(request, "rate.html", status, page=shown, error=error, value=value,
                      token=request.path_params["token"], closed=study.closed())

    routes = [
        Route("/", home),
        Route("/r/{token}", resume),
        Route("/r/{token}/done", done),
        Route("/r/{token}/start", start, methods=["GET", "POST"]),
        Route("/r/{token}/{position:int}", page, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])

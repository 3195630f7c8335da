"""The dashboard application: the JSON API, the pages, and the guards around them.

The pages are one HTML shell with plain JavaScript and CSS from ``static/`` (nothing from a
CDN; the dashboard works offline). Guards, each tested:

- every plait error becomes JSON ``{"error": message}`` with a status that fits
  (400 bad input, 403 editing off or cross-site, 404 unknown, 500 damaged store);
- every ``/api/`` request but the login comes from a known user (:mod:`plait.ui.auth`: the
  local user, a session, an API token or an authenticating proxy), else 401;
- writes need the role they take (403 otherwise, logged), the CSRF token of the session, a
  JSON body, and no foreign ``Origin`` (a page on another site cannot post to the dashboard);
- with ``trusted_hosts``, requests for any other ``Host`` are refused (DNS rebinding);
- every response carries a Content-Security-Policy that allows only the dashboard's own
  scripts, so even a note that slipped past sanitising could not run code.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from plait.base.hosts import LOOPBACK_HOSTS
from plait.errors import (
    AccessError,
    AuthenticationError,
    CorruptRecordError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PlaitError,
    ReadOnlyError,
)
from plait.ui.api import router
from plait.ui.api_edit import router as edit_router
from plait.ui.api_files import router as files_router
from plait.ui.auth import AuthConfig, TooManyLogins, log

if TYPE_CHECKING:
    from plait.api.store import Store

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_STATUS: list[tuple[type[PlaitError], int]] = [
    (TooManyLogins, 429),
    (AuthenticationError, 401),
    (AccessError, 403),
    (NotFoundError, 404),
    (ReadOnlyError, 403),
    (InvalidInputError, 400),
    (IntegrityError, 500),
    (CorruptRecordError, 500),
]
#: The page routes; each serves the same shell and the script draws the page from the URL.
PAGES = ("/", "/a/{name}", "/v/{name}/{number}", "/runs", "/r/{run_id}", "/lineage", "/api-docs", "/compare", "/login")
#: The largest request body a write may send (a note is at most 100,000 characters).
MAX_BODY = 1 << 20
#: The methods that change nothing.
_SAFE = ("GET", "HEAD", "OPTIONS")
#: What answers without a login: the login itself and who is asking.
PUBLIC = ("/api/session", "/api/login", "/api/logout")
__all__ = ["LOOPBACK_HOSTS", "PAGES", "PUBLIC", "create_app", "static_dir"]


def static_dir() -> str:
    """Return the folder of the dashboard's scripts, styles and HTML shell (inside the package)."""
    return str(resources.files("plait.ui") / "static")


def create_app(store: Store, allow_edit: bool = False, *, trusted_hosts: Sequence[str] | None = None,
               auth: AuthConfig | None = None) -> FastAPI:
    """Build the dashboard for one store.

    :param store: the store to show.
    :param allow_edit: without ``auth``: let the local user edit (otherwise every write answers 403).
    :param trusted_hosts: the only ``Host`` names accepted (without port), e.g.
        :data:`LOOPBACK_HOSTS`; ``None`` accepts any.
    :param auth: how users are known (:class:`~plait.ui.auth.AuthConfig`); the default is the
        local single-user mode.
    :returns: the ASGI application.
    """
    auth = auth or AuthConfig(mode="none", allow_edit=allow_edit)
    app = FastAPI(
        title="plait dashboard", version="1", summary="Browse the artifacts, versions, runs and lineage of a plait store.",
        openapi_url="/api/openapi.json", docs_url=None, redoc_url=None,
    )
    app.state.store = store
    app.state.allow_edit = auth.mode != "none" or allow_edit
    app.state.auth = auth
    app.include_router(router)
    app.include_router(files_router)
    app.include_router(edit_router)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    shell = f"{static_dir()}/index.html"

    async def page(request: Request) -> FileResponse:
        return FileResponse(shell, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})

    for path in PAGES:
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)

    @app.exception_handler(PlaitError)
    async def plait_error(request: Request, exc: PlaitError) -> JSONResponse:
        status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)
        if status in (401, 403, 429) or (status < 500 and request.method not in _SAFE):
            _log_refusal(request, status, exc)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyLogins) else None
        return JSONResponse({"error": str(exc)}, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in message:
            message = "the request body is not JSON in UTF-8; nothing was changed"
        if request.method not in _SAFE:
            _log_refusal(request, exc.status_code, message)
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors())
        if request.method not in _SAFE:
            _log_refusal(request, 422, problems)
        return JSONResponse({"error": f"bad request: {problems}"}, status_code=422)

    hosts = {h.lower() for h in trusted_hosts} if trusted_hosts is not None else None

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        refusal = _refusal(request, hosts) or await _who(request, auth)
        if refusal:
            log.warning("%s %s from %s refused (%d): %s", request.method, request.url.path,
                        request.client.host if request.client else "?", refusal[0], refusal[1])
        response = JSONResponse({"error": refusal[1]}, status_code=refusal[0]) if refusal else await call_next(request)
        for key, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    return app


def _log_refusal(request: Request, status: int, why: object) -> None:
    """Log a refused request: every refused write, and every refused login or right."""
    who = getattr(getattr(request.state, "identity", None), "name", None)
    log.warning("%s %s by %s refused (%d): %s", request.method, request.url.path, who or "nobody", status, why)


async def _who(request: Request, auth: AuthConfig) -> tuple[int, str] | None:
    """Find who is asking (``request.state.identity``) and refuse what they may not even try."""
    peer = request.client.host if request.client else None
    problem = ""
    try:
        identity = await run_in_threadpool(auth.identify, request.headers, request.cookies, peer)
    except AuthenticationError as exc:
        identity, problem = None, str(exc)
    request.state.identity = identity
    path = request.url.path
    if not path.startswith("/api/") or path in PUBLIC:
        return None
    if identity is None:
        return 401, problem or "log in first (open /login), or send an API token: Authorization: Bearer plait_…"
    if request.method not in _SAFE and identity.csrf is not None:
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent, identity.csrf):
            return 403, "this change carries no valid CSRF token (X-CSRF-Token from /api/session); reload the page and try again"
    return None


def _host_name(host: str) -> str:
    return (urlsplit(f"//{host}").hostname or "").lower()


def _refusal(request: Request, hosts: set[str] | None) -> tuple[int, str] | None:
    host = request.headers.get("host", "")
    if hosts is not None and _host_name(host) not in hosts:
        return 400, (f"this dashboard answers only to {', '.join(sorted(hosts))}; open it by one of those names "
                     "(or allow another: plait ui --allowed-host NAME, or PLAIT_UI_ALLOWED_HOSTS for the ASGI app)")
    if request.method in _SAFE:
        return None
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc.lower() != host.lower():
        return 403, f"a page from {origin} may not change this store; edit notes from the dashboard itself"
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return 413, f"a change may send at most {MAX_BODY} bytes"
    has_body = (length is not None and length != "0") or "transfer-encoding" in request.headers
    if has_body and request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return 415, "send the change as JSON (Content-Type: application/json)"
    return None

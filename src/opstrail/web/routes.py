"""The console pages under ``/console``: sign-in, app list, and one page per app.

The pages are server-rendered shells (Jinja2). Their data comes from the console JSON API
(``/console/api/...``), which the page's small vanilla script calls with the console token
the user signed in with (kept in ``sessionStorage``, sent as ``Authorization: Bearer``). So
the browser exercises exactly the API that scripts and the CLI use, and the pages hold no
second authentication path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from opstrail.errors import NotFoundError

_HERE: Final = Path(__file__).parent
_STATIC_DIR: Final = _HERE / "static"
_TEMPLATES_DIR: Final = _HERE / "templates"
# Only these files are served; a name outside the list is a 404, never a path lookup.
_STATIC_FILES: Final[dict[str, str]] = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "monitoring.js": "text/javascript; charset=utf-8",
    "preview.js": "text/javascript; charset=utf-8",
}
_APP_TABS: Final = ("overview", "monitoring", "preview")
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

router = APIRouter(prefix="/console", include_in_schema=False)


def _templates(request: Request) -> Jinja2Templates:
    """The page templates, built once per application (kept on ``app.state``, not globally)."""
    templates: Jinja2Templates | None = getattr(request.app.state, "web_templates", None)
    if templates is None:
        templates = Jinja2Templates(directory=str(_TEMPLATES_DIR))
        request.app.state.web_templates = templates
    return templates


def _page(request: Request, template: str, **context: object) -> HTMLResponse:
    response = _templates(request).TemplateResponse(request, template, context)
    # Pages carry no data, but the token lives in this origin's storage: only our own
    # scripts may run (no inline script, so injected markup cannot execute), and pages stay
    # out of frames and shared caches.
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@router.get("", response_class=RedirectResponse)
@router.get("/", response_class=RedirectResponse)
def console_home() -> RedirectResponse:
    """The console starts at the app list (which sends you to sign-in if needed)."""
    return RedirectResponse("/console/apps", status_code=307)


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request) -> HTMLResponse:
    """The sign-in form: paste the console token."""
    return _page(request, "signin.html", title="Sign in", page="signin")


@router.get("/apps", response_class=HTMLResponse)
def apps_page(request: Request) -> HTMLResponse:
    """The app list, with DSL import."""
    return _page(request, "apps.html", title="Apps", page="apps")


@router.get("/apps/{app_id}", response_class=RedirectResponse)
def app_home(app_id: str) -> RedirectResponse:
    """An app opens on its Overview."""
    return RedirectResponse(f"/console/apps/{app_id}/overview", status_code=307)


@router.get("/apps/{app_id}/{tab}", response_class=HTMLResponse)
def app_page(request: Request, app_id: str, tab: str) -> HTMLResponse:
    """One app: Overview, Monitoring, or Debug and preview."""
    if tab not in _APP_TABS:
        raise NotFoundError(f"No console page '{tab}'; try overview, monitoring or preview.")
    return _page(
        request, f"app_{tab}.html", title=tab.capitalize(), page=tab, app_id=app_id, tab=tab
    )


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """The console's own CSS and scripts (a fixed list; no directory lookups)."""
    media_type = _STATIC_FILES.get(name)
    if media_type is None:
        raise NotFoundError(f"No static file '{name}'.")
    return FileResponse(
        _STATIC_DIR / name, media_type=media_type, headers={"Cache-Control": "no-cache"}
    )

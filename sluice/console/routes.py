"""The console's routes: one HTML shell per page (no data in it: the page's script fetches everything from the admin
API with the admin key kept in sessionStorage), and the console's static files.

Shells need no authentication because they hold nothing; every number and record comes from the admin API, which
checks the key. Pages are assembled from `templates/` with `string.Template` (no template engine, no build step).
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from string import Template

from fastapi import APIRouter
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from sluice import __version__
from sluice.errors import NotFound

router = APIRouter(prefix="/console", include_in_schema=False)

_HERE = Path(__file__).parent
TEMPLATES = _HERE / "templates"
STATIC = _HERE / "static"
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# Pages are not cached (a new release changes them); their scripts are tagged with the version instead.
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

# path → (template, title, nav key)
PAGES: dict[str, tuple[str, str, str]] = {
    "overview": ("overview.html", "Overview", "overview"),
    "keys": ("keys.html", "API keys", "keys"),
    "providers": ("providers.html", "Providers", "providers"),
    "workflows": ("workflows.html", "Workflows", "workflows"),
    "requests": ("requests.html", "Request log", "requests"),
    "spend": ("spend.html", "Spend", "spend"),
    "webhooks": ("webhooks.html", "Webhook deliveries", "webhooks"),
    "playground": ("playground.html", "Playground", "playground"),
}
NAV = [(key, title) for key, (_, title, _) in PAGES.items()]


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text())


def render(body_template: str, title: str, active: str, script: str | None = None, **values: str) -> HTMLResponse:
    nav = "\n".join(
        f'<a href="/console/{key}" data-nav="{key}"{" aria-current=page" if key == active else ""}>'
        f"{html.escape(label)}</a>"
        for key, label in NAV
    )
    body = _template(body_template).substitute(**values)
    page = _template("base.html").substitute(
        title=html.escape(title), nav=nav, body=body, page=active, script=script or active, version=__version__
    )
    return HTMLResponse(page, headers=_HEADERS)


@router.get("")
async def console_root() -> Response:
    return RedirectResponse("/console/overview")


@router.get("/login")
async def login() -> HTMLResponse:
    page = _template("login.html").substitute(version=__version__)
    return HTMLResponse(page, headers=_HEADERS)


@router.get("/requests/{request_id}")
async def request_page(request_id: str) -> HTMLResponse:
    return render(
        "request.html", "Request", "requests", script="request", request_id=html.escape(request_id, quote=True)
    )


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in _MEDIA_TYPES or not path.is_file():
        raise NotFound(f"no console file {name!r}", code="not_found")
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=_HEADERS)


@router.get("/{page}")
async def page(page: str) -> HTMLResponse:
    found = PAGES.get(page)
    if found is None:
        raise NotFound(f"no console page {page!r}", code="not_found")
    template, title, active = found
    return render(template, title, active)

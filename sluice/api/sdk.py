"""The browser SDK (`clients/js/`) at `/sdk/…`: a page does `import { connect } from "<gateway>/sdk/sluice.js"`.

The files live outside the Python package: a source checkout serves them from the repository, an installed wheel
from the copy `pyproject.toml` force-includes as `sluice/_sdk/`. Responses allow any origin, because an app page on
its own origin imports these modules cross-origin and module scripts require CORS.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from sluice.errors import NotFound

router = APIRouter(tags=["sdk"])

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_CANDIDATES = (_PACKAGE_DIR.parent / "clients" / "js", _PACKAGE_DIR / "_sdk")
_MEDIA_TYPES = {
    ".js": "text/javascript",
    ".ts": "application/typescript",
    ".json": "application/json",
    ".md": "text/markdown",
}
_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def sdk_root() -> Path | None:
    """The directory the SDK is served from: the repository's `clients/js`, else the wheel's copy."""
    for candidate in _CANDIDATES:
        if (candidate / "sluice.js").is_file():
            return candidate
    return None


def resolve_sdk_file(root: Path, path: str) -> Path | None:
    """`path` inside `root` if it is an SDK file (top level, known type); never anything outside it."""
    if "/" in path or "\\" in path or path.startswith("."):
        return None  # only top-level files: no tests, no node_modules, no traversal
    candidate = root / path
    suffix = ".ts" if path.endswith(".d.ts") else candidate.suffix
    if suffix not in _MEDIA_TYPES or not candidate.is_file():
        return None
    return candidate


@router.get("/sdk/{path}", include_in_schema=False)
async def sdk_file(path: str) -> Response:
    """One file of the browser SDK: `sluice.js` (core), `react.js` (`useSluice`), their `.d.ts` types."""
    root = sdk_root()
    found = resolve_sdk_file(root, path) if root is not None else None
    if found is None:
        raise NotFound(f"no SDK file {path!r}; try /sdk/sluice.js or /sdk/react.js", code="sdk_file_not_found")
    suffix = ".ts" if found.name.endswith(".d.ts") else found.suffix
    return FileResponse(found, media_type=_MEDIA_TYPES[suffix], headers=_HEADERS)

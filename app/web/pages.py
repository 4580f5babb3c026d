"""The browser client (``GET /``) and the dashboard (``GET /dashboard``), served offline.

Plain HTML, CSS and JavaScript from ``app/web/static``: no build step, no CDN, no external
fonts, so ``tourline serve`` alone serves them. The pages themselves hold no data. The
dashboard reads the memory API, which needs ``TOURLINE_API_KEY``; the client page needs no
key at all: it talks over ``WS /avatar`` as this browser's anonymous device, or as the caller
of a token pasted into its settings, and reads its own memory over the same socket.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The pages change with the server; never let a browser run yesterday's script against it.
NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


def _file(name: str) -> FileResponse:
    """A file of ``STATIC_DIR`` by plain name (no paths, no dotfiles), or a 404."""
    path = STATIC_DIR / name
    suffix = path.suffix
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in MEDIA_TYPES:
        raise HTTPException(404, detail="not found")
    if not path.is_file():
        raise HTTPException(404, detail="not found")
    return FileResponse(path, media_type=MEDIA_TYPES[suffix], headers=NO_CACHE)


@router.get("/")
async def client_page() -> FileResponse:
    """Talk to the agent from a browser: press to talk, or type."""
    return _file("index.html")


@router.get("/dashboard")
async def dashboard_page() -> FileResponse:
    """Callers and avatar users, what is remembered about them, their calls; forget one."""
    return _file("dashboard.html")


@router.get("/static/{name}")
async def static_file(name: str) -> FileResponse:
    return _file(name)

"""Serves the web app: the page at `/` and its assets under `/assets/<version>/`.

The page is one more client of the public API: these routes serve files and nothing else,
and import nothing of the application (an import-linter contract keeps it so).
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

AnyRequest = Request[Any, Any, Any]
STATIC_DIR = Path(__file__).parent / "static"
PAGE = "index.html"
ASSETS_PLACEHOLDER = b"{{assets}}"

# Litestar adds "; charset=utf-8" to text types itself.
_MEDIA_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        # The page builds its DOM from text nodes only; with Trusted Types required and no
        # policy allowed, any innerHTML-style sink would throw instead of parsing task text.
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    # The page names its assets by version, so it must be revalidated on every load.
    "Cache-Control": "no-cache",
}
# An asset's URL changes whenever any asset changes, so what a browser keeps stays right.
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str

    @property
    def etag(self) -> str:
        return f'"{hashlib.sha256(self.body).hexdigest()[:20]}"'

    def answer(self, request: AnyRequest, headers: dict[str, str]) -> Response[bytes]:
        headers = {**headers, "ETag": self.etag}
        tags = request.headers.get("if-none-match", "")
        if self.etag in (tag.strip().removeprefix("W/") for tag in tags.split(",")):
            return Response(b"", status_code=304, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


@dataclass(frozen=True)
class Site:
    """The page and its assets, read once: the version is a digest of every asset, and the
    page is rewritten to name its assets under that version."""

    version: str
    page: StaticFile
    assets: dict[str, StaticFile]

    @classmethod
    def load(cls, directory: Path = STATIC_DIR) -> "Site":
        assets = {
            path.name: StaticFile(path.read_bytes(), _MEDIA_TYPES[path.suffix])
            for path in sorted(directory.iterdir())
            if path.suffix in _MEDIA_TYPES and path.name != PAGE
        }
        digest = hashlib.sha256()
        for name, asset in assets.items():
            digest.update(name.encode() + b"\0" + asset.body + b"\0")
        version = digest.hexdigest()[:16]
        template = (directory / PAGE).read_bytes()
        page = template.replace(ASSETS_PLACEHOLDER, f"/assets/{version}".encode())
        return cls(version, StaticFile(page, _MEDIA_TYPES[".html"]), assets)


def web_app_router(site: Site | None = None) -> Router:
    """`GET /` and `GET /assets/<version>/<name>`: no authentication, not in the OpenAPI
    document (they are not part of the API)."""
    site = site or Site.load()

    @get("/", include_in_schema=False, sync_to_thread=False)
    def page(request: AnyRequest) -> Response[bytes]:
        return site.page.answer(request, PAGE_HEADERS)

    @get("/assets/{version:str}/{name:str}", include_in_schema=False, sync_to_thread=False)
    def asset(version: FromPath[str], name: FromPath[str], request: AnyRequest) -> Response[bytes]:
        # An old version's assets are gone: a page that names them is itself out of date.
        found = site.assets.get(name) if version == site.version else None
        if found is None:
            raise NotFoundException()
        return found.answer(request, {"Cache-Control": ASSET_CACHE_CONTROL})

    return Router(path="/", route_handlers=[page, asset])

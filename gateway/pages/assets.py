"""The pages' CSS, JS and icon, served by the gateway itself under /static/.

A small handler instead of ``add_static``: the folder is flat and known at start, so a name that
is not one of its files is an ordinary 404 in the JSON envelope (counted in metrics as a 404 —
aiohttp's file response only turns into a 404 after the middlewares have seen a 200). URLs carry a
content hash (``?v=…``), so browsers may cache a file for good and still get a new one on upgrade.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

__all__ = ["ASSETS", "Assets", "serve_asset"]

_FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Assets:
    files: dict[str, Path]
    versions: dict[str, str]

    @classmethod
    def scan(cls, folder: Path) -> Assets:
        files = {path.name: path for path in sorted(folder.iterdir()) if path.is_file()}
        versions = {name: hashlib.sha256(path.read_bytes()).hexdigest()[:12] for name, path in files.items()}
        return cls(files, versions)

    def url(self, name: str) -> str:
        """``/static/site.css?v=<hash>``; an unknown name is a template bug, so it raises."""
        return f"/static/{name}?v={self.versions[name]}"


# Private to the pages (gateway/keys.py would import this package back: a cycle).
ASSETS = web.AppKey("page_assets", Assets)


async def serve_asset(request: web.Request) -> web.StreamResponse:
    assets = request.app[ASSETS]
    name = request.match_info["name"]
    path = assets.files.get(name)
    if path is None:
        raise web.HTTPNotFound()
    response = web.FileResponse(path)
    current = request.query.get("v") == assets.versions[name]
    response.headers["Cache-Control"] = _FOREVER if current else "no-cache"
    return response

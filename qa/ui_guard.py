"""What the web server refuses beyond Gradio's own file rules: fetching remote URLs on a visitor's behalf.

Gradio's `/gradio_api/file=https://…` route fetches any public URL and streams it back; this app never needs
that, so the middleware answers 403 to it. Local files are already limited by Gradio (its upload/cache folder
only, plus `blocked_paths`, which `app.serve` sets to the store).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

REMOTE_FILE_RE = re.compile(r"/file[=/]\s*[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def is_remote_file_request(path: str) -> bool:
    """True for a Gradio file route naming a URL (`/file=https://…`, `/file/https://…`, also percent-encoded)."""
    return bool(REMOTE_FILE_RE.search(unquote(unquote(path))))


class NoRemoteFiles:
    """ASGI middleware: 403 for file routes that name a URL instead of a file."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") == "http" and is_remote_file_request(scope.get("path", "")):
            body = b"Remote files are not served by this app."
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

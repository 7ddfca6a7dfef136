"""The ingest progress bar on stderr: files, paragraphs, paragraphs/s and the time left."""

from __future__ import annotations

import sys
import time
from typing import TextIO

REFRESH_SECONDS = 0.25
BAR_WIDTH = 24


class ProgressBar:
    """Called with (paragraphs, cables) as cables are stored; `plan`/`advance` (bytes of input) give the ETA.

    Draws one self-overwriting line, only on a terminal; the rate counts from the first stored paragraph, so
    loading the model does not drag it down.
    """

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.paragraphs = 0
        self.cables = 0
        self.total_bytes = 0
        self.done_bytes = 0
        self.started = time.monotonic()
        self.first_store: float | None = None
        self.last_draw = 0.0
        self.drawn = False

    def plan(self, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self.started = time.monotonic()

    def advance(self, done_bytes: int) -> None:
        self.done_bytes += done_bytes
        self._draw()

    def __call__(self, paragraphs: int, cables: int) -> None:
        if self.first_store is None:
            self.first_store = time.monotonic()
        self.paragraphs += paragraphs
        self.cables += cables
        self._draw()

    update = __call__  # the name the CLI used before

    def line(self, now: float | None = None) -> str:
        """The progress line as it would be drawn now."""
        now = time.monotonic() if now is None else now
        parts = []
        if self.total_bytes:
            share = min(self.done_bytes / self.total_bytes, 1.0)
            filled = int(share * BAR_WIDTH)
            parts.append(f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%}")
        parts.append(f"{self.cables} cables, {self.paragraphs} paragraphs")
        rate = self.rate(now)
        if rate is not None:
            parts.append(f"{rate:.0f} paragraphs/s")
        eta = self.eta(now)
        if eta is not None:
            parts.append(f"ETA {format_seconds(eta)}")
        return "  ".join(parts)

    def rate(self, now: float) -> float | None:
        if self.first_store is None or now - self.first_store < 0.5:
            return None
        return self.paragraphs / (now - self.first_store)

    def eta(self, now: float) -> float | None:
        """Seconds left, from the share of input bytes done so far (None until there is something to go on)."""
        if not self.total_bytes or not self.done_bytes or now - self.started < 1.0:
            return None
        share = min(self.done_bytes / self.total_bytes, 1.0)
        return (now - self.started) * (1 - share) / share

    def _draw(self) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last_draw < REFRESH_SECONDS:
            return
        self.last_draw = now
        self.drawn = True
        print(f"\r{self.line(now)} \033[K", end="", file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.drawn:
            self.last_draw = 0.0
            self._draw()
            print(file=self.stream, flush=True)


def format_seconds(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"

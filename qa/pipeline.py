"""Ingest with parsing in worker processes while the main process embeds and writes.

Files are read and hashed in order by the main process (files already ingested are skipped without parsing);
the others are parsed by a process pool a bounded window ahead, and their cables go through the usual
`Ingester` steps (dedup, batched embedding, one transaction per cable, file marked done after its cables).
The result is the same store as the sequential ingester's, and an interrupted run resumes the same way.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import islice
from multiprocessing import get_context
from pathlib import Path

from qa.errors import CablesError, ParseError
from qa.formats import read_cables
from qa.ingest import Ingester, IngestReport, iter_files, read_file
from qa.records import Cable

POOL_MIN_FILES = 16  # fewer files than this are parsed in-process: starting workers would cost more than it saves
INLINE_BYTES = 32 * 1024 * 1024  # a bigger file (a whole dump) is streamed in-process rather than sent to a worker
WINDOW_PER_WORKER = 64  # files parsed ahead per worker: more than one embedding batch, so parsing never waits


@dataclass(frozen=True)
class ReadFile:
    """A file the main process has read and hashed: what is left to do is parse it."""

    path: Path
    text: str
    sha: str


def parse_text(text: str, source: str) -> list[Cable | ParseError]:
    """Every cable (or ParseError) in one file's text; runs in a worker process."""
    return list(read_cables(text, source))


def parse_workers() -> int:
    """Worker processes for parsing: one core is left to the embedder (at least one worker, at most four)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores - 1))


class PipelinedIngester(Ingester):
    """`Ingester` whose files are parsed by a process pool while embedding runs in this process."""

    def __init__(self, store, embedder, on_progress=None, home: Path | None = None, workers: int | None = None) -> None:
        super().__init__(store, embedder, on_progress, home=home)
        self._finished: list[tuple[str | None, Path]] = []  # files whose cables are all added, not yet flushed
        self.workers = workers if workers is not None else parse_workers()

    def run(self, paths: Iterable[str | os.PathLike]) -> IngestReport:
        files = list(iter_files(paths, self.report, exclude=self.home))
        plan = getattr(self.on_progress, "plan", None)
        if plan is not None:
            plan(sum(_size(path) for path in files))
        self.store.db.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; a crash loses only the last commits
        head = list(islice(files, POOL_MIN_FILES))
        if len(head) < POOL_MIN_FILES or self.workers < 1:
            for path in files:
                self.ingest_file(path)
                self._advance(path)
        else:
            context = get_context("spawn")  # never fork a process whose model runtime has threads running
            with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
                for read, outcome in self._parsed(pool, files):
                    self._store_parsed(read, outcome)
        self.flush()
        return self.report

    def _parsed(self, pool: ProcessPoolExecutor, files: list[Path]
                ) -> Iterator[tuple[ReadFile, Future | list[Cable | ParseError]]]:
        """(file, parse result) in input order, with up to `window` files being parsed ahead."""
        window: deque[tuple[ReadFile, Future | None]] = deque()
        limit = WINDOW_PER_WORKER * self.workers
        for path in files:
            self.report.files += 1
            try:
                text, sha = read_file(path)
            except CablesError as error:
                self.report.skipped.append((str(path), str(error)))
                self._advance(path)
                continue
            if self.store.file_seen(sha):
                self.report.unchanged_files += 1
                self._advance(path)
                continue
            read = ReadFile(path, text, sha)
            big = len(text) > INLINE_BYTES
            window.append((read, None if big else pool.submit(parse_text, text, str(path))))
            while len(window) > limit or (window and window[0][1] is None):
                yield self._resolve(window.popleft())
        while window:
            yield self._resolve(window.popleft())

    @staticmethod
    def _resolve(item: tuple[ReadFile, Future | None]) -> tuple[ReadFile, list[Cable | ParseError]]:
        read, future = item
        if future is None:
            return read, read_cables(read.text, str(read.path))  # streamed: a dump's cables are never all in memory
        return read, future.result()

    def _store_parsed(self, read: ReadFile, items: Iterable[Cable | ParseError]) -> None:
        """Add a file's cables; the file is marked done by the flush that stores the last of them."""
        problems = self.add_parsed(read.path, items)
        self._finished.append((None if problems else read.sha, read.path))
        if not self.pending:
            self.flush()

    def flush(self) -> None:
        """Embed and store the pending cables (batches span files), then mark the files they completed."""
        super().flush()
        for sha, path in getattr(self, "_finished", ()):
            if sha is not None:
                self.store.mark_file(sha, str(path))
            self._advance(path)
        self._finished = []

    def _advance(self, path: Path) -> None:
        advance = getattr(self.on_progress, "advance", None)
        if advance is not None:
            advance(_size(path))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0

"""A store folder with everything needed to use it: database, vector index, model, searcher, answerer.

The CLI and the web app only talk to `Library`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from qa.errors import ModelError, StoreError
from qa.filters import Filters
from qa.ingest import IngestReport, Progress
from qa.records import Answer, Cable, Hit
from qa.store import Store

DEFAULT_HOME = ".cables"
DB_FILE = "cables.db"
INDEX_DIR = "index"
log = logging.getLogger("cables")


def default_home() -> Path:
    return Path(os.environ.get("CABLES_HOME") or DEFAULT_HOME)


class Library:
    """Open a store folder (created on first write). Heavy parts (model, FAISS) load on first use."""

    def __init__(self, home: str | os.PathLike | None = None, model: str | None = None, backend: str = "auto",
                 embedder=None) -> None:
        self.home = Path(home) if home else default_home()
        self.model_option = model
        self.backend = backend
        self.store = Store(self.home / DB_FILE)
        self._embedder = embedder
        self._index = None
        self._lock = threading.RLock()
        stored_model = self.store.get_meta("model")
        if stored_model and model and _canonical(model) != stored_model:
            raise StoreError(f"the store {self.home} was built with model {stored_model!r}, not {model!r}; "
                             f"use --model {stored_model} or another --home")

    # ---- parts ---------------------------------------------------------------------------------------------
    @property
    def embedder(self):
        if self._embedder is None:
            from embeddings import load_embedder
            from embeddings.errors import EmbeddingsError

            model = self.model_option or self.store.get_meta("model")
            try:
                embedder = load_embedder(model, backend=self.backend, cache_dir=self.home / "models")
                _ = embedder.dim  # a lazily loaded model fails here, as a ModelError, not later mid-search
                self._embedder = embedder
            except EmbeddingsError as error:
                raise ModelError(str(error)) from error
        return self._embedder

    @property
    def index(self):
        with self._lock:
            if self._index is None:
                self._index = self._load_index()
            return self._index

    def _load_index(self):
        from embeddings import VectorIndex
        from embeddings.errors import IndexFileError

        folder = self.home / INDEX_DIR
        model = self.store.get_meta("model")
        if (folder / "manifest.json").exists():
            try:
                index = VectorIndex.load(folder, model)
            except IndexFileError as error:
                if "built with model" in str(error):
                    raise StoreError(str(error)) from error
                log.warning("cables: %s; rebuilt it from the vectors stored in the database", str(error).split(";")[0])
                index = None  # damaged cache: rebuilt from the stored vectors below
        else:
            index = None
        if index is None:
            index = VectorIndex(model or self.embedder.name, self._dim())
        try:
            if not self._sync(index, save=index is not None) and getattr(index, "upgraded", False):
                self._save_index(index)  # an exact index that had outgrown its threshold, now approximate
        except StoreError as error:  # e.g. a full disk: the synced index still serves from memory
            log.warning("cables: %s", error)
        return index

    def _dim(self) -> int:
        return self.store.vector_dim() or self.embedder.dim

    def _sync(self, index, save: bool = True) -> bool:
        """Make the FAISS index hold exactly the stored vectors; return True if it changed."""
        stored = self.store.vector_ids()
        present = index.ids()
        missing = np.setdiff1d(stored, present, assume_unique=True)
        extra = np.setdiff1d(present, stored, assume_unique=True)
        if len(extra):
            index.remove(extra)
        if len(missing):
            for start in range(0, len(missing), 20000):
                ids, vectors = self.store.vectors(missing[start:start + 20000].tolist())
                index.add(ids, vectors)
        changed = bool(len(missing) or len(extra))
        if changed and save:
            self._save_index(index)
        return changed

    def _save_index(self, index) -> None:
        try:
            index.save(self.home / INDEX_DIR)
        except OSError as error:
            raise StoreError(f"cannot write the index in {self.home / INDEX_DIR} ({error.strerror}); "
                             "the database is intact and the index is rebuilt on the next start") from error

    # ---- operations ----------------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | os.PathLike], on_progress: Progress | None = None) -> IngestReport:
        with self._lock:
            embedder = self.embedder
            stored_model = self.store.get_meta("model")
            if stored_model and stored_model != embedder.name:
                raise StoreError(f"the store {self.home} was built with model {stored_model!r}, not "
                                 f"{embedder.name!r}; use --model {stored_model} or another --home")
            if not stored_model:
                self.store.set_meta("model", embedder.name)
            from qa.pipeline import PipelinedIngester

            try:
                report = PipelinedIngester(self.store, embedder, on_progress, home=self.home).run(paths)
            except sqlite3.OperationalError as error:  # the cable being written was rolled back; the rest is intact
                space = "free some space (or use another --home) and " if "full" in str(error) else ""
                raise StoreError(f"cannot write to the store {self.home} ({error}); every cable stored before is "
                                 f"intact: {space}run the same command again") from error
            if self._index is None:
                self._index = self._load_index()  # loads and syncs with the new rows
            else:
                self._sync(self._index, save=True)
            return report

    def searcher(self):
        from qa.search import Searcher

        return Searcher(self.store, self.index, self.embedder)

    def search(self, query: str, k: int = 10, filters: Filters | None = None, mode: str = "hybrid",
               viewing: str | None = None) -> list[Hit]:
        return self.searcher().search(query, k=k, filters=filters, mode=mode, viewing=viewing)

    def ask(self, question: str, filters: Filters | None = None, history: Sequence[str] = (),
            viewing: str | None = None) -> Answer:
        from qa.answer import answer

        return answer(self.searcher(), question, filters or Filters(), history, viewing=viewing)

    def cable(self, cable_id: str) -> Cable | None:
        return self.store.cable(cable_id.strip().upper())

    def stats(self) -> dict:
        stats = self.store.stats()
        stats["model"] = self.store.get_meta("model")
        note = self.model_note()
        if note:
            stats["model_note"] = note
        stats["home"] = str(self.home)
        return stats

    def model_note(self) -> str | None:
        """A line when the store was embedded with an earlier cables adapter than this install ships, else None."""
        from embeddings.model import default_model, outdated_adapter

        stored = self.store.get_meta("model")
        if not outdated_adapter(stored):
            return None
        return (f"embedded with an earlier cables adapter ({stored}) than this install's ({default_model()}); "
                "searches work, and ingesting the sources into a fresh --home gives the current one's quality")

    def load(self) -> None:
        """Load the model and the (synced) vector index now rather than on the first question, and keep filters
        in memory from here on (for a process that answers many questions)."""
        _ = self.embedder, self.index
        self.store.keep_filter_index()

    def is_empty(self) -> bool:
        """No cable stored yet (one row looked up: every count of `stats` took a second on a cold 1M store)."""
        return not self.store.has_cables()

    def close(self) -> None:
        self.store.close()


def _canonical(model: str) -> str:
    from embeddings.model import model_name

    return model_name(model)

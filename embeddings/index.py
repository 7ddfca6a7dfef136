"""The FAISS vector index: ids and vectors in, nearest ids out; saved as a folder with a manifest."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from embeddings import ann
from embeddings.errors import IndexFileError

FORMAT_VERSION = 1
INDEX_FILE = "vectors.faiss"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    """What an index file holds and which model made it; checked on every load."""

    model: str
    dim: int
    count: int
    kind: str = "flat"
    format: int = FORMAT_VERSION
    trained_for: int = 0  # ivf: the size its clusters were chosen for (retrained when it outgrows them)


class VectorIndex:
    """Inner-product search over unit vectors keyed by int64 ids; filters via an id selector.

    Exact (flat) while small; past `ann.ANN_THRESHOLD` vectors it becomes an IVF index (float16 codes) in place
    (one build), and later adds go into the existing clusters, re-clustering only when the index has grown
    `RETRAIN_GROWTH`-fold.
    """

    def __init__(self, model: str, dim: int, faiss_index=None, kind: str = "flat", trained_for: int = 0) -> None:
        import faiss

        self.model = model
        self.dim = dim
        self.kind = kind
        self.trained_for = trained_for
        self._index = faiss_index if faiss_index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._sorted_ids: np.ndarray | None = None
        self.upgraded = False  # turned approximate on load: worth saving

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def manifest(self) -> Manifest:
        return Manifest(model=self.model, dim=self.dim, count=len(self), kind=self.kind, trained_for=self.trained_for)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[1] != self.dim:
            raise IndexFileError(f"vector dimension {vectors.shape[1]} does not match the index ({self.dim})")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._sorted_ids = None
        total = len(self) + len(ids)
        if (self.kind == "flat" and ann.wants_ann(total)) or (
                self.kind == "ivf" and total > ann.RETRAIN_GROWTH * max(self.trained_for, 1)):
            self._rebuild_ivf(ids, vectors)
        else:
            self._index.add_with_ids(vectors, ids)

    def _rebuild_ivf(self, new_ids: np.ndarray, new_vectors: np.ndarray) -> None:
        """Cluster everything held plus the new vectors into a fresh IVF index sized for the total."""
        if self.kind == "flat":
            old_ids, old_vectors = ann.flat_contents(self._index)
        else:
            old_ids = self.ids()
            old_vectors = self.vectors(old_ids)
        all_ids = np.concatenate([old_ids, new_ids])
        all_vectors = np.concatenate([old_vectors, new_vectors])
        del old_vectors
        self._index = ann.build_ivf(self.dim, all_ids, all_vectors)
        self.kind = "ivf"
        self.trained_for = len(all_ids)

    def remove(self, ids: np.ndarray) -> None:
        import faiss

        if len(ids):
            self._sorted_ids = None
            ids = np.ascontiguousarray(ids, dtype=np.int64)
            if self.kind == "ivf":  # the IVF's id hashtable only removes through an array selector
                self._index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids)))
            else:
                self._index.remove_ids(faiss.IDSelectorBatch(ids))

    def ids(self) -> np.ndarray:
        import faiss

        if self.kind == "ivf":
            return ann.ivf_ids(self._index)
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids (zeros for an id without a vector, e.g. a redaction-only paragraph)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        if len(ids) == 0:
            return out
        present = self.contains(ids)
        if present.any():
            out[present] = self._index.reconstruct_batch(np.ascontiguousarray(ids[present]))
        return out

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """A boolean mask: which of these ids the index holds (a sorted copy of the ids is cached)."""
        if self._sorted_ids is None:
            self._sorted_ids = np.sort(self.ids())
        held = self._sorted_ids
        if len(held) == 0:
            return np.zeros(len(ids), dtype=bool)
        positions = np.minimum(np.searchsorted(held, ids), len(held) - 1)
        return held[positions] == ids

    def search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) for one query vector; `allowed_ids` restricts the search itself (not a post-filter)."""
        import faiss

        if len(self) == 0 or k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        params = None
        if allowed_ids is not None:
            if len(allowed_ids) == 0:
                return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
            if self.kind == "ivf" and len(allowed_ids) <= ann.EXACT_FILTER_LIMIT:
                return self._exact_among(query[0], allowed_ids, k)
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
            if self.kind == "ivf":
                params = faiss.SearchParametersIVF(sel=selector, nprobe=self._index.nprobe)
            else:
                params = faiss.SearchParameters(sel=selector)
        k = min(k, len(self))
        scores, ids = _single_threaded(lambda: self._index.search(query, k, params=params))
        keep = ids[0] >= 0
        if allowed_ids is not None and self.kind == "ivf" and keep.sum() < min(k, len(allowed_ids)):
            return self._exact_among(query[0], allowed_ids, k)  # the probed clusters held too few allowed ids
        return scores[0][keep], ids[0][keep]

    def _exact_among(self, query: np.ndarray, allowed_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k among a few allowed ids, from their stored vectors (ids not in the index are dropped)."""
        allowed_ids = np.ascontiguousarray(allowed_ids, dtype=np.int64)
        allowed_ids = allowed_ids[self.contains(allowed_ids)]
        scores = self.vectors(allowed_ids) @ query
        top = np.argsort(-scores, kind="stable")[:k]
        return scores[top].astype(np.float32), allowed_ids[top]

    def save(self, folder: str | os.PathLike) -> None:
        """Write index and manifest atomically: a crash leaves the previous pair in place."""
        import faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp_index = folder / (INDEX_FILE + ".tmp")
        tmp_manifest = folder / (MANIFEST_FILE + ".tmp")
        try:
            faiss.write_index(self._index, str(tmp_index))
            tmp_manifest.write_text(json.dumps(asdict(self.manifest), indent=2))
            for tmp in (tmp_index, tmp_manifest):
                with open(tmp, "rb") as handle:
                    os.fsync(handle.fileno())
        except (OSError, RuntimeError) as error:  # faiss reports a failed write (e.g. a full disk) as RuntimeError
            for tmp in (tmp_index, tmp_manifest):
                tmp.unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise
            full = "No space left" in str(error)
            raise OSError(errno.ENOSPC if full else errno.EIO, os.strerror(errno.ENOSPC if full else errno.EIO)) \
                from error
        os.replace(tmp_index, folder / INDEX_FILE)
        os.replace(tmp_manifest, folder / MANIFEST_FILE)

    @classmethod
    def load(cls, folder: str | os.PathLike, model: str | None = None) -> VectorIndex:
        """Read a saved index; refuse one made by another model or one whose file does not match its manifest."""
        import faiss

        folder = Path(folder)
        manifest = read_manifest(folder)
        if model is not None and manifest.model != model:
            raise IndexFileError(f"the index in {folder} was built with model {manifest.model!r}, not {model!r}; "
                                 f"use --model {manifest.model} or another store folder")
        try:
            index = faiss.read_index(str(folder / INDEX_FILE))
        except RuntimeError as error:
            raise IndexFileError(f"{folder / INDEX_FILE} is damaged ({str(error).splitlines()[0][:120]}); "
                                 "delete it to have it rebuilt from the stored vectors") from error
        if index.ntotal != manifest.count or index.d != manifest.dim:
            raise IndexFileError(f"{folder / INDEX_FILE} does not match its manifest; delete it to rebuild")
        loaded = cls(manifest.model, manifest.dim, index, kind=manifest.kind, trained_for=manifest.trained_for)
        if loaded.kind == "flat" and ann.wants_ann(len(loaded)):  # saved before it outgrew exact search
            loaded._rebuild_ivf(np.zeros(0, dtype=np.int64), np.zeros((0, loaded.dim), dtype=np.float32))
            loaded.upgraded = True
        return loaded


def _single_threaded(search):
    """Run one query's search on one thread: OpenMP threads waiting on each other cost more than they save
    for a single query (measured 2.5x slower with two threads on a busy 2-core machine)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return search()
    finally:
        faiss.omp_set_num_threads(threads)


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_FILE
    try:
        data = json.loads(path.read_text())
        manifest = Manifest(**data)
    except FileNotFoundError as error:
        raise IndexFileError(f"no index manifest at {path}") from error
    except (ValueError, TypeError) as error:
        raise IndexFileError(f"{path} is damaged ({error}); delete it to rebuild") from error
    if manifest.format != FORMAT_VERSION:
        raise IndexFileError(f"{path}: index format {manifest.format} is not supported (expected {FORMAT_VERSION})")
    return manifest

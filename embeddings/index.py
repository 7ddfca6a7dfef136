"""The FAISS vector index: ids and vectors in, nearest ids out; saved as a folder with a manifest."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

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


class VectorIndex:
    """Inner-product search over unit vectors keyed by int64 ids (exact; filters via an id selector)."""

    def __init__(self, model: str, dim: int, faiss_index=None) -> None:
        import faiss

        self.model = model
        self.dim = dim
        self._index = faiss_index if faiss_index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def manifest(self) -> Manifest:
        return Manifest(model=self.model, dim=self.dim, count=len(self))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[1] != self.dim:
            raise IndexFileError(f"vector dimension {vectors.shape[1]} does not match the index ({self.dim})")
        self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> None:
        import faiss

        if len(ids):
            self._index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64)))

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids (zeros for an id without a vector, e.g. a redaction-only paragraph)."""
        if len(ids) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            return self._index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))
        except RuntimeError:  # some id is not in the index: fetch one by one
            out = np.zeros((len(ids), self.dim), dtype=np.float32)
            for row, key in enumerate(ids):
                with contextlib.suppress(RuntimeError):
                    out[row] = self._index.reconstruct(int(key))
            return out

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
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
        k = min(k, len(self))
        scores, ids = self._index.search(query, k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

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
        return cls(manifest.model, manifest.dim, index)


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

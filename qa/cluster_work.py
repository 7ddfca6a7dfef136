"""What runs on the Ray cluster's workers: parsing tasks (files -> cable rows) and the embedding actor.

Both reuse the local pipeline's own functions (`read_file`, `read_cables`, `embedding_text`, `indexable`), so a
cable parsed and embedded on a worker is the cable a local ingest would have stored. Rows are plain columns
(ints, strings, bytes) so Ray Data can move them between nodes; a cable travels pickled.

Row columns: seq (file order), part (cable index in its file; FILE_ROW for the file's own row), path, sha,
kind (CABLE / PARSE_ERROR / FILE), status (the FILE row: NEW / UNCHANGED / UNREADABLE), payload (pickled cable,
or the error message), count (FILE row: how many item rows the file produced), embed (the cable needs vectors).
The embedding actor adds: vectors (float32 bytes, one row per indexable paragraph), sentences (float16 bytes, one
row per sentence of those paragraphs, in order) and node (the node id).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import CablesError, ParseError
from qa.formats import read_cables
from qa.ingest import BATCH_PARAGRAPHS, embedding_input, indexable, read_file
from qa.records import Cable

FILE_ROW = -1
CABLE, PARSE_ERROR, FILE = "cable", "parse-error", "file"
NEW, UNCHANGED, UNREADABLE = "new", "unchanged", "unreadable"
COLUMNS = ("seq", "part", "path", "sha", "kind", "status", "payload", "count", "embed")


def parse_files(batch: Mapping[str, Any], seen_files: frozenset[str], stored: Mapping[str, int]) -> dict[str, list]:
    """Ray task: read and parse a batch of files into cable rows plus one FILE row each.

    Columns in: seq, path (as the user gave it: cables' `source`), read_path (absolute, for the worker).

    `seen_files` (sha256 of files already ingested) and `stored` (cable id -> completeness in the store) are
    snapshots taken by the driver when the job starts: an unchanged file is not parsed, and a cable whose stored
    copy is at least as complete is not sent to the embedding actors. The driver re-checks both against the live
    store, so a stale snapshot costs work, never correctness.
    """
    seen_files, stored = _resolve(seen_files), _resolve(stored)
    out: dict[str, list] = {name: [] for name in COLUMNS}

    def row(seq: int, part: int, path: str, sha: str, kind: str, status: str, payload: bytes, count: int = 0,
            embed: bool = False) -> None:
        for name, value in zip(COLUMNS, (seq, part, path, sha, kind, status, payload, count, embed), strict=True):
            out[name].append(value)

    for seq, path, read_path in zip(batch["seq"], batch["path"], batch["read_path"], strict=True):
        seq, path, read_path = int(seq), str(path), str(read_path)
        try:
            text, sha = read_file(Path(read_path))
        except CablesError as error:  # named by the path the user gave, as the local engine names it
            row(seq, FILE_ROW, path, "", FILE, UNREADABLE, str(error).replace(read_path, path, 1).encode())
            continue
        if sha in seen_files:
            row(seq, FILE_ROW, path, sha, FILE, UNCHANGED, b"")
            continue
        count = 0
        for part, item in enumerate(read_cables(text, path)):
            if isinstance(item, ParseError):
                row(seq, part, path, sha, PARSE_ERROR, NEW, str(item).encode())
            else:
                needs_vectors = stored.get(item.id, -1) < item.completeness()
                row(seq, part, path, sha, CABLE, NEW, pickle.dumps(item), embed=needs_vectors)
            count = part + 1
        row(seq, FILE_ROW, path, sha, FILE, NEW, b"", count=count)
    return out


class EmbedActor:
    """Ray actor: loads the embedding model once, then embeds the paragraphs of each batch of cable rows."""

    def __init__(self, model: str | None, backend: str, cache_dir: str | None, threads: int | None) -> None:
        import ray

        from embeddings import load_embedder

        self.node = ray.get_runtime_context().get_node_id()
        folder = _usable_folder(cache_dir)
        self.embedder = load_embedder(model, backend=backend, cache_dir=folder, threads=threads)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        out = {name: list(batch[name]) for name in COLUMNS}
        blobs = [b""] * len(out["seq"])
        sentence_blobs = [b""] * len(out["seq"])
        for group in embedding_groups(batch):
            inputs: list[tuple[str, list[tuple[int, int]]]] = []
            owners: list[int] = []
            for row, cable in group:
                for paragraph in cable.paragraphs:
                    if indexable(paragraph):
                        inputs.append(embedding_input(cable, paragraph))
                        owners.append(row)
            if not inputs:
                continue
            passages = self.embedder.embed_passages([t for t, _ in inputs], [s for _, s in inputs])
            by_row: dict[int, list] = {}
            for passage, owner in zip(passages, owners, strict=True):
                by_row.setdefault(owner, []).append(passage)
            for row, mine in by_row.items():
                blobs[row] = np.ascontiguousarray(np.vstack([p.vector for p in mine]), dtype=np.float32).tobytes()
                sentence_blobs[row] = np.ascontiguousarray(np.vstack([p.spans for p in mine]),
                                                           dtype=np.float16).tobytes()
        out["vectors"] = blobs
        out["sentences"] = sentence_blobs
        out["node"] = [self.node] * len(blobs)
        return out


def embedding_groups(batch: Mapping[str, Any]) -> Iterator[list[tuple[int, Cable]]]:
    """The cables to embed, grouped as `Ingester` groups them (per file, cut at BATCH_PARAGRAPHS paragraphs).

    The int8 model scales activations per call, so a text's vector depends slightly on the texts embedded with
    it; embedding the same groups as the local engine keeps both engines' vectors equal.
    """
    group: list[tuple[int, Cable]] = []
    paragraphs = 0
    previous_seq = None
    for row, (seq, kind, payload, embed) in enumerate(zip(batch["seq"], batch["kind"], batch["payload"],
                                                          batch["embed"], strict=True)):
        if seq != previous_seq and group:
            yield group
            group, paragraphs = [], 0
        previous_seq = seq
        if kind == CABLE and embed:
            cable = pickle.loads(payload)
            group.append((row, cable))
            paragraphs += len(cable.paragraphs)
            if paragraphs >= BATCH_PARAGRAPHS:
                yield group
                group, paragraphs = [], 0
    if group:
        yield group


_SNAPSHOTS: dict[str, Any] = {}


def _resolve(value: Any) -> Any:
    """A snapshot the driver put in the object store, fetched once per worker process (the refs are per job)."""
    import ray

    if not isinstance(value, ray.ObjectRef):
        return value
    key = value.hex()
    if key not in _SNAPSHOTS:
        _SNAPSHOTS.clear()
        _SNAPSHOTS[key] = ray.get(value)
    return _SNAPSHOTS[key]


def _usable_folder(folder: str | None) -> str | None:
    """The driver's model cache folder when this node can write it (one machine, shared disk), else the default."""
    if not folder:
        return None
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder

"""Synthetic large stores for bench/query.py, built without running the model.

Every cable of a real store (the shared corpus, ingested) is copied `reps` times under new ids (`<ID>S<copy>`),
with its metadata, paragraph texts and keyword rows; each copy's vectors (paragraph and sentence vectors) are the
real ones plus Gaussian noise (renormalised), so copies are near-duplicates but not identical.  The FAISS index is
built once, directly, and saved in sync with the database, so opening the store never re-embeds or rebuilds anything.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import numpy as np

NOISE = 0.01  # per-dimension standard deviation: a copy's cosine to its original is ~0.98
DONE_MARK = "synthetic.json"


def build(base_home: Path, target_home: Path, paragraphs: int, seed: int = 7) -> dict:
    """Create (or reuse, if already complete) a store of about `paragraphs` paragraphs under target_home."""
    mark = target_home / DONE_MARK
    if mark.exists():
        return json.loads(mark.read_text())
    from embeddings import VectorIndex
    from qa.library import DB_FILE, INDEX_DIR
    from qa.store import Store, keyword_text

    started = time.perf_counter()
    base = sqlite3.connect(f"file:{base_home / DB_FILE}?mode=ro", uri=True)
    model = base.execute("SELECT value FROM meta WHERE key='model'").fetchone()[0]
    cables = base.execute("SELECT * FROM cables ORDER BY id").fetchall()
    rows = base.execute("SELECT cable_id, position, label, marking, heading, text, vector, sentence_vectors "
                        "FROM paragraphs ORDER BY cable_id, position").fetchall()
    base_count = len(rows)
    reps = max(1, round(paragraphs / base_count))
    by_cable: dict[str, list[tuple]] = {}
    for row in rows:
        by_cable.setdefault(row[0], []).append(row)
    dim = next(len(r[6]) // 4 for r in rows if r[6] is not None)

    target_home.mkdir(parents=True, exist_ok=True)
    Store(target_home / DB_FILE).close()  # the real schema
    db = sqlite3.connect(target_home / DB_FILE)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('model', ?)", (model,))
    rng = np.random.default_rng(seed)
    all_ids: list[np.ndarray] = []
    all_vectors: list[np.ndarray] = []
    next_id = 1
    for copy in range(reps):
        cable_rows, paragraph_rows, fts_rows, ids, vectors = [], [], [], [], []
        for cable in cables:
            new_id = f"{cable[0]}S{copy}"
            cable_rows.append((new_id, f"{cable[1]}S{copy}", *cable[2:]))
            subject = cable[7]
            for _, position, label, marking, heading, text, blob, sentence_blob in by_cable.get(cable[0], []):
                vector = None
                if blob is not None:
                    vector = np.frombuffer(blob, dtype=np.float32) + rng.normal(0, NOISE, dim).astype(np.float32)
                    vector /= np.linalg.norm(vector)
                    ids.append(next_id)
                    vectors.append(vector)
                sentences = None
                if sentence_blob is not None:
                    sentences = np.frombuffer(sentence_blob, dtype=np.float16).reshape(-1, dim).astype(np.float32)
                    sentences = sentences + rng.normal(0, NOISE, sentences.shape).astype(np.float32)
                    sentences /= np.maximum(np.linalg.norm(sentences, axis=1, keepdims=True), 1e-12)
                    sentences = sentences.astype(np.float16).tobytes()
                paragraph_rows.append((next_id, new_id, position, label, marking, heading, text,
                                       None if vector is None else vector.tobytes(), sentences))
                context = " ".join(x for x in (subject, heading, new_id) if x)
                fts_rows.append((next_id, keyword_text(text), context))
                next_id += 1
        with db:
            db.executemany("INSERT INTO cables VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", cable_rows)
            db.executemany("INSERT INTO paragraphs(id, cable_id, position, label, marking, heading, text, vector, "
                           "sentence_vectors) VALUES (?,?,?,?,?,?,?,?,?)", paragraph_rows)
            db.executemany("INSERT INTO paragraphs_fts(rowid, body, context) VALUES (?,?,?)", fts_rows)
        all_ids.append(np.asarray(ids, dtype=np.int64))
        all_vectors.append(np.vstack(vectors).astype(np.float32))
    with db:
        db.execute("INSERT INTO paragraphs_fts(paragraphs_fts) VALUES ('optimize')")
    db.close()
    index = VectorIndex(model, dim)
    ids_array = np.concatenate(all_ids)
    del all_ids
    vectors_array = np.concatenate(all_vectors)
    del all_vectors
    index.add(ids_array, vectors_array)
    index.save(target_home / INDEX_DIR)
    _share_models(base_home / "models", target_home / "models")
    info = {"paragraphs": next_id - 1, "vectors": len(ids_array), "copies": reps, "base_paragraphs": base_count,
            "index": index.kind, "build_seconds": round(time.perf_counter() - started, 1)}
    mark.write_text(json.dumps(info))
    return info


def _share_models(source: Path, target: Path) -> None:
    """The base store's derived models (merged adapter, onnx export), hard-linked where possible, so opening the
    synthetic store loads them rather than making them again inside a timed run."""
    import os
    import shutil

    if not source.is_dir():
        return

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link, dirs_exist_ok=True)

"""Candidate rows read by several read-only connections side by side give exactly what one connection reads."""

from __future__ import annotations

import threading

import numpy as np

import qa.store
from tests.conftest import SEEDS


def _sequential(store, ids):
    rows = list(store._rows_by_id("SELECT id, vector, sentence_vectors FROM paragraphs WHERE vector IS NOT NULL "
                                  "AND id IN ({ids})", ids))
    return {r[0]: (r[1], r[2]) for r in rows}


def test_side_by_side_reads_match_one_connection(fake_library, monkeypatch):
    fake_library.ingest([SEEDS])
    store = fake_library.store
    ids = store.vector_ids().tolist()
    assert len(ids) > 8
    monkeypatch.setattr(qa.store, "PARALLEL_READ_MIN", 2)
    monkeypatch.setattr(qa.store, "PARALLEL_READERS", 3)
    got_ids, matrix, sentences = store.candidate_vectors(ids + ids[:5] + [10**9])  # repeats and an unknown id
    assert store._readers is not None and store._readers.count == 3  # the parallel path ran
    expected = _sequential(store, ids)
    assert sorted(got_ids.tolist()) == sorted(expected)
    for row, pid in enumerate(got_ids.tolist()):
        assert matrix[row].tobytes() == expected[pid][0]
    owners = sentences.owners.tolist()
    assert sorted(owners) == sorted(pid for pid, (_, blob) in expected.items() if blob)
    for number, pid in enumerate(owners):
        end = sentences.starts[number + 1] if number + 1 < len(owners) else len(sentences.matrix)
        stored = np.frombuffer(expected[pid][1], dtype=np.float16).reshape(-1, matrix.shape[1])
        assert np.array_equal(sentences.matrix[sentences.starts[number]:end], stored.astype(np.float32))


def test_readers_close_with_the_store(fake_library, monkeypatch):
    fake_library.ingest([SEEDS])
    monkeypatch.setattr(qa.store, "PARALLEL_READ_MIN", 2)
    fake_library.store.candidate_vectors(fake_library.store.vector_ids().tolist())
    assert any(t.name.startswith("store-read") for t in threading.enumerate())
    fake_library.close()
    assert not any(t.name.startswith("store-read") for t in threading.enumerate())

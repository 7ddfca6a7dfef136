"""The index turns approximate (IVF) above a size threshold, keeps exact answers for indexed vectors, and grows
incrementally; checked on random unit vectors and on the real model's vectors of the seed cables."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss")

from embeddings import VectorIndex, ann


def _unit(rows: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def small_threshold(monkeypatch):
    monkeypatch.setattr(ann, "ANN_THRESHOLD", 1000)
    monkeypatch.setattr(ann, "ivf_params", lambda size: ann.IvfParams(nlist=16, nprobe=4))


def test_selection_by_size():
    assert not ann.wants_ann(ann.ANN_THRESHOLD - 1) and ann.wants_ann(ann.ANN_THRESHOLD)
    small, large = ann.ivf_params(200_000), ann.ivf_params(3_000_000)
    assert small.nlist < large.nlist and small.nprobe <= large.nprobe
    assert ann.ivf_params(1_000_000).nlist == 1024 and 0 < ann.ivf_params(1_000_000).nprobe < 1024


def test_flat_becomes_ivf_and_returns_each_indexed_vector_first(small_threshold, tmp_path):
    vectors = _unit(1500)
    ids = np.arange(10, 1510, dtype=np.int64)
    index = VectorIndex("m", 32)
    index.add(ids[:600], vectors[:600])
    assert index.kind == "flat"
    index.add(ids[600:], vectors[600:])
    assert index.kind == "ivf" and len(index) == 1500 and index.trained_for == 1500
    for row in range(0, 1500, 37):
        scores, found = index.search(vectors[row], 5)
        assert found[0] == ids[row] and scores[0] == pytest.approx(1.0, abs=1e-3)  # float16 codes
    assert sorted(index.ids().tolist()) == ids.tolist()
    assert index._index.code_size == 2 * 32  # float16 codes: half the memory of float32
    np.testing.assert_allclose(index.vectors(ids[[3, 700]]), vectors[[3, 700]], atol=1e-3)  # float16 rounding
    index.save(tmp_path / "ix")
    loaded = VectorIndex.load(tmp_path / "ix", "m")
    assert loaded.kind == "ivf" and loaded.trained_for == 1500
    assert loaded.search(vectors[42], 1)[1][0] == ids[42]


def test_ivf_adds_without_rebuild_removes_and_filters(small_threshold):
    vectors = _unit(2600, seed=1)
    ids = np.arange(2600, dtype=np.int64)
    index = VectorIndex("m", 32)
    index.add(ids[:1200], vectors[:1200])
    inner = index._index
    index.add(ids[1200:1300], vectors[1200:1300])
    assert index._index is inner and index.trained_for == 1200  # appended to the existing clusters
    assert index.search(vectors[1250], 1)[1][0] == 1250
    index.remove(np.array([1250]))
    assert 1250 not in index.search(vectors[1250], 10)[1]
    allowed = np.array([5, 77, 1299, 999_999])  # an id not in the index is simply never returned
    scores, found = index.search(vectors[77], 3, allowed_ids=allowed)
    assert found.tolist()[0] == 77 and set(found.tolist()) <= {5, 77, 1299}
    assert np.all(np.diff(scores) <= 1e-6)
    index.add(ids[1300:], vectors[1300:])  # still within 4x the trained size: no re-clustering
    assert index._index is inner
    index.add(np.arange(5000, 7500), _unit(2500, seed=2))
    assert index._index is not inner and index.trained_for == len(index) == 5099


def test_ann_recall_against_exact_on_clustered_vectors(small_threshold):
    centres = _unit(40, seed=3)
    rng = np.random.default_rng(4)
    vectors = centres[rng.integers(0, 40, 3000)] + rng.normal(0, 0.08, (3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex("m", 32)
    index.add(np.arange(3000), vectors)
    queries = vectors[rng.choice(3000, 50, replace=False)]
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    found = sum(len(set(t.tolist()) & set(index.search(q, 10)[1].tolist()))
                for q, t in zip(queries, truth, strict=True))
    assert found / 500 >= 0.95


@pytest.mark.slow
def test_real_vectors_of_the_seeds_find_themselves_in_an_ivf_index(seeds_home, monkeypatch):
    from qa.library import Library

    monkeypatch.setattr(ann, "ANN_THRESHOLD", 10)
    monkeypatch.setattr(ann, "ivf_params", lambda size: ann.IvfParams(nlist=4, nprobe=1))
    library = Library(seeds_home)
    try:
        ids, vectors = library.store.vectors()
        index = VectorIndex(library.store.get_meta("model"), vectors.shape[1])
        index.add(ids, vectors)
        assert index.kind == "ivf"
        for pid, vector in zip(ids, vectors, strict=True):
            assert index.search(vector, 1)[1][0] == pid
    finally:
        library.close()


def test_a_saved_exact_index_above_the_threshold_turns_approximate_on_load(tmp_path, monkeypatch):
    vectors = _unit(1500, seed=5)
    index = VectorIndex("m", 32)
    index.add(np.arange(1500), vectors)
    assert index.kind == "flat"
    index.save(tmp_path / "ix")
    monkeypatch.setattr(ann, "ANN_THRESHOLD", 1000)
    monkeypatch.setattr(ann, "ivf_params", lambda size: ann.IvfParams(nlist=16, nprobe=4))
    loaded = VectorIndex.load(tmp_path / "ix", "m")
    assert loaded.kind == "ivf" and loaded.upgraded and len(loaded) == 1500
    assert loaded.search(vectors[9], 1)[1][0] == 9

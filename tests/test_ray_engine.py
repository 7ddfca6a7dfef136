"""`cables ingest --engine ray`: a local Ray cluster and a real two-node cluster (one node killed mid-ingest)
write the same store as the local engine, through the real model.

The clusters run in a loopback-only network namespace (tests/ray_cluster.py); the stores are compared here.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, SHARED_CORPUS, run_cli
from tests.ray_cluster import in_loopback_namespace, loopback_namespace_problem

SLICE = 100  # cables for the local-cluster test
SMALL_SLICE = 12  # cables for the two-node tests: the first 12 of the same sorted slice
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "bench" / "devset.jsonl").read_text().splitlines()[:10]]


@pytest.fixture(scope="module")
def ray_runner():
    """How to run a tests/ray_cluster.py scenario; skips (saying why) where Ray cannot start on loopback."""
    pytest.importorskip("ray.data", reason="Ray is not installed: pip install '.[ray]'")
    if not SHARED_CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS} (clone the project beside ../shared)")
    problem = loopback_namespace_problem()
    if problem:
        pytest.skip(f"Ray cannot start here: {problem}")

    def run(*args: str, timeout: int = 400) -> dict:
        command = in_loopback_namespace([sys.executable, str(ROOT / "tests" / "ray_cluster.py"), *args])
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
        assert result.returncode == 0 and lines, f"scenario {args[0]} failed:\n{result.stdout[-3000:]}\n" \
                                                 f"{result.stderr[-3000:]}"
        return json.loads(lines[-1][len("RESULT "):])

    return run


@pytest.fixture(scope="module")
def corpus_slice(tmp_path_factory) -> Path:
    """The SLICE shortest Cablegate pages (~360 paragraphs, which keeps the test short), linked into a folder."""
    folder = tmp_path_factory.mktemp("slice")
    for page in sorted(SHARED_CORPUS.glob("*.html"), key=lambda page: (page.stat().st_size, page.name))[:SLICE]:
        (folder / page.name).symlink_to(page)
    return folder


@pytest.fixture(scope="module")
def small_slice(corpus_slice) -> list[str]:
    """The slice's first files, named one by one: the same paths (so the same cable sources) as in the slice."""
    return [str(page) for page in sorted(corpus_slice.iterdir())[:SMALL_SLICE]]


@pytest.fixture(scope="module")
def new_home(seeds_home, tmp_path_factory):
    """A fresh store folder that already holds the exported ONNX model (the export is not what is tested here)."""

    def make(name: str) -> Path:
        home = tmp_path_factory.mktemp(name)
        shutil.copytree(seeds_home / "models", home / "models")
        return home

    return make


@pytest.fixture(scope="module")
def local_store(ray_runner, corpus_slice, new_home) -> Path:
    """The reference: the slice ingested by the local engine through the real CLI."""
    home = new_home("local-engine")
    run_cli("ingest", str(corpus_slice), "--quiet", home=home, check=True, timeout=600)
    return home


def rows(home: Path, max_paragraph: int | None = None) -> dict[str, list]:
    """Everything both engines must agree on, read straight from SQLite (vectors apart)."""
    db = sqlite3.connect(home / "cables.db")
    limit = f"WHERE id <= {max_paragraph}" if max_paragraph else ""
    paragraphs = db.execute(f"SELECT id, cable_id, position, label, marking, heading, text FROM paragraphs {limit} "
                            "ORDER BY id").fetchall()
    cable_ids = sorted({p[1] for p in paragraphs} | {c[0] for c in db.execute("SELECT id FROM cables")
                                                      if not max_paragraph})
    marks = ",".join("?" * len(cable_ids))
    data = {
        "paragraphs": paragraphs,
        "cables": db.execute(f"SELECT * FROM cables WHERE id IN ({marks}) ORDER BY id", cable_ids).fetchall(),
        "provenance": db.execute(f"SELECT cable_id, source, completeness, kept FROM provenance WHERE cable_id IN "
                                 f"({marks}) ORDER BY cable_id, source", cable_ids).fetchall(),
        "files": db.execute("SELECT sha256, path FROM files ORDER BY path").fetchall(),
        "vectors": db.execute(f"SELECT id, vector FROM paragraphs {limit} ORDER BY id").fetchall(),
    }
    db.close()
    return data


def assert_same_store(reference: Path, home: Path, cables: int) -> None:
    """`home` holds exactly the reference's first `cables` cables: same rows, ids, vectors, files, manifest."""
    mine = rows(home)
    theirs = rows(reference, max_paragraph=max(p[0] for p in mine["paragraphs"]) if cables < SLICE else None)
    assert len(mine["cables"]) == cables
    for table in ("cables", "paragraphs", "provenance"):
        assert mine[table] == theirs[table], f"{table} differ"
    assert set(mine["files"]) <= set(theirs["files"]) and len(mine["files"]) == cables
    assert [i for i, _ in mine["vectors"]] == [i for i, _ in theirs["vectors"]]
    for (pid, a), (_, b) in zip(mine["vectors"], theirs["vectors"], strict=True):
        assert (a is None) == (b is None), f"paragraph {pid}: vector present in one store only"
        if a is not None:
            np.testing.assert_allclose(np.frombuffer(a, np.float32), np.frombuffer(b, np.float32), atol=1e-5)
    manifest = json.loads((home / "index" / "manifest.json").read_text())
    assert manifest["count"] == sum(v is not None for _, v in mine["vectors"])
    assert manifest["model"] == json.loads((reference / "index" / "manifest.json").read_text())["model"]


def top5(home: Path) -> list[list[str]]:
    from qa.library import Library

    library = Library(home)
    try:
        return [[hit.citation for hit in library.search(q, k=5)] for q in QUESTIONS]
    finally:
        library.close()


@pytest.mark.slow
def test_local_ray_cluster_writes_the_local_engines_store(ray_runner, corpus_slice, local_store, new_home):
    home = new_home("ray-local")
    result = ray_runner("local", str(home), str(corpus_slice))
    assert result["exit"] == 0, result["error"]
    assert result["summary"].startswith(f"{SLICE} files, {SLICE} cables added")
    assert result["note"].splitlines()[-1].startswith("ray: 2 embedding actors (0 GPU each)")
    assert_same_store(local_store, home, cables=SLICE)
    citations = top5(home)
    assert citations == top5(local_store)
    assert sum(len(c) for c in citations) == 5 * len(QUESTIONS)


@pytest.fixture(scope="module")
def two_node_run(ray_runner, small_slice, new_home) -> tuple[dict, Path, Path]:
    home_a, home_b = new_home("two-nodes"), new_home("node-killed")
    return ray_runner("two-nodes", str(home_a), str(home_b), *small_slice), home_a, home_b


@pytest.mark.slow
def test_two_node_cluster_embeds_on_both_nodes_and_writes_the_same_store(two_node_run, local_store):
    result, home, _ = two_node_run
    assert result["addresses"] == ["127.0.0.1"] and len(result["alive"]) == 2
    assert result["both"]["error"] is None and result["both"]["actors"] == 2
    # the embedding actors ran on the head and on the worker (node ids from the cluster's actor table); which of
    # them embeds the blocks of a 12-cable job is Ray's choice (often both, sometimes one), so that is not asserted
    embedders = [nodes for name, nodes in result["both"]["actor_nodes"].items() if "EmbedActor" in name]
    assert embedders and set(embedders[0]) == set(result["alive"]), result["both"]["actor_nodes"]
    assert result["both"]["nodes"] and set(result["both"]["nodes"]) <= set(result["alive"])
    assert_same_store(local_store, home, cables=SMALL_SLICE)
    again = result["again"]["summary"]  # the same ingest again: nothing is parsed or embedded again
    assert again.startswith(f"{SMALL_SLICE} files, 0 cables added, 0 paragraphs")
    assert f"{SMALL_SLICE} files already ingested" in again


@pytest.mark.slow
def test_killing_the_worker_node_mid_ingest_still_ends_in_the_same_store(two_node_run, local_store):
    result, _, home = two_node_run
    assert result["killed"]
    during = result["during_kill"]
    if during["error"] is None:  # finished on the remaining node
        assert during["summary"].startswith(f"{SMALL_SLICE} files, {SMALL_SLICE} cables added")
        assert set(during["nodes"]) <= {result["head"]} | set(result["alive"])
    else:  # failed cleanly: says so, and the re-run completes
        assert "run the same command again to continue" in during["error"]
        assert result["rerun"]["error"] is None
    assert_same_store(local_store, home, cables=SMALL_SLICE)

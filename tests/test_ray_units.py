"""The Ray engine's parts that need no cluster: install hint, parsing rows, embedding groups, file reordering."""

from __future__ import annotations

import hashlib
import pickle
import random
import subprocess
import sys

import pytest

from qa.cluster_work import CABLE, FILE, FILE_ROW, NEW, UNCHANGED, UNREADABLE, embedding_groups, parse_files
from qa.distributed import _files_in_order
from qa.errors import ClusterError
from tests.conftest import ROOT, SEEDS


def test_engine_ray_without_ray_says_how_to_install_and_exits_2(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from qa.cli import main; "
            f"sys.exit(main(['ingest', {str(SEEDS)!r}, '--engine', 'ray', '--home', {str(tmp_path / 'h')!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert "pip install '.[ray]'" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "h").exists()  # nothing was created


def test_parse_files_skips_known_files_names_unreadable_ones_and_flags_stored_cables(tmp_path):
    seeds = sorted(SEEDS.iterdir())[:3]
    (tmp_path / "empty.txt").write_bytes(b"")
    known = hashlib.sha256(seeds[0].read_bytes()).hexdigest()
    paths = [*seeds, tmp_path / "empty.txt"]
    batch = {"seq": list(range(4)), "path": [f"given/{p.name}" for p in paths], "read_path": [str(p) for p in paths]}
    first = pickle.loads(parse_files({k: v[1:2] for k, v in batch.items()}, frozenset(), {})["payload"][0])
    out = parse_files(batch, seen_files=frozenset({known}), stored={first.id: 10**9})
    files = [i for i, kind in enumerate(out["kind"]) if kind == FILE]
    assert [out["status"][i] for i in files] == [UNCHANGED, NEW, NEW, UNREADABLE]
    assert bytes(out["payload"][files[3]]).decode() == "given/empty.txt: empty file"
    cables = [i for i, kind in enumerate(out["kind"]) if kind == CABLE]
    assert [out["seq"][i] for i in cables] == [1, 2]
    assert [out["embed"][i] for i in cables] == [False, True]  # seq 1's cable is stored, more complete
    assert pickle.loads(out["payload"][cables[1]]).source == "given/" + seeds[2].name


def test_embedding_groups_are_the_local_engines_flush_groups():
    from qa.records import Cable, Paragraph

    def cable(name: str, paragraphs: int) -> bytes:
        return pickle.dumps(Cable(id=name, paragraphs=tuple(Paragraph(str(i), "text") for i in range(paragraphs))))

    rows = [(0, 200), (0, 100), (0, 10), (1, 5), (2, 0)]  # (file, paragraphs): flush at 256, and per file
    batch = {"seq": [s for s, _ in rows], "kind": [CABLE] * len(rows), "embed": [True] * len(rows),
             "payload": [cable(f"C{i}", n) for i, (_, n) in enumerate(rows)]}
    groups = [[row for row, _ in group] for group in embedding_groups(batch)]
    assert groups == [[0, 1], [2], [3], [4]]


def _file(seq: int, parts: int) -> list[dict]:
    rows = [{"seq": seq, "part": part, "kind": CABLE} for part in range(parts)]
    return [*rows, {"seq": seq, "part": FILE_ROW, "kind": FILE, "count": parts}]


def test_rows_in_any_order_come_back_as_files_in_order():
    rows = [row for seq, parts in enumerate([2, 0, 3, 1]) for row in _file(seq, parts)]
    random.Random(7).shuffle(rows)
    files = list(_files_in_order(rows, 4))
    assert [[(r["seq"], r["part"]) for r in f] for f in files] == [
        [(0, 0), (0, 1), (0, -1)], [(1, -1)], [(2, 0), (2, 1), (2, 2), (2, -1)], [(3, 0), (3, -1)]]


def test_a_file_missing_from_the_job_is_an_error_not_a_silent_gap():
    rows = _file(0, 1) + _file(2, 1)
    with pytest.raises(ClusterError, match="returned 1 of 3 files"):
        list(_files_in_order(rows, 3))


class _Cluster:
    def __init__(self, **resources: float) -> None:
        self.resources = resources

    def cluster_resources(self) -> dict[str, float]:
        return self.resources


def test_pool_size_is_one_actor_per_gpu_on_gpu_clusters_else_one_per_cpu():
    from qa.distributed import _pool_size

    assert _pool_size(_Cluster(CPU=16, GPU=4), None, None) == (4, 1.0)
    assert _pool_size(_Cluster(CPU=16, GPU=4), 0.5, None) == (8, 0.5)
    assert _pool_size(_Cluster(CPU=16, GPU=4), 0, None) == (16, 0.0)
    assert _pool_size(_Cluster(CPU=2), None, None) == (2, 0.0)
    assert _pool_size(_Cluster(CPU=2), None, 1) == (1, 0.0)
    with pytest.raises(ClusterError, match="--gpus-per-actor 1 but the cluster has 0 GPUs"):
        _pool_size(_Cluster(CPU=2), 1, None)


def test_an_address_where_no_cluster_answers_fails_at_once_and_stores_nothing(fake_library):
    pytest.importorskip("ray.data", reason="Ray is not installed: pip install '.[ray]'")
    import socket

    from qa.distributed import ingest_on_ray

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ClusterError, match=f"no Ray cluster answers at 127.0.0.1:{port}; start one with"):
        ingest_on_ray(fake_library, [SEEDS], address=f"127.0.0.1:{port}")
    assert fake_library.stats()["cables"] == 0

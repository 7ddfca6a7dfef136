"""Run a Ray ingest scenario and print its outcome as one JSON line (driven by tests/test_ray_*.py).

Run inside a fresh network namespace (`in_loopback_namespace`): there Ray, which otherwise advertises the
machine's outside address, can only use 127.0.0.1, so the whole cluster talks over loopback.

  python tests/ray_cluster.py local HOME PATH...     ray.init(num_cpus=2), then `cables ingest PATH... --engine ray`
  python tests/ray_cluster.py two-nodes HOME_A HOME_B PATH...
      head + worker node (`ray start`, one CPU each); ingest PATHs into HOME_A (twice); then into HOME_B, killing the
      worker node once the first cable is stored, and re-running the ingest when the job failed
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_AUTH_MODE"] = "disabled"  # a throwaway cluster on loopback inside its own network namespace
CLUSTER_ENV = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}


def in_loopback_namespace(args: list[str]) -> list[str]:
    """The command line running `args` in a new network namespace holding only an up loopback interface."""
    script = 'ip link set lo up && exec "$@"'
    return ["unshare", "--net", "sh", "-c", script, "sh", *args]


def loopback_namespace_problem() -> str | None:
    """Why a loopback-only namespace cannot be made here (None when it can)."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return "needs `unshare` and `ip` (util-linux, iproute2) to keep the Ray cluster on loopback"
    probe = subprocess.run(in_loopback_namespace(["true"]), capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"cannot make a loopback-only network namespace for Ray ({probe.stderr.strip()[:200]})"
    return None


def ingest(home: str, paths: list[str], **options) -> dict:
    from qa.distributed import ingest_on_ray
    from qa.errors import ClusterError
    from qa.library import Library

    library = Library(home)
    try:
        run = ingest_on_ray(library, paths, **options)
        return {"summary": run.report.summary(), "nodes": list(run.nodes), "actors": run.actors, "error": None}
    except ClusterError as error:
        return {"summary": None, "nodes": [], "actors": 0, "error": str(error)}
    finally:
        library.close()


def local(home: str, *paths: str) -> dict:
    import ray

    from qa.cli import main

    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20,
             logging_level="WARNING", log_to_driver=False)
    try:  # through the real command line, which uses the Ray already started here
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["ingest", *paths, "--engine", "ray", "--home", home, "--quiet"])
        return {"exit": code, "summary": out.getvalue().strip().splitlines()[-1], "note": err.getvalue().strip(),
                "error": None if code == 0 else err.getvalue()}
    finally:
        ray.shutdown()


def two_nodes(home_a: str, home_b: str, *paths: str) -> dict:
    import ray

    ray_bin = str(Path(sys.executable).with_name("ray"))
    temp = tempfile.mkdtemp(prefix="rayt")
    port = _free_port()
    common = ["--num-cpus", "1", "--disable-usage-stats", "--object-store-memory", str(150 * 2**20), "--block"]
    env = dict(os.environ, **CLUSTER_ENV)
    nodes: list[subprocess.Popen] = []
    try:
        nodes.append(_start([ray_bin, "start", "--head", "--port", str(port), "--include-dashboard", "false",
                             "--temp-dir", temp, *common], env, Path(temp) / "head.log"))
        _connect(ray, f"127.0.0.1:{port}")
        head_id = ray.get_runtime_context().get_node_id()
        nodes.append(_start([ray_bin, "start", "--address", f"127.0.0.1:{port}", *common], env,
                            Path(temp) / "worker.log"))
        alive = _wait_nodes(ray, 2)
        addresses = sorted({n["NodeManagerAddress"] for n in ray.nodes()})
        both = ingest(home_a, list(paths), embed_batch=2)
        both["actor_nodes"] = _actor_nodes(ray)
        again = ingest(home_a, list(paths))

        killed: dict[str, float] = {}
        worker = nodes[1]

        def kill_worker_once(paragraphs: int, cables: int) -> None:
            if not killed:
                os.killpg(worker.pid, signal.SIGKILL)  # the whole node: raylet, object store, its actors
                killed["at"] = time.monotonic()

        during = ingest(home_b, list(paths), embed_batch=2, on_progress=kill_worker_once)
        rerun = ingest(home_b, list(paths)) if during["error"] else None
        return {"head": head_id, "alive": alive, "addresses": addresses, "both": both, "again": again,
                "killed": bool(killed), "during_kill": during, "rerun": rerun}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for node in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
            node.wait(30)
        shutil.rmtree(temp, ignore_errors=True)


def _start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:  # each node in its own process group, so killing one kills that node only
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _connect(ray, address: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
            return
        except (ConnectionError, RuntimeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _actor_nodes(ray) -> dict[str, list[str]]:
    """Class name -> node ids of every actor the cluster ran so far (dead ones included), from the GCS table."""
    from ray._private import state  # a developer API, read-only; the public state API needs the dashboard

    found: dict[str, list[str]] = {}
    for actor in state.actors().values():
        found.setdefault(actor["ActorClassName"], []).append(actor["Address"]["NodeID"])
    return found


def _wait_nodes(ray, count: int) -> list[str]:
    deadline = time.monotonic() + 60
    while True:
        alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        if len(alive) >= count or time.monotonic() > deadline:
            return alive
        time.sleep(0.5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    scenario, *arguments = sys.argv[1:]
    result = {"local": local, "two-nodes": two_nodes}[scenario](*arguments)
    print("RESULT " + json.dumps(result), flush=True)

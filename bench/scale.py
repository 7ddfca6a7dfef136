"""Ingest throughput, local engine vs the Ray engine with 1 and 2 worker processes, on this machine.

    .venv/bin/python bench/scale.py [--cables 60] [--corpus ../shared/corpus/cablegate-html]

Each run ingests the same slice (the first N pages by name) into a fresh store with the real model and prints
paragraphs/s; "parse + store only" runs the local engine with a stand-in for the model, which is the rate at
which a driver can write what a cluster embeds. Ray runs use a local Ray (`ray.init(num_cpus=W)`: W embedding
actors, one thread each) started inside a loopback-only network namespace; "ingest s" excludes starting Ray
(paid once per cluster), "wall s" includes it. The machine that produced the figures is printed first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host import describe  # noqa: E402  (bench/host.py, beside this script)


class NoModel:
    """Stands in for the model to time what the driver does alone: parse and write the store (the ceiling)."""

    name = "no-model"
    dim = 384

    def embed(self, texts):
        import numpy as np

        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        vectors[:, 0] = 1.0
        return vectors


def local_run(home: Path, folder: Path, embedder=None) -> dict:
    from qa.library import Library

    library = Library(home, embedder=embedder)
    start = time.monotonic()
    report = library.ingest([folder])
    seconds = time.monotonic() - start
    library.close()
    return {"paragraphs": report.paragraphs_added, "ingest_s": seconds, "wall_s": seconds}


def ray_run(workers: int, home: Path, folder: Path) -> dict:
    """Runs inside the namespace: start a local Ray with `workers` CPUs, ingest, report."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from qa.distributed import ingest_on_ray
    from qa.library import Library

    start = time.monotonic()
    ray.init(address="local", num_cpus=workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    library = Library(home)
    run = ingest_on_ray(library, [folder])
    wall = time.monotonic() - start
    library.close()
    ray.shutdown()
    return {"paragraphs": run.report.paragraphs_added, "ingest_s": run.seconds, "wall_s": wall,
            "actors": run.actors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cables", type=int, default=60)
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus" / "cablegate-html"))
    parser.add_argument("--ray-run", nargs=3, metavar=("WORKERS", "HOME", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    from qa.cli import quiet_libraries

    quiet_libraries()
    if args.ray_run:
        workers, home, folder = args.ray_run
        print("RESULT " + json.dumps(ray_run(int(workers), Path(home), Path(folder))), flush=True)
        return

    from tests.ray_cluster import in_loopback_namespace, loopback_namespace_problem

    work = Path(tempfile.mkdtemp(prefix="scale-"))
    folder = work / "slice"
    folder.mkdir()
    for page in sorted(Path(args.corpus).glob("*.html"))[:args.cables]:
        (folder / page.name).symlink_to(page.resolve())
    warm = work / "warm"  # export the ONNX model once; every run's store starts with it
    from embeddings import load_embedder

    load_embedder(None, cache_dir=warm / "models").embed(["warm-up"])
    print(describe())
    print(f"slice: {args.cables} cables from {args.corpus}")
    print(f"{'engine':<22} {'paragraphs':>10} {'ingest s':>9} {'wall s':>7} {'paragraphs/s':>13}")

    def fresh(name: str) -> Path:
        home = work / name
        shutil.copytree(warm / "models", home / "models")
        return home

    results = {"parse + store only": local_run(work / "ceiling", folder, embedder=NoModel()),
               "local": local_run(fresh("local"), folder)}
    problem = loopback_namespace_problem()
    for workers in (1, 2):
        if problem:
            print(f"ray runs skipped: {problem}")
            break
        command = in_loopback_namespace([sys.executable, __file__, "--ray-run", str(workers),
                                         str(fresh(f"ray{workers}")), str(folder)])
        out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        if not line:
            print(f"ray with {workers} workers failed:\n{out.stderr[-2000:]}")
            continue
        results[f"ray, {workers} worker{'s' if workers > 1 else ''}"] = json.loads(line[0][7:])
    for name, r in results.items():
        print(f"{name:<22} {r['paragraphs']:>10} {r['ingest_s']:>9.1f} {r['wall_s']:>7.1f} "
              f"{r['paragraphs'] / r['ingest_s']:>13.1f}")
    from qa.store import Store

    home = work / "local"
    stats = Store(home / "cables.db").stats()
    sqlite_bytes = sum(f.stat().st_size for f in home.glob("cables.db*"))
    index_bytes = sum(f.stat().st_size for f in (home / "index").iterdir())
    print(f"store: {sqlite_bytes / stats['paragraphs']:.0f} bytes of SQLite (text, FTS5, vector) and "
          f"{index_bytes / stats['vectors']:.0f} bytes of FAISS index per paragraph ({stats['paragraphs']} paragraphs)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

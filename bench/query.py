"""Query speed by store size: hybrid search latency (k=10, with and without a filter), peak memory, ANN recall.

    .venv/bin/python bench/query.py --base STORE [--sizes 100000 1000000] [--workdir /tmp/cables-bench] [--cold]

STORE is a store of the shared corpus (e.g. from `cables ingest ../shared/corpus/cablegate-html --home STORE`).
Synthetic stores of each size are built from it once (bench/synthetic.py: real paragraphs repeated under new
ids, real vectors plus noise, no model run) and reused.  Each store is measured in its own process: open +
load (model and index), then every bench/devset.jsonl question without a filter and with one (its own filter,
else the year of the cable that answers it), after a warm-up; peak RSS is read before the recall check.
Recall@10 compares the store's index with exact inner-product search over the same vectors (question vectors
plus stored paragraph vectors as queries). --cold empties the OS page cache before each store is opened (Linux,
as root), so the queries read the database from disk, as the first queries after a reboot do; --warm runs
every question once (with and without its filter) before the timed pass, so the pages they read are cached
(the default warm-up is 5 questions, and the rest of the page cache is whatever the machine left in it).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEVSET = ROOT / "bench" / "devset.jsonl"


def questions() -> list[tuple[str, dict]]:
    """(question, filter) pairs: the devset filter, else the answering cable's year."""
    out = []
    for line in DEVSET.read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            filters = item.get("filters") or {"year": 2000 + int(item["cable_id"][:2])}
            out.append((item["question"], filters))
    return out


def peak_rss() -> float:
    """This process's peak resident memory in KiB. /proc's VmHWM, not getrusage: Linux carries ru_maxrss over
    exec, so a measuring process started by the parent after it built a big synthetic store would report the
    parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(np.asarray(values), share * 100))


def measure(home: Path, recall_queries: int, warm: bool = False) -> dict:
    """Everything for one store, in this process."""
    from qa.filters import Filters
    from qa.library import Library

    started = time.perf_counter()
    library = Library(home)
    library.load()
    load_seconds = time.perf_counter() - started
    pairs = questions()
    for question, filters in pairs if warm else pairs[:5]:
        library.search(question, k=10)
        if warm:
            library.search(question, k=10, filters=Filters.from_dict(filters))
    plain, filtered = [], []
    for question, filters in pairs:
        t = time.perf_counter()
        library.search(question, k=10)
        plain.append((time.perf_counter() - t) * 1000)
        f = Filters.from_dict(filters)
        t = time.perf_counter()
        library.search(question, k=10, filters=f)
        filtered.append((time.perf_counter() - t) * 1000)
    peak_rss_mb = peak_rss() / 1024
    index = library.index
    result = {"paragraphs": library.store.stats()["paragraphs"], "vectors": len(index), "index": index.kind,
              "load_s": round(load_seconds, 2),
              "p50_ms": round(percentile(plain, 0.5), 1), "p95_ms": round(percentile(plain, 0.95), 1),
              "filtered_p50_ms": round(percentile(filtered, 0.5), 1),
              "filtered_p95_ms": round(percentile(filtered, 0.95), 1),
              "peak_rss_mb": round(peak_rss_mb)}
    result.update(recall(library, [q for q, _ in pairs], recall_queries))
    library.close()
    return result


def recall(library, texts: list[str], extra_queries: int) -> dict:
    """Recall@10 of the store's index against exact search, and the per-query time of each."""
    import faiss

    index = library.index
    ids = index.ids()
    vectors = index.vectors(ids)
    rng = np.random.default_rng(3)
    stored = vectors[rng.choice(len(ids), size=min(extra_queries, len(ids)), replace=False)]
    queries = np.vstack([library.embedder.embed(texts), stored]).astype(np.float32)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    timed = queries[:20]  # one query at a time on one thread, as VectorIndex.search does
    faiss.omp_set_num_threads(1)
    t = time.perf_counter()
    for query in timed:
        exact.search(query[None, :], 10)
    exact_ms = (time.perf_counter() - t) * 1000 / len(timed)
    _, rows = exact.search(queries, 10)
    truth = ids[rows]
    found, t = 0, time.perf_counter()
    answers = [index.search(query, 10)[1] for query in queries]
    index_ms = (time.perf_counter() - t) * 1000 / len(queries)
    for row, answer in zip(truth, answers, strict=True):
        found += len(set(row.tolist()) & set(answer.tolist()))
    return {"recall_at_10": round(found / (10 * len(queries)), 4), "recall_queries": len(queries),
            "exact_search_ms": round(exact_ms, 2), "index_search_ms": round(index_ms, 2)}


def drop_page_cache() -> bool:
    """Write dirty pages out and drop the clean ones from the OS page cache; False where that is not allowed."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return True
    except (OSError, subprocess.CalledProcessError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="store of the shared corpus (real vectors)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cables-bench"))
    parser.add_argument("--recall-queries", type=int, default=100, help="stored vectors used as extra queries")
    parser.add_argument("--build-only", action="store_true", help="build the synthetic stores, measure nothing")
    parser.add_argument("--cold", action="store_true", help="empty the OS page cache before each store (root)")
    parser.add_argument("--warm", action="store_true", help="run every question once before timing them")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # internal: one store, JSON out
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.recall_queries, args.warm)))
        return 0
    if not args.base or not (args.base / "cables.db").exists():
        print("give --base STORE: a store with the shared corpus ingested", file=sys.stderr)
        return 2
    import synthetic  # bench/synthetic.py, beside this script
    from host import describe  # bench/host.py, beside this script

    print(describe(), flush=True)
    homes = [("corpus", args.base)]
    for size in args.sizes:
        home = args.workdir / f"synthetic-{size}"
        info = synthetic.build(args.base, home, size)
        print(f"synthetic store {home}: {json.dumps(info)}", flush=True)
        homes.append((f"{size}", home))
    if args.build_only:
        return 0
    header = ("store", "paragraphs", "index", "load s", "p50 ms", "p95 ms", "filtered p50 ms", "filtered p95 ms",
              "peak RSS MB", "recall@10", "exact ms/query", "index ms/query")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, home in homes:  # one at a time: the machine has two cores
        if args.cold and not drop_page_cache():
            print("--cold needs Linux and root (it writes /proc/sys/vm/drop_caches)", file=sys.stderr)
            return 2
        command = [sys.executable, __file__, "--measure", str(home), "--recall-queries", str(args.recall_queries)]
        command += ["--warm"] if args.warm else []
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        r = json.loads(output.strip().splitlines()[-1])
        print(f"| {label} | {r['paragraphs']} | {r['index']} | {r['load_s']} | {r['p50_ms']} | {r['p95_ms']} | "
              f"{r['filtered_p50_ms']} | {r['filtered_p95_ms']} | {r['peak_rss_mb']} | {r['recall_at_10']} | "
              f"{r['exact_search_ms']} | {r['index_search_ms']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Load test: N gradio_client clients call the real web app's `/search` and `/ask` API for T seconds.

Starts `python app.py --home HOME --port P` on 127.0.0.1 (loopback only), optionally runs a `cables ingest` into
the same store while the clients search, and prints requests, errors, throughput and p50/p95 latency.

While an ingest runs, some queries name a cable being ingested (its id alone, k=100, which returns all of its
stored paragraphs): every answer must hold none or all of that cable's paragraphs, never part of them.

    python bench/load.py --home /tmp/full --clients 16 --seconds 30
    python bench/load.py --home /tmp/seeds --clients 4 --seconds 10 --ingest some/cables --json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "What guarantees did Kazakhstan refuse to give about Guantanamo detainees?",
    "Why was the Uzbek refugee detained in Almaty?",
    "How did the authorities harass the opposition movement?",
    "What did the Ambassador say about NGOs?",
    "nuclear reactor construction rumors",
    "oil and gas pipeline negotiations",
]


@dataclass
class Tally:
    """What the clients saw, merged under a lock."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"search": [], "ask": []})
    errors: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)  # a cable seen with some but not all of its paragraphs
    seen_complete: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(home: Path, port: int, log_path: Path) -> subprocess.Popen:
    """`python app.py` over the store, bound to 127.0.0.1; returns once the port accepts connections."""
    log = open(log_path, "w")  # noqa: SIM115 - the server writes to it while it runs
    env = dict(os.environ, PYTHONUNBUFFERED="1", GRADIO_ANALYTICS_ENABLED="False")
    process = subprocess.Popen([sys.executable, "app.py", "--home", str(home), "--port", str(port),
                                "--host", "127.0.0.1"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the app exited: {log_path.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the app did not start within 300 s")


def expected_paragraphs(paths: list[str], home: Path) -> dict[str, int]:
    """Cable id -> paragraph count for the cables an ingest will add (parsed here, the same way ingest does).

    Cables the store already holds are left out: a stored copy may rightly differ from the one being ingested.
    """
    from qa.formats import read_cables
    from qa.ingest import IngestReport, iter_files, read_file
    from qa.records import Cable
    from qa.store import Store

    counts: dict[str, int] = {}
    for path in iter_files(paths, IngestReport()):
        text, _ = read_file(path)
        for item in read_cables(text, str(path)):
            if isinstance(item, Cable) and item.paragraphs:
                counts[item.id] = len(item.paragraphs)
    store = Store(home / "cables.db", readonly=True)
    try:
        stored = {cable_id for cable_id in counts if store.existing_ids([cable_id])}
    finally:
        store.close()
    return {cable_id: n for cable_id, n in counts.items() if cable_id not in stored}


def client_loop(url: str, stop: threading.Event, tally: Tally, ask_every: int, watch: dict[str, int], seed: int
                ) -> None:
    """One client: searches (and every `ask_every`-th request asks) until `stop` is set."""
    from gradio_client import Client

    rng = random.Random(seed)
    ids = sorted(watch)
    try:
        client = Client(url, verbose=False)
    except Exception as error:
        with tally.lock:
            tally.errors.append(f"connect: {error}")
        return
    number = 0
    while not stop.is_set():
        number += 1
        kind = "ask" if ask_every and number % ask_every == 0 else "search"
        watched = ids[(number // 2 + seed) % len(ids)] if ids and kind == "search" and number % 2 else None
        question = watched or rng.choice(QUESTIONS)
        start = time.perf_counter()
        try:
            if kind == "ask":
                data = client.predict(question, "{}", api_name="/ask")
            else:
                data = client.predict(question, 100 if watched else 10, "{}", "hybrid", api_name="/search")
        except Exception as error:
            with tally.lock:
                tally.errors.append(f"{kind} {question[:40]!r}: {type(error).__name__}: {str(error)[:200]}")
            continue
        elapsed = time.perf_counter() - start
        with tally.lock:
            tally.latencies[kind].append(elapsed)
            if isinstance(data, dict) and "error" in data:
                tally.errors.append(f"{kind} {question[:40]!r}: {data['error']}")
            elif watched:
                found = sum(1 for h in data.get("hits", []) if h["cable_id"] == watched)
                if found == watch[watched]:
                    tally.seen_complete.add(watched)
                elif found:
                    tally.partial.append(f"{watched}: {found} of {watch[watched]} paragraphs")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(home: Path, clients: int, seconds: float, ingest: list[str], ask_every: int, until_ingested: bool = False
        ) -> dict:
    """The load test; with `until_ingested` the clients go on past `seconds` until the ingest ends (at most 300 s)."""
    port = free_port()
    log_path = home.parent / f"{home.name}-load-app.log"
    app = start_app(home, port, log_path)
    url = f"http://127.0.0.1:{port}/"
    tally = Tally()
    watch = expected_paragraphs(ingest, home) if ingest else {}
    ingest_process = None
    ingest_rc = None
    try:
        if ingest:
            ingest_process = subprocess.Popen([sys.executable, "-m", "qa", "ingest", *ingest, "--home", str(home),
                                               "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.PIPE, text=True)
        start = time.monotonic()
        stop = threading.Event()
        threads = [threading.Thread(target=client_loop, args=(url, stop, tally, ask_every, watch, i))
                   for i in range(clients)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        while until_ingested and ingest_process is not None and ingest_process.poll() is None \
                and time.monotonic() - start < 300:
            time.sleep(0.5)
        settle = time.monotonic() + 30  # after the last commit: until every new cable was seen whole (at most 30 s)
        while until_ingested and len(tally.seen_complete) < len(watch) and time.monotonic() < settle:
            time.sleep(0.2)
        stop.set()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - start
        if ingest_process is not None:
            _, ingest_err = ingest_process.communicate(timeout=600)
            ingest_rc = ingest_process.returncode
            if ingest_rc != 0:
                tally.errors.append(f"ingest exited {ingest_rc}: {ingest_err.strip()[-300:]}")
    finally:
        if ingest_process is not None and ingest_process.poll() is None:
            ingest_process.kill()
        app.terminate()
        app.wait(timeout=30)
    every = tally.latencies["search"] + tally.latencies["ask"]
    return {
        "clients": clients, "seconds": round(wall, 1), "requests": len(every), "errors": len(tally.errors),
        "error_samples": tally.errors[:5], "partial_cables": tally.partial,
        "watched_cables": len(watch), "watched_seen_complete": len(tally.seen_complete), "ingest_rc": ingest_rc,
        "throughput_rps": round(len(every) / wall, 2) if wall else 0.0,
        **{f"{kind}_{name}": round(percentile(values, q) * 1000) if values else None
           for kind, values in (("all", every), ("search", tally.latencies["search"]), ("ask", tally.latencies["ask"]))
           for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95))},
        "search_requests": len(tally.latencies["search"]), "ask_requests": len(tally.latencies["ask"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="an ingested store folder")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--ask-every", type=int, default=4, help="every Nth request of a client is /ask (0: never)")
    parser.add_argument("--ingest", nargs="*", default=[], metavar="PATH", help="ingest these while the load runs")
    parser.add_argument("--until-ingested", action="store_true",
                        help="keep the clients going until the ingest has finished (at most 300 s) and every "
                             "new cable was seen whole (at most 30 s more)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 64 or not 0 < args.seconds <= 600:
        parser.error("--clients must be 1-64 and --seconds 0-600 (a bounded test)")
    result = run(Path(args.home).resolve(), args.clients, args.seconds, args.ingest, args.ask_every,
                 args.until_ingested)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['clients']} clients, {result['seconds']} s: {result['requests']} requests "
              f"({result['search_requests']} search, {result['ask_requests']} ask), {result['errors']} errors, "
              f"{result['throughput_rps']} requests/s")
        print(f"latency p50 {result['all_p50_ms']} ms, p95 {result['all_p95_ms']} ms "
              f"(search p50 {result['search_p50_ms']} / p95 {result['search_p95_ms']} ms; "
              f"ask p50 {result['ask_p50_ms']} / p95 {result['ask_p95_ms']} ms)")
        if args.ingest:
            print(f"concurrent ingest exit {result['ingest_rc']}; {result['watched_seen_complete']} of "
                  f"{result['watched_cables']} ingested cables seen whole, {len(result['partial_cables'])} seen "
                  "half-written")
        for sample in result["error_samples"]:
            print(f"error: {sample}")
    return 0 if result["errors"] == 0 and not result["partial_cables"] else 1


if __name__ == "__main__":
    sys.exit(main())

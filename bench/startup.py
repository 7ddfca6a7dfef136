"""Start-up time of the web app on an existing store: from `python app.py` to the page answering HTTP 200.

    .venv/bin/python bench/startup.py --home STORE [--runs 3] [--evict]

--evict drops the store's files (database, index, model) from the OS page cache before each run, so every run
reads them from disk, as the first start on a store untouched for a while does; the program's own files stay
cached.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_to_serve(home: Path, timeout: float = 120.0) -> float:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "app.py", "--home", str(home), "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"app.py did not answer within {timeout:.0f} s")
    finally:
        process.terminate()
        process.wait(timeout=30)


def evict(home: Path) -> None:
    """Ask the OS to drop this folder's files from its page cache (they are read from disk next time)."""
    for path in home.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--evict", action="store_true", help="read the store from disk in every run")
    args = parser.parse_args()
    from host import describe  # bench/host.py, beside this script

    print(describe(), flush=True)
    times = []
    for _ in range(args.runs):
        if args.evict:
            evict(args.home)
        times.append(time_to_serve(args.home))
    print(f"app.py serving after {min(times):.1f} s (best of {args.runs}; all: "
          f"{', '.join(f'{t:.1f}' for t in times)}; worst {max(times):.1f}){' store read from disk' * args.evict} "
          f"on {args.home}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

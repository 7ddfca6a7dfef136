"""Ingest speed: end-to-end `cables ingest` of the shared corpus vs plain SentenceTransformer.encode, in one run.

    .venv/bin/python bench/ingest.py [--corpus ../shared/corpus/cablegate-html] [--home DIR] [--models DIR] [--sample N]

1. `cables ingest CORPUS --home FRESH --quiet` in a subprocess: the whole command (start-up, parsing, embedding,
   SQLite and FAISS writes), default backend; paragraphs stored / wall seconds.
2. The texts that ingest embedded (read back from the store) encoded by `SentenceTransformer.encode` (fp32,
   batch 32, torch on CPU, no windows: the plain library call); all of them, or a random `--sample` of them.
Prints both rates and their ratio.  The machine is shared, so only ratios measured in the same run mean much.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host import describe  # noqa: E402  (bench/host.py, beside this script)


def run_ingest(corpus: Path, home: Path, backend: str) -> tuple[float, float, int]:
    """Wall and CPU seconds (its worker processes included) of the whole `cables ingest` command, paragraphs stored."""
    env = dict(os.environ, CABLES_HOME=str(home))
    started, cpu = time.perf_counter(), _children_cpu()
    subprocess.run([sys.executable, "-m", "qa", "ingest", str(corpus), "--quiet", "--backend", backend],
                   cwd=ROOT, env=env, check=True)
    seconds, cpu_seconds = time.perf_counter() - started, _children_cpu() - cpu
    from qa.library import Library

    library = Library(home)
    try:
        paragraphs = library.store.stats()["paragraphs"]
    finally:
        library.close()
    return seconds, cpu_seconds, paragraphs


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def embedded_texts(home: Path) -> list[str]:
    """The exact texts ingest embedded: each indexable stored paragraph with its cable context."""
    from qa.ingest import embedding_text, indexable
    from qa.library import Library

    library = Library(home)
    try:
        return [embedding_text(cable, p) for cable in library.store.cables() for p in cable.paragraphs
                if indexable(p)]
    finally:
        library.close()


def stored_model(home: Path) -> str:
    from qa.store import Store

    store = Store(home / "cables.db", readonly=True)
    try:
        return store.get_meta("model") or ""
    finally:
        store.close()


def plain_encode_rate(texts: list[str], model_name: str, cache_dir: Path) -> tuple[float, float]:
    """Texts per wall second and per CPU second of SentenceTransformer.encode, fp32, batch 32, CPU (load not timed).

    The same model ingest ran (`model_name`, as the store records it; the default's merged folder is reused)."""
    from sentence_transformers import SentenceTransformer

    from embeddings.model import resolve_model_path

    model = SentenceTransformer(resolve_model_path(model_name, cache_dir)[1], device="cpu")
    model.encode(texts[:32], batch_size=32)  # warm-up
    started, cpu = time.perf_counter(), time.process_time()
    model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    return len(texts) / (time.perf_counter() - started), len(texts) / (time.process_time() - cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "cablegate-html")
    parser.add_argument("--home", type=Path, help="store folder to create (default: a temporary one)")
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx"))
    parser.add_argument("--models", type=Path, help="copy this exported-models folder into the fresh store first")
    parser.add_argument("--sample", type=int, default=0, help="encode only this many texts with torch (0: all)")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2
    temporary = None if args.home else tempfile.mkdtemp(prefix="bench-ingest-")
    home = args.home or Path(temporary)
    if args.home and (home / "cables.db").exists():
        print(f"{home} already holds a store; give a fresh --home", file=sys.stderr)
        return 2
    print(describe(), flush=True)
    try:
        if args.models:  # reuse an onnx export made earlier: a one-off per store, not per-paragraph work
            shutil.copytree(args.models, home / "models", dirs_exist_ok=True)
        seconds, cpu_seconds, paragraphs = run_ingest(args.corpus, home, args.backend)
        ingest_rate, ingest_cpu_rate = paragraphs / seconds, paragraphs / cpu_seconds
        print(f"cables ingest ({args.backend}): {paragraphs} paragraphs in {seconds:.1f} s = "
              f"{ingest_rate:.1f} paragraphs/s (whole command); {cpu_seconds:.0f} CPU s = "
              f"{ingest_cpu_rate:.1f} paragraphs per CPU second", flush=True)
        texts = embedded_texts(home)
        if args.sample and args.sample < len(texts):
            texts = random.Random(0).sample(texts, args.sample)
        encode_rate, encode_cpu_rate = plain_encode_rate(texts, stored_model(home), home / "models")
        print(f"SentenceTransformer.encode fp32 batch 32: {len(texts)} texts, {encode_rate:.1f} paragraphs/s; "
              f"{encode_cpu_rate:.1f} paragraphs per CPU second")
        print(f"ratio ingest / plain encode: {ingest_rate / encode_rate:.2f} (wall), "
              f"{ingest_cpu_rate / encode_cpu_rate:.2f} (CPU time)")
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

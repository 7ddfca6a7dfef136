"""How paragraphs are cut for the model, measured: the earlier overlapping word windows against token windows, each
with and without late-chunked sentence vectors, on one store and its model, in one run.

    .venv/bin/python bench/windows.py --home STORE bench/devset.jsonl bench/trainset/part-6.jsonl

Every stored paragraph is embedded again under each scheme (the store's own embedder and embedding text), the
vectors are swapped into the real `Searcher` (index included), and `cables eval`'s metrics are printed per
question file, with the embedding rate of each scheme. Nothing is written to the store.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OLD_WORDS, OLD_STRIDE = 170, 120  # the scheme before token windows: ~220 word pieces, 50 words of overlap


def word_windows(text: str) -> list[str]:
    words = text.split()
    if len(words) <= OLD_WORDS:
        return [text]
    return [" ".join(words[s:s + OLD_WORDS]) for s in range(0, len(words) - OLD_WORDS + OLD_STRIDE, OLD_STRIDE)
            if s < len(words)]


def embed_words(embedder, texts: list[str]) -> np.ndarray:
    """The earlier scheme: each word window embedded alone (cut at 256 pieces), their unit vectors averaged."""
    pieces, owners = [], []
    for i, text in enumerate(texts):
        for piece in word_windows(text):
            pieces.append(piece)
            owners.append(i)
    tokenizer = embedder._windowing()[0]
    ids = tokenizer.encode(pieces, 256)
    states = embedder._run(ids)
    vectors = np.array([s.mean(axis=0) for s in states])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    out = np.zeros((len(texts), vectors.shape[1]), np.float32)
    np.add.at(out, np.asarray(owners), vectors)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", nargs="+")
    parser.add_argument("--home", required=True)
    args = parser.parse_args()
    from embeddings import VectorIndex
    from qa.evaluate import evaluate, load_questions
    from qa.ingest import embedding_input, indexable
    from qa.library import Library
    from qa.search import Searcher, SearchSettings

    library = Library(args.home)
    store, embedder = library.store, library.embedder
    rows = [(pid, cable, p) for cable in store.cables() for pid, p in zip(store.cable_paragraph_ids(cable.id),
                                                                          cable.paragraphs, strict=True)
            if indexable(p)]
    inputs = [embedding_input(cable, p) for _, cable, p in rows]
    ids = np.array([pid for pid, _, _ in rows], dtype=np.int64)
    schemes = {}
    started = time.perf_counter()
    passages = embedder.embed_passages([t for t, _ in inputs], [s for _, s in inputs])
    schemes["token windows of 128"] = (np.vstack([p.vector for p in passages]), {
        int(pid): p.spans for pid, p in zip(ids, passages, strict=True) if len(p.spans)}, time.perf_counter() - started)
    started = time.perf_counter()
    schemes["word windows 170/120 (before)"] = (embed_words(embedder, [t for t, _ in inputs]), {},
                                                time.perf_counter() - started)
    question_sets = {path: load_questions(path) for path in args.questions}
    print("| scheme | sentence vectors | paragraphs/s | " + " | ".join(
        f"{Path(p).stem} R@5 | {Path(p).stem} MRR@10" for p in args.questions) + " |")
    print("|" + "---|" * (3 + 2 * len(args.questions)))
    for name, (vectors, sentences, seconds) in schemes.items():
        position = {int(pid): i for i, pid in enumerate(ids)}
        index = VectorIndex(embedder.name, vectors.shape[1])
        index.add(ids, vectors)

        def swapped_vectors(wanted=None, vectors=vectors, position=position):
            keep = [pid for pid in (ids.tolist() if wanted is None else wanted) if pid in position]
            return np.asarray(keep, dtype=np.int64), vectors[[position[pid] for pid in keep]]

        store.vectors = swapped_vectors
        store.candidate_vectors = lambda wanted, v=swapped_vectors, sentences=sentences: (
            *v(wanted), stacked(sentences, wanted))
        for with_sentences in ([True, False] if sentences else [False]):
            settings = dataclasses.replace(SearchSettings(), sentence_weight=SearchSettings().sentence_weight
                                           if with_sentences else 0.0)
            searcher = Searcher(store, index, embedder, settings)
            library.searcher = lambda s=searcher: s
            cells = []
            for questions in question_sets.values():
                metrics = evaluate(library, questions).metrics()
                cells += [f"{metrics['R@5']:.3f}", f"{metrics['MRR@10']:.3f}"]
            print(f"| {name} | {'yes' if with_sentences else 'no'} | {len(ids) / seconds:.1f} | "
                  + " | ".join(cells) + " |", flush=True)
    library.close()
    return 0


def stacked(sentences: dict[int, np.ndarray], wanted):
    """`Store.sentence_vectors`'s answer (a SentenceVectors) from a dict of the scheme's own sentence vectors."""
    from qa.store import SentenceVectors

    owners = [int(pid) for pid in wanted if pid in sentences]
    if not owners:
        return SentenceVectors(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0), np.float32))
    counts = [len(sentences[pid]) for pid in owners]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return SentenceVectors(np.asarray(owners, dtype=np.int64), starts, np.vstack([sentences[pid] for pid in owners]))


if __name__ == "__main__":
    sys.exit(main())

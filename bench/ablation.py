"""Retrieval ablation: each fusion variant on one store and one question file, measured in one run.

    python bench/ablation.py --home /tmp/full bench/devset.jsonl

Query vectors are computed once and shared by every variant, so the variants differ only in how they rank.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.evaluate import evaluate, load_questions
from qa.library import Library
from qa.search import Searcher, SearchSettings


class CachedEmbedder:
    """Wraps the real embedder; each distinct text is embedded once for all variants."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.dim, self.cache = inner, inner.name, inner.dim, {}

    def embed(self, texts):
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            self.cache.update(zip(todo, self.inner.embed(todo), strict=True))
        return np.vstack([self.cache[t] for t in texts])


NO_CONTEXT = {"cable_expand": 0, "cable_weight": 0.0, "summary_shift": 0.0, "summary_penalty": 0.0,
              "sentence_weight": 0.0}
VARIANTS: dict[str, dict] = {
    "convex sum, cosine + bm25/max (first baseline)": {"fusion": "convex", "dense_weight": 0.6, **NO_CONTEXT},
    "reciprocal-rank fusion": {"fusion": "rrf", **NO_CONTEXT},
    "z-score fusion, exact scores for every candidate": NO_CONTEXT,
    "+ best sentence's vector 0.7 in the cosine": {**NO_CONTEXT, "sentence_weight": 0.7},
    "+ summaries 1.0 sd up for gist questions": {"cable_expand": 0, "cable_weight": 0.0},
    "+ paragraphs of the 5 best dense cables": {"cable_weight": 0.0},
    "+ cable weight 0.5 (default)": {},
    "default, paragraphs of the 3 best dense cables": {"cable_expand": 3},
    "default, cable weight 1.0 (before)": {"cable_weight": 1.0},
    "default, cable weight 1.5": {"cable_weight": 1.5},
    "default, dense weight 0.7": {"dense_weight": 0.7},
    "default, dense weight 1.0 (no bm25 in the sum)": {"dense_weight": 1.0},
    "default, no sentence vectors": {"sentence_weight": 0.0},
    "default, sentence weight 1.0 (best sentence only)": {"sentence_weight": 1.0},
    "default, rrf instead of z-scores": {"fusion": "rrf"},
    "default, summaries also 1.0 sd down for other questions": {"summary_penalty": 1.0},
}


def _typed(field: str, value: str):
    """A command-line value converted to the type of that SearchSettings field."""
    kind = type(getattr(SearchSettings(), field))
    return value.lower() in ("1", "true", "yes") if kind is bool else kind(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("questions")
    parser.add_argument("--home", required=True)
    parser.add_argument("--variant", action="append", help="NAME=field:value,field:value (repeatable)")
    parser.add_argument("--only-extra", action="store_true", help="run only the --variant ones")
    parser.add_argument("--modes", default="hybrid")
    args = parser.parse_args()
    library = Library(args.home)
    embedder = CachedEmbedder(library.embedder)
    questions = load_questions(args.questions)
    variants = {} if args.only_extra else dict(VARIANTS)
    for spec in args.variant or []:
        name, _, fields = spec.partition("=")
        variants[name] = {k: _typed(k, v) for k, v in (f.split(":") for f in fields.split(",") if f)}
    types = sorted({q.type for q in questions})
    print("| variant | mode | R@1 | R@5 | R@10 | MRR@10 | " + " | ".join(f"{t} R@5" for t in types) + " |")
    print("|" + "---|" * (6 + len(types)))
    for name, fields in variants.items():
        settings = dataclasses.replace(SearchSettings(), **fields)
        searcher = Searcher(library.store, library.index, embedder, settings)
        library.searcher = lambda s=searcher: s  # evaluate() asks the library for its searcher
        for mode in args.modes.split(","):
            result = evaluate(library, questions, mode=mode)
            m = result.metrics()
            per_type = result.by_type()
            print(f"| {name} | {mode} | {m['R@1']:.3f} | {m['R@5']:.3f} | {m['R@10']:.3f} | {m['MRR@10']:.3f} | "
                  + " | ".join(f"{per_type[t]['R@5']:.2f}" for t in types) + " |", flush=True)


if __name__ == "__main__":
    main()

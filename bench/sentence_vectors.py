"""Do sentence-level vectors help? Dense-only Recall@5 / MRR@10 of paragraph vectors vs sentence max-sim mixes.

    python bench/sentence_vectors.py --home /tmp/full bench/devset.jsonl

Embeds every sentence of every stored paragraph once (cached in --cache), plus one context vector per cable
(subject, post, year), and ranks paragraphs by each variant's score with the question's filters applied.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa import glossary
from qa.evaluate import load_questions, normalise
from qa.library import Library
from qa.records import REDACTION_MARK
from qa.text import sentences


def sentence_vectors(library: Library, rows: list, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, owning paragraph id) of every sentence of 20+ characters, embedded shortest first."""
    if cache.exists():
        saved = np.load(cache)
        return saved["vectors"], saved["owners"]
    texts, owners = [], []
    for pid, text, *_ in rows:
        for sentence in sentences(text.replace(REDACTION_MARK, " ")):
            if len(sentence) >= 20:
                texts.append(sentence)
                owners.append(pid)
    vectors = np.zeros((len(texts), library.embedder.dim), np.float32)
    order = np.argsort([len(t) for t in texts])
    for start in range(0, len(texts), 256):
        batch = order[start:start + 256]
        vectors[batch] = library.embedder.embed([texts[i] for i in batch])
    np.savez(cache, vectors=vectors, owners=np.array(owners))
    return vectors, np.array(owners)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("questions")
    parser.add_argument("--home", required=True)
    parser.add_argument("--cache", default="/tmp/cables-sentence-vectors.npz")
    args = parser.parse_args()
    library = Library(args.home)
    store = library.store
    rows = store.db.execute(
        "SELECT p.id, p.text, p.cable_id, p.label, c.subject, c.origin, c.year FROM paragraphs p "
        "JOIN cables c ON c.id = p.cable_id WHERE p.vector IS NOT NULL ORDER BY p.id").fetchall()
    meta = {r[0]: r for r in rows}
    ids, paragraph = store.vectors([r[0] for r in rows])
    position = {pid: i for i, pid in enumerate(ids.tolist())}
    sentence, owners = sentence_vectors(library, rows, Path(args.cache))
    owner_row = np.array([position[p] for p in owners.tolist()])
    cables = sorted({r[2] for r in rows})
    context_text = {r[2]: ". ".join(x for x in (r[4] or "", f"{r[5] or ''} {r[6] or ''}".strip()) if x) for r in rows}
    context = library.embedder.embed([context_text[c] for c in cables])
    cable_row = np.array([cables.index(meta[p][2]) for p in ids.tolist()])
    questions = load_questions(args.questions)
    query_vectors = library.embedder.embed([glossary.expand_for_embedding(q.question) for q in questions])

    def sentence_max(v: np.ndarray) -> np.ndarray:
        best = np.full(len(ids), -1.0)
        np.maximum.at(best, owner_row, sentence @ v)
        return np.where(best < -0.5, paragraph @ v, best)  # a paragraph without a long sentence keeps its own

    variants: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "paragraph vector with its cable context (default)": lambda v: paragraph @ v,
        "best sentence": sentence_max,
        "best sentence + cable context vector x0.7": lambda v: sentence_max(v) + 0.7 * (context @ v)[cable_row],
        "paragraph + best sentence": lambda v: 0.5 * (paragraph @ v) + 0.5 * sentence_max(v),
        "paragraph + best sentence + cable context x0.3":
            lambda v: 0.5 * (paragraph @ v) + 0.5 * sentence_max(v) + 0.3 * (context @ v)[cable_row],
    }
    print("| dense variant | R@5 | MRR@10 | paraphrase R@5 |\n|---|---|---|---|")
    for name, score in variants.items():
        ranks = []
        for q, v in zip(questions, query_vectors, strict=True):
            scores = score(v)
            if not q.filters.empty:
                allowed = np.zeros(len(ids), bool)
                allowed[[position[p] for p in store.filtered_paragraph_ids(q.filters).tolist() if p in position]] = True
                scores = np.where(allowed, scores, -9.0)
            top = ids[np.argsort(-scores)[:10]].tolist()
            rank = next((i for i, p in enumerate(top, 1) if (meta[p][2], meta[p][3]) == (q.cable_id, q.para)
                         or normalise(q.answer_span) in normalise(meta[p][1])), None)
            ranks.append((rank, q.type))
        r5 = np.mean([bool(r and r <= 5) for r, _ in ranks])
        mrr = np.mean([1 / r if r else 0.0 for r, _ in ranks])
        para = np.mean([bool(r and r <= 5) for r, t in ranks if t == "paraphrase"])
        print(f"| {name} | {r5:.3f} | {mrr:.3f} | {para:.2f} |", flush=True)


if __name__ == "__main__":
    main()

"""Hybrid retrieval: keyword (SQLite FTS5 bm25) and dense (FAISS) candidates, filtered inside each search, fused."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from embeddings import Embedder, VectorIndex
from qa import glossary
from qa.errors import QueryError
from qa.filters import Filters
from qa.records import Hit, citation
from qa.store import Store, StoredParagraph
from qa.text import cable_ids_in, clean_query, content_words, fts_query

Mode = Literal["hybrid", "bm25", "dense"]
MODES: tuple[str, ...] = ("hybrid", "bm25", "dense")
MAX_K = 1000
CABLE_REF_RE = re.compile(r"\b\d{2}\s?[A-Z]{3,}(?:\s[A-Z]{3,})?\s?\d{1,6}\b|\b[A-Z]{3,}\s\d{2,6}\b")
GIST_RE = re.compile(r"\b(gist|summar\w*|overview|main points?|in short|in brief|key points?|bottom line|overall)\b",
                     re.IGNORECASE)


@dataclass(frozen=True)
class SearchSettings:
    """Fusion knobs, measured with `cables eval` (see README)."""

    candidates: int = 100  # per side, before fusion
    fusion: str = "convex"  # "convex": weighted sum of both sides' scores; "rrf": reciprocal-rank fusion
    dense_weight: float = 0.6  # convex: weight of the cosine, the rest goes to bm25 / best bm25
    rrf_k: float = 60.0
    summary_weight: float = 0.9  # a cable's summary restates its details: prefer the detail unless asked the gist


@dataclass(frozen=True)
class Ranked:
    """A fused candidate with the evidence each side gave (used by answers for relevance checks)."""

    paragraph_id: int
    score: float
    dense: float | None
    keyword: float | None


class Searcher:
    """Runs one query against a store and its vector index."""

    def __init__(self, store: Store, index: VectorIndex, embedder: Embedder,
                 settings: SearchSettings | None = None) -> None:
        self.store = store
        self.index = index
        self.embedder = embedder
        self.settings = settings or SearchSettings()

    def search(self, query: str, k: int = 10, filters: Filters | None = None, mode: str = "hybrid") -> list[Hit]:
        ranked = self.rank(query, k, filters, mode)
        return self.hits(ranked)

    def rank(self, query: str, k: int = 10, filters: Filters | None = None, mode: str = "hybrid") -> list[Ranked]:
        """The fused ranking (best first) of at most k paragraphs."""
        filters = filters or Filters()
        query = clean_query(query)
        if not query:
            raise QueryError("the question is empty; type what you want to find in the cables")
        if not 1 <= k <= MAX_K:
            raise QueryError(f"k must be between 1 and {MAX_K} (got {k})")
        if mode not in MODES:
            raise QueryError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        allowed = None if filters.empty else self.store.filtered_paragraph_ids(filters)
        if allowed is not None and len(allowed) == 0:
            return []
        n = max(self.settings.candidates, k)
        keyword = self._keyword(query, filters, n) if mode in ("hybrid", "bm25") else []
        dense, query_vector = self._dense(query, allowed, n) if mode in ("hybrid", "dense") else ([], None)
        if mode == "hybrid":
            fused = self._fuse(keyword, dense, query_vector)
            fused = self._weigh_summaries(query, fused)
        else:
            fused = [Ranked(pid, score, score if mode == "dense" else None, score if mode == "bm25" else None)
                     for pid, score in (dense or keyword)]
        named = self._named_cables(query, filters)
        if named:
            bare = not content_words(CABLE_REF_RE.sub(" ", query))
            fused = _promote([] if bare else fused, named)
        return fused[:k]

    def _keyword(self, query: str, filters: Filters, n: int) -> list[tuple[int, float]]:
        terms = content_words(query) + glossary.expansion_terms(query)
        match = fts_query(terms)
        return self.store.keyword_search(match, filters, n) if match else []

    def _dense(self, query: str, allowed: np.ndarray | None, n: int) -> tuple[list[tuple[int, float]], np.ndarray]:
        vector = self.embedder.embed([glossary.expand_for_embedding(query)])[0]
        scores, ids = self.index.search(vector, n, allowed)
        return list(zip(ids.tolist(), scores.tolist(), strict=True)), vector

    def _fuse(self, keyword: list[tuple[int, float]], dense: list[tuple[int, float]],
              query_vector: np.ndarray) -> list[Ranked]:
        """Fuse both sides; every candidate gets its exact cosine, so a keyword-only find is scored fairly."""
        s = self.settings
        dense_score = dict(dense)
        keyword_score = dict(keyword)
        missing = np.array([pid for pid in keyword_score if pid not in dense_score], dtype=np.int64)
        if len(missing) and len(dense):
            cosines = self.index.vectors(missing) @ query_vector
            dense_score.update(zip(missing.tolist(), cosines.tolist(), strict=True))
        scores: dict[int, float] = {}
        if s.fusion == "rrf":
            for ranking in (keyword, dense):
                for rank, (pid, _score) in enumerate(ranking):
                    scores[pid] = scores.get(pid, 0.0) + 1 / (s.rrf_k + rank + 1)
        else:
            best_keyword = max(keyword_score.values(), default=0.0) or 1.0
            for pid in set(dense_score) | set(keyword_score):
                scores[pid] = (s.dense_weight * dense_score.get(pid, 0.0)
                               + (1 - s.dense_weight) * keyword_score.get(pid, 0.0) / best_keyword)
        order = sorted(scores, key=lambda pid: -scores[pid])
        return [Ranked(pid, scores[pid], dense_score.get(pid), keyword_score.get(pid)) for pid in order]

    def _weigh_summaries(self, query: str, fused: list[Ranked]) -> list[Ranked]:
        """Summary paragraphs go up for gist questions and slightly down for specific ones."""
        summaries = self.store.summary_ids([r.paragraph_id for r in fused[:50]])
        if not summaries:
            return fused
        weight = 1 / self.settings.summary_weight if is_gist_question(query) else self.settings.summary_weight
        reweighed = [Ranked(r.paragraph_id, r.score * weight, r.dense, r.keyword) if r.paragraph_id in summaries
                     else r for r in fused]
        return sorted(reweighed, key=lambda r: -r.score)

    def _named_cables(self, query: str, filters: Filters) -> list[int]:
        """Paragraph ids of cables the query names by id ('05ALMATY342', 'PARIS 8729')."""
        ids: list[int] = []
        for cable_id in self.store.existing_ids(cable_ids_in(query)):
            ids += self.store.cable_paragraph_ids(cable_id)
        if ids and not filters.empty:
            allowed = set(self.store.filtered_paragraph_ids(filters).tolist())
            ids = [i for i in ids if i in allowed]
        return ids

    def hits(self, ranked: list[Ranked]) -> list[Hit]:
        rows = self.store.paragraphs([r.paragraph_id for r in ranked])
        return [to_hit(rows[r.paragraph_id], r.score) for r in ranked if r.paragraph_id in rows]


def is_gist_question(query: str) -> bool:
    return bool(GIST_RE.search(query))


def _promote(fused: list[Ranked], named: list[int]) -> list[Ranked]:
    """Put the named cables' paragraphs first: those the query also matched, then the rest in cable order."""
    named_set = set(named)
    matched = [r for r in fused if r.paragraph_id in named_set]
    seen = {r.paragraph_id for r in matched}
    top = (matched[0].score if matched else (fused[0].score if fused else 0.0)) + 1.0
    rest_named = [Ranked(pid, 0.0, None, None) for pid in named if pid not in seen]
    head = [Ranked(r.paragraph_id, top + r.score, r.dense, r.keyword) for r in matched]
    head += [Ranked(r.paragraph_id, top - (i + 1) * 1e-4, None, None) for i, r in enumerate(rest_named)]
    return head + [r for r in fused if r.paragraph_id not in named_set]


def to_hit(row: StoredParagraph, score: float) -> Hit:
    return Hit(
        cable_id=row.cable_id, paragraph=row.label, position=row.position, citation=citation(row.cable_id, row.label),
        score=round(float(score), 6), text=row.text, subject=row.subject, created=row.created, origin=row.origin,
        classification=row.classification, source=row.source, paragraph_id=row.id,
    )

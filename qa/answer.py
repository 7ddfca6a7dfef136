"""Extractive answers: the retrieved sentences that best answer the question, each with its citation.

Nothing is generated: every statement is a sentence of a cable paragraph, so every claim is checkable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from qa.filters import Filters
from qa.records import Answer, Hit, Statement
from qa.search import Searcher
from qa.text import clean_query, content_words, sentences

RETRIEVE = 8  # paragraphs considered
MAX_STATEMENTS = 4
MAX_SOURCES = 3
MIN_SIMILARITY = 0.32  # below this (and without keyword support) the cables do not answer the question
NO_ANSWER = "The cables at hand do not answer this question."
NO_MATCH = "No cable in the store matches the filters ({filters})."
BOOKKEEPING_RE = re.compile(r"^\(?(end (of )?(summary|comment|note|text)|see (para|ref)|summary( and comment)?:?$)",
                            re.IGNORECASE)
FOLLOW_UP_RE = re.compile(r"\b(he|she|they|it|its|this|that|these|those|them|his|her|their|there|then|him)\b", re.I)


def retrieval_query(question: str, history: Sequence[str]) -> str:
    """A follow-up ('what did he say next?') is searched together with the previous question."""
    if not history:
        return question
    short = len(content_words(question)) < 4
    if short or FOLLOW_UP_RE.search(question) or question.lower().startswith(("and ", "what about", "how about")):
        return f"{history[-1]} {question}"
    return question


def is_statement(sentence: str) -> bool:
    """A sentence worth quoting: not a cable's 'End summary.' / 'See para 6.' bookkeeping, not a fragment."""
    return len(content_words(sentence)) >= 3 and not BOOKKEEPING_RE.match(sentence)


def answer(searcher: Searcher, question: str, filters: Filters, history: Sequence[str] = (),
           viewing: str | None = None) -> Answer:
    """An extractive answer; `viewing` is the cable the user has open (for 'reftel A')."""
    question = clean_query(question)
    query = retrieval_query(question, history)
    ranked = searcher.rank(query, k=RETRIEVE, filters=filters, viewing=viewing)
    if not ranked:
        message = NO_MATCH.format(filters=filters.describe()) if not filters.empty else NO_ANSWER
        return Answer(question, False, (), (), message)
    hits = searcher.hits(ranked)
    split = [sentences(hit.text) for hit in hits]
    # (rank of the paragraph, index of the sentence in it) of each sentence worth quoting
    places = [(rank, i) for rank, parts in enumerate(split) for i, part in enumerate(parts) if is_statement(part)]
    candidates = [(rank, hits[rank], split[rank][i]) for rank, i in places]
    if not candidates:
        return Answer(question, False, (), (), NO_ANSWER)
    query_vector = searcher.embedder.embed([query])[0]
    similarity = _similarities(searcher, query_vector, split, places, candidates)
    terms = set(content_words(query))
    top = max(ranked[0].score, 1e-9)  # fused scores are relative (standardised), so rank by share of the best
    scores = []
    for (rank, _hit, sentence), sim in zip(candidates, similarity, strict=True):
        overlap = len(terms & set(content_words(sentence))) / max(len(terms), 1)
        # the sentence's own fit, plus how well retrieval ranked its paragraph (which saw the whole paragraph)
        scores.append(float(sim) + 0.25 * overlap + 0.3 * max(ranked[rank].score, 0.0) / top)
    best = int(np.argmax(scores))
    best_overlap = len(terms & set(content_words(candidates[best][2]))) / max(len(terms), 1)
    if _own_similarity(searcher, query_vector, candidates[best]) < MIN_SIMILARITY and best_overlap < 0.6:
        return Answer(question, False, (), tuple(hits[:MAX_SOURCES]), NO_ANSWER)
    chosen = _choose(candidates, scores)
    cited: list[Hit] = []
    for _, hit, _ in chosen:
        if hit not in cited:
            cited.append(hit)
    statements = tuple(Statement(sentence, hit.citation) for _, hit, sentence in chosen)
    return Answer(question, True, statements, tuple(cited))


def _similarities(searcher: Searcher, query_vector: np.ndarray, split: list[list[str]],
                  places: list[tuple[int, int]], candidates: list[tuple[int, Hit, str]]) -> np.ndarray:
    """Each candidate sentence's cosine to the query, from the sentence vectors ingest stored (read in its
    paragraph, no model run: 4x faster answers, measured); sentences of paragraphs without them are embedded.

    `split` holds each hit's sentences, `places` each candidate's (hit rank, sentence index)."""
    hits = [hit for _, hit, _ in candidates]
    stored = searcher.store.sentence_vectors(list(dict.fromkeys(hit.paragraph_id for hit in hits)))
    first_row = dict(zip(stored.owners.tolist(), stored.starts.tolist(), strict=True))
    counts = dict(zip(stored.owners.tolist(), stored.counts().tolist(), strict=True))
    rows = np.asarray([first_row[hit.paragraph_id] + i if counts.get(hit.paragraph_id) == len(split[rank]) else -1
                       for (rank, i), hit in zip(places, hits, strict=True)], dtype=np.int64)
    similarity = np.zeros(len(candidates))
    found = rows >= 0
    if found.any():
        similarity[found] = stored.matrix[rows[found]] @ query_vector
    missing = np.flatnonzero(~found)
    if len(missing):  # a store ingested before sentence vectors, or a paragraph whose count does not line up
        vectors = searcher.embedder.embed([_sentence_text(candidates[i]) for i in missing])
        similarity[missing] = vectors @ query_vector
    return similarity


def _own_similarity(searcher: Searcher, query_vector: np.ndarray, candidate: tuple[int, Hit, str]) -> float:
    """The sentence embedded alone (with its cable's subject) against the question: the no-answer test's scale,
    which in-paragraph vectors do not share (they carry the paragraph's topic)."""
    return float(searcher.embedder.embed([_sentence_text(candidate)])[0] @ query_vector)


def _sentence_text(candidate: tuple[int, Hit, str]) -> str:
    """A sentence with its cable's subject, which it lacks on its own (as paragraphs are embedded)."""
    return f"{candidate[1].subject or ''}. {candidate[2]}"


def _choose(candidates: list[tuple[int, Hit, str]], scores: list[float]) -> list[tuple[int, Hit, str]]:
    """Best sentences (near the top score, from at most MAX_SOURCES paragraphs), in reading order."""
    order = sorted(range(len(candidates)), key=lambda i: -scores[i])
    floor = scores[order[0]] * 0.8
    picked: list[int] = []
    paragraphs: list[int] = []
    for i in order:
        rank = candidates[i][0]
        if scores[i] < floor or len(picked) >= MAX_STATEMENTS:
            break
        if rank not in paragraphs:
            if len(paragraphs) >= MAX_SOURCES:
                continue
            paragraphs.append(rank)
        picked.append(i)
    # reading order: paragraphs in order of first appearance in the ranking of picks, sentences in text order
    picked.sort(key=lambda i: (paragraphs.index(candidates[i][0]), i))
    return [candidates[i] for i in picked]

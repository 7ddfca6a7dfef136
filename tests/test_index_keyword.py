"""Keyword queries on big stores keep only their rarest terms (bounded bm25 work); small stores are untouched."""

from __future__ import annotations

from qa import keyword
from qa.filters import Filters
from tests.conftest import SEEDS


def _count(db, term: str) -> int:
    return db.execute("SELECT count(*) FROM paragraphs_fts WHERE paragraphs_fts MATCH ?", (term,)).fetchone()[0]


def test_big_store_queries_keep_the_rarest_terms(fake_library, monkeypatch):
    fake_library.ingest([SEEDS])
    db = fake_library.store.db
    common, rare = '"the"', '"guantanamo"'
    assert _count(db, common) > 3 * _count(db, rare) > 0
    match = f"{common} OR {rare}"
    assert keyword.bounded_match(db, match) == match  # 49 paragraphs: far below the pruning size
    monkeypatch.setattr(keyword, "PRUNE_MIN_ROWS", 10)
    monkeypatch.setattr(keyword, "MATCH_BUDGET", _count(db, rare) + 1)
    assert keyword.bounded_match(db, match) == rare
    monkeypatch.setattr(keyword, "MATCH_BUDGET", 0)
    assert keyword.bounded_match(db, f'{common} OR "nosuchwordanywhere"') == '"nosuchwordanywhere"'
    hits = fake_library.store.keyword_search(match, Filters(), 5)
    texts = fake_library.store.paragraphs([pid for pid, _ in hits])
    assert hits and all("guantanamo" in f"{texts[pid].text} {texts[pid].subject}".lower() for pid, _ in hits)
    assert keyword.bounded_match(db, '"one"') == '"one"' and keyword.bounded_match(db, "") == ""

"""Keyword queries on big stores keep only their rarest terms (bounded bm25 work); small stores are untouched."""

from __future__ import annotations

import sqlite3

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


def test_lookup_indexes_are_added_to_older_stores_and_read_only_ones_without_them_still_filter(fake_library):
    from qa.store import Store

    fake_library.ingest([SEEDS])
    store = fake_library.store
    match = '"government" OR "minister" OR "guantanamo"'
    only = Filters.make(year=2005)
    ids, _ = store.keyword_matches(match, Filters())
    expected = (store.keyword_search(match, only, 50), store.passing_ids(ids.tolist(), only),
                store.cable_ids_of(ids.tolist()))
    plans = [row[-1] for row in store.db.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM paragraphs WHERE vector IS NOT NULL")]
    assert any("paragraphs_embedded" in plan for plan in plans)  # opening a store reads no paragraph rows
    path = store.path
    fake_library.close()
    with sqlite3.connect(path) as db:  # as a store written before these indexes existed
        db.execute("DROP INDEX paragraphs_owner")
        db.execute("DROP INDEX paragraphs_embedded")
    old = Store(path, readonly=True)
    try:
        assert old._owner == ""
        assert (old.keyword_search(match, only, 50), old.passing_ids(ids.tolist(), only),
                old.cable_ids_of(ids.tolist())) == expected
    finally:
        old.close()
    upgraded = Store(path)
    try:
        assert upgraded._owner and (upgraded.keyword_search(match, only, 50), upgraded.passing_ids(
            ids.tolist(), only), upgraded.cable_ids_of(ids.tolist())) == expected
    finally:
        upgraded.close()

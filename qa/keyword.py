"""Keeps keyword (FTS5 bm25) queries fast on large stores by querying with the rarest terms only.

FTS5 scores every row that matches any OR-ed term, so one common word ("government") makes a query scan a
large share of a million-paragraph store.  Above PRUNE_MIN_ROWS paragraphs, each term's document frequency is
estimated on a slice of the rowid range (cheap: FTS5 seeks inside its doclists), and the query keeps the rarest
terms whose estimated matches fit in MATCH_BUDGET rows (always at least the rarest one).  Smaller stores (the
shared corpus) are queried exactly as before.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache

PRUNE_MIN_ROWS = 50_000  # below this, every term is kept: scoring all matches takes a few ms
MATCH_BUDGET = 5_000  # estimated matching rows a pruned query may score
SAMPLE_ROWS = 20_000  # rowid slice on which document frequencies are estimated


def bounded_match(db: sqlite3.Connection, match: str) -> str:
    """The MATCH expression (quoted terms joined by OR, as `qa.text.fts_query` writes it), pruned on big stores."""
    terms = [t for t in match.split(" OR ") if t.startswith('"') and t.endswith('"') and len(t) > 2]
    if len(terms) < 2 or len(terms) != match.count(" OR ") + 1:
        return match
    low, high, rows = _rowid_span(db)
    if rows < PRUNE_MIN_ROWS:
        return match
    return _pruned(id(db), high, match, db, low, rows, tuple(terms))


@lru_cache(maxsize=256)
def _pruned(_db_id: int, high: int, match: str, db: sqlite3.Connection, low: int, rows: int,
            terms: tuple[str, ...]) -> str:
    """The pruned expression, sampled once per store size: a hybrid query asks twice (top list, exact scores)."""
    scale = rows / min(rows, SAMPLE_ROWS)
    upper = low + (high - low) * min(rows, SAMPLE_ROWS) // rows
    estimates = sorted((_sampled_count(db, term, upper) * scale, term) for term in dict.fromkeys(terms))
    kept, total = [], 0.0
    for estimate, term in estimates:
        if kept and total + estimate > MATCH_BUDGET:
            break
        kept.append(term)
        total += estimate
    return " OR ".join(kept)


def _rowid_span(db: sqlite3.Connection) -> tuple[int, int, int]:
    """(smallest rowid, largest rowid, rows) of the keyword index, cached per connection and size."""
    high = db.execute("SELECT max(id) FROM paragraphs").fetchone()[0] or 0
    return _span_for(id(db), high, db)


@lru_cache(maxsize=8)
def _span_for(_db_id: int, high: int, db: sqlite3.Connection) -> tuple[int, int, int]:
    low = db.execute("SELECT min(id) FROM paragraphs").fetchone()[0] or 0
    rows = db.execute("SELECT count(*) FROM paragraphs").fetchone()[0]
    return low, high, rows


def _sampled_count(db: sqlite3.Connection, term: str, upper: int) -> int:
    try:
        return db.execute("SELECT count(*) FROM paragraphs_fts WHERE paragraphs_fts MATCH ? AND rowid <= ?",
                          (term, upper)).fetchone()[0]
    except sqlite3.OperationalError:
        return 0

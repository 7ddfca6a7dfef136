"""SQLite storage: cables, paragraphs (with their vectors), the keyword index and where each cable came from.

SQLite is the source of truth. Paragraph vectors live in the same row as the paragraph, written in the
same transaction, so a crash can never leave a paragraph without its vector; the FAISS file is a cache
rebuilt from these rows whenever it disagrees with them.
"""

from __future__ import annotations

import json
import queue
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qa.errors import StoreError
from qa.filter_index import FilterIndex, FilterIndexKeeper
from qa.filters import Filters
from qa.keyword import bounded_match
from qa.records import REDACTION_MARK, Cable, Paragraph, unique_labels

SCHEMA_VERSION = 1
# A query's candidate rows (vector + sentence vectors, several KB each) are read by this many connections side by
# side once there are PARALLEL_READ_MIN of them: with a cold page cache each row costs a few random disk reads
# that one connection waits on in turn; sqlite3 lets go of the GIL while it reads.
PARALLEL_READERS = 4
PARALLEL_READ_MIN = 64
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS cables(
    id TEXT PRIMARY KEY,
    serial TEXT NOT NULL,
    created TEXT, year INTEGER, origin TEXT, classification TEXT, tags TEXT, subject TEXT,
    refs TEXT, signer TEXT, source TEXT, completeness INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS cables_serial ON cables(serial);
CREATE INDEX IF NOT EXISTS cables_year ON cables(year);
CREATE INDEX IF NOT EXISTS cables_origin ON cables(origin);
CREATE TABLE IF NOT EXISTS paragraphs(
    id INTEGER PRIMARY KEY,
    cable_id TEXT NOT NULL REFERENCES cables(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    label TEXT NOT NULL, marking TEXT, heading TEXT, text TEXT NOT NULL,
    vector BLOB,
    sentence_vectors BLOB
);
CREATE INDEX IF NOT EXISTS paragraphs_cable ON paragraphs(cable_id, position);
-- which paragraphs have a vector, without reading their rows: opening a store compares these ids with the
-- FAISS file, and at a million paragraphs (rows of several KB with sentence vectors) a table scan took 3.7 s
CREATE INDEX IF NOT EXISTS paragraphs_embedded ON paragraphs(id) WHERE vector IS NOT NULL;
-- paragraph id -> cable id from compact index pages rather than the rows (texts and vectors): filters and
-- candidates look up a few thousand ids per query (measured 1.6x faster at a million paragraphs)
CREATE INDEX IF NOT EXISTS paragraphs_owner ON paragraphs(id, cable_id);
CREATE VIRTUAL TABLE IF NOT EXISTS paragraphs_fts USING fts5(
    body, context, tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS provenance(
    cable_id TEXT NOT NULL, source TEXT NOT NULL, completeness INTEGER, kept INTEGER NOT NULL,
    ingested_at TEXT NOT NULL, PRIMARY KEY (cable_id, source)
);
CREATE TABLE IF NOT EXISTS files(sha256 TEXT PRIMARY KEY, path TEXT NOT NULL, ingested_at TEXT NOT NULL);
"""
YEAR_PREFIX_RE = re.compile(r"^\d{2}(?=[A-Z])")


@dataclass(frozen=True)
class SentenceVectors:
    """Sentence vectors of several paragraphs stacked in one float32 matrix: paragraph owners[i]'s sentences are
    rows starts[i] up to the next start, in the order `qa.text.sentences` gives them."""

    owners: np.ndarray
    starts: np.ndarray
    matrix: np.ndarray

    @classmethod
    def of(cls, rows: Sequence[tuple], dim: int) -> SentenceVectors:
        """From (paragraph id, _, float16 blob) rows: one decode for all, not one per paragraph."""
        if not rows or not dim:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, dim), np.float32))
        counts = np.fromiter((len(r[2]) // (2 * dim) for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float16).reshape(-1, dim)
        return cls(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                   np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64), matrix.astype(np.float32))

    def counts(self) -> np.ndarray:
        """How many sentences each owner has."""
        return np.diff(np.append(self.starts, len(self.matrix)))


@dataclass(frozen=True)
class StoredParagraph:
    """A paragraph row joined with its cable's metadata: what hits and the viewer are made from."""

    id: int
    cable_id: str
    position: int
    label: str
    marking: str | None
    heading: str | None
    text: str
    subject: str | None
    created: str | None
    origin: str | None
    classification: str | None
    source: str | None


PARAGRAPH_COLUMNS = """p.id, p.cable_id, p.position, p.label, p.marking, p.heading, p.text,
    c.subject, c.created, c.origin, c.classification, c.source"""


def serial_of(cable_id: str) -> str:
    """The id without its year prefix: 'ALMATY2058' matches '06ALMATY2058'."""
    return YEAR_PREFIX_RE.sub("", cable_id)


def keyword_text(text: str) -> str:
    """Text for the keyword index: redaction marks are not words."""
    return text.replace(REDACTION_MARK, " ")


class Store:
    """One SQLite database in the store folder. Writers use short transactions; readers see WAL snapshots."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self._readers: _Readers | None = None
        self._readers_lock = threading.Lock()
        self._filter_keeper: FilterIndexKeeper | None = None
        try:
            if readonly:
                self.db = sqlite3.connect(_readonly_uri(self.path), uri=True, check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.executescript(SCHEMA)
                self._add_missing_columns()
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                self._make_labels_distinct()
                self.db.commit()
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=30000")
            self.db.execute("SELECT count(*) FROM cables").fetchone()
            self._owner = ("INDEXED BY paragraphs_owner" if self.db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='index' AND name='paragraphs_owner'").fetchone() else "")
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path} is not a usable cables database ({error}); "
                             "move it away (or restore a backup) and ingest again") from error

    def _add_missing_columns(self) -> None:
        """Stores written before sentence vectors existed gain the column (empty: those paragraphs have none)."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(paragraphs)")}
        if "sentence_vectors" not in columns:
            self.db.execute("ALTER TABLE paragraphs ADD COLUMN sentence_vectors BLOB")

    def _make_labels_distinct(self) -> None:
        """Stores written before paragraph labels were unique in a cable get "6 (2nd)" for a number their cable
        repeats (`qa.records.unique_labels`); done once (a scan of the table), then recorded in meta."""
        if self.db.execute("SELECT 1 FROM meta WHERE key = 'labels'").fetchone():
            return
        repeated = self.db.execute(
            "SELECT DISTINCT cable_id FROM (SELECT cable_id FROM paragraphs GROUP BY cable_id, label "
            "HAVING count(*) > 1)").fetchall()
        for (cable_id,) in repeated:
            rows = self.db.execute("SELECT id, label FROM paragraphs WHERE cable_id = ? ORDER BY position",
                                   (cable_id,)).fetchall()
            for (paragraph_id, label), unique in zip(rows, unique_labels(label for _, label in rows), strict=True):
                if unique != label:
                    self.db.execute("UPDATE paragraphs SET label = ? WHERE id = ?", (unique, paragraph_id))
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('labels', 'distinct')")

    def keep_filter_index(self, wait: bool = False) -> None:
        """Answer filters from memory from now on (a long-running process: the web app, a benchmark).

        The in-memory copy (qa/filter_index.py) is built in the background, now and after each change; until it
        matches the database, filters run in SQL. `wait` blocks until this first build is done.
        """
        if self._filter_keeper is None:
            self._filter_keeper = FilterIndexKeeper(_readonly_uri(self.path))
        self._filter_keeper.current(self.db)
        if wait:
            self._filter_keeper.wait()

    def _filter_index(self) -> FilterIndex | None:
        return None if self._filter_keeper is None else self._filter_keeper.current(self.db)

    def close(self) -> None:
        if self._filter_keeper is not None:
            self._filter_keeper.wait()
        self.db.close()
        if self._readers is not None:
            self._readers.close()

    # ---- metadata ------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # ---- writing -------------------------------------------------------------------------------------------
    def file_seen(self, sha256: str) -> bool:
        return self.db.execute("SELECT 1 FROM files WHERE sha256=?", (sha256,)).fetchone() is not None

    def mark_file(self, sha256: str, path: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?)", (sha256, path, _now()))

    def find_copy(self, cable: Cable) -> tuple[str, int] | None:
        """The stored copy of this cable (id, completeness), matching year-unknown ids by serial."""
        row = self.db.execute("SELECT id, completeness FROM cables WHERE id=?", (cable.id,)).fetchone()
        if row:
            return row[0], row[1]
        serial = serial_of(cable.id)
        rows = self.db.execute("SELECT id, completeness FROM cables WHERE serial=?", (serial,)).fetchall()
        candidates = [r for r in rows if r[0] == serial or cable.id == serial]
        return (candidates[0][0], candidates[0][1]) if len(candidates) == 1 else None

    def kept_from(self, cable_id: str, source: str) -> bool:
        """Whether the stored copy of this cable was read from `source` (re-reading it is not a duplicate)."""
        return self.db.execute("SELECT 1 FROM provenance WHERE cable_id=? AND source=? AND kept=1",
                               (cable_id, source)).fetchone() is not None

    def record_provenance(self, cable_id: str, source: str, completeness: int, kept: bool) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO provenance VALUES (?, ?, ?, ?, ?)",
                            (cable_id, source, completeness, int(kept), _now()))

    def put_cable(self, cable: Cable, vectors: Sequence[np.ndarray | None], replaces: str | None = None,
                  sentence_vectors: Sequence[np.ndarray | None] | None = None) -> list[int]:
        """Store a cable, its paragraphs, their vectors, keyword rows and provenance in one transaction.

        `sentence_vectors[i]` (sentences x dim, or None) belongs to paragraph i; kept as float16.
        """
        sentence_vectors = sentence_vectors if sentence_vectors is not None else [None] * len(cable.paragraphs)
        with self.db:
            if replaces:
                self._delete_cable(replaces)
            self.db.execute("INSERT OR REPLACE INTO provenance VALUES (?, ?, ?, ?, ?)",
                            (cable.id, cable.source or "?", cable.completeness(), 1, _now()))
            self.db.execute(
                "INSERT INTO cables VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (cable.id, serial_of(cable.id), cable.created.isoformat(sep=" ") if cable.created else None,
                 cable.year, cable.origin, cable.classification, " ".join(cable.tags), cable.subject,
                 json.dumps(list(cable.references)), cable.signer, cable.source, cable.completeness()),
            )
            ids = []
            rows = zip(cable.paragraphs, vectors, sentence_vectors, strict=True)
            for position, (paragraph, vector, sentences) in enumerate(rows):
                blob = None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()
                parts = None if sentences is None or not len(sentences) else (
                    np.asarray(sentences, dtype=np.float16).tobytes())
                cursor = self.db.execute(
                    "INSERT INTO paragraphs(cable_id, position, label, marking, heading, text, vector, "
                    "sentence_vectors) VALUES (?,?,?,?,?,?,?,?)",
                    (cable.id, position, paragraph.label, paragraph.marking, paragraph.heading, paragraph.text, blob,
                     parts),
                )
                pid = int(cursor.lastrowid)
                ids.append(pid)
                context = " ".join(x for x in (cable.subject, paragraph.heading, cable.id) if x)
                self.db.execute("INSERT INTO paragraphs_fts(rowid, body, context) VALUES (?,?,?)",
                                (pid, keyword_text(paragraph.text), context))
        return ids

    def _delete_cable(self, cable_id: str) -> None:
        self.db.execute("DELETE FROM paragraphs_fts WHERE rowid IN (SELECT id FROM paragraphs WHERE cable_id=?)",
                        (cable_id,))
        self.db.execute("DELETE FROM paragraphs WHERE cable_id=?", (cable_id,))
        self.db.execute("DELETE FROM cables WHERE id=?", (cable_id,))

    # ---- reading -------------------------------------------------------------------------------------------
    def cable(self, cable_id: str) -> Cable | None:
        """The whole stored cable, found by exact id or, failing that, by serial (year-less id)."""
        row = self.db.execute("SELECT * FROM cables WHERE id=?", (cable_id,)).fetchone()
        if row is None:
            rows = self.db.execute("SELECT * FROM cables WHERE serial=?", (serial_of(cable_id),)).fetchall()
            row = rows[0] if len(rows) == 1 else None
        if row is None:
            return None
        paragraphs = self.db.execute(
            "SELECT label, text, marking, heading FROM paragraphs WHERE cable_id=? ORDER BY position", (row[0],)
        ).fetchall()
        return Cable(
            id=row[0], created=datetime.fromisoformat(row[2]) if row[2] else None, origin=row[4],
            classification=row[5], tags=tuple(row[6].split()) if row[6] else (), subject=row[7],
            references=tuple(json.loads(row[8] or "[]")), signer=row[9],
            paragraphs=tuple(Paragraph(label, text, marking, heading) for label, text, marking, heading in paragraphs),
            source=row[10],
        )

    def cables(self) -> Iterator[Cable]:
        for (cable_id,) in self.db.execute("SELECT id FROM cables ORDER BY created, id").fetchall():
            cable = self.cable(cable_id)
            if cable:
                yield cable

    def _rows_by_id(self, sql: str, ids: Sequence[int], params: Sequence = ()) -> Iterator[tuple]:
        """Rows of `sql` (whose `{ids}` is the id list) for many ids, in chunks under SQLite's variable limit."""
        ids = list(ids)
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            yield from self.db.execute(_with_ids(sql, len(chunk)), [*chunk, *params])

    def _rows_side_by_side(self, sql: str, ids: Sequence[int]) -> list[tuple]:
        """`_rows_by_id` for many ids, split into runs of neighbouring ids read by several connections at once."""
        ids = sorted(set(ids))
        readers = self._parallel_readers() if len(ids) >= PARALLEL_READ_MIN else None
        if readers is None:
            return list(self._rows_by_id(sql, ids))
        size = min(900, -(-len(ids) // readers.count))  # under SQLite's variable limit
        return readers.read(sql, [ids[start:start + size] for start in range(0, len(ids), size)])

    def _parallel_readers(self) -> _Readers | None:
        """The read-only connections, opened on first use; None where the database cannot be opened again."""
        if self._readers is None:
            with self._readers_lock:
                if self._readers is None:
                    try:
                        self._readers = _Readers(_readonly_uri(self.path), PARALLEL_READERS)
                    except sqlite3.Error:
                        return None
        return self._readers

    def paragraphs(self, ids: Sequence[int]) -> dict[int, StoredParagraph]:
        sql = (f"SELECT {PARAGRAPH_COLUMNS} FROM paragraphs p JOIN cables c ON c.id = p.cable_id "
               "WHERE p.id IN ({ids})")
        return {row[0]: StoredParagraph(*row) for row in self._rows_by_id(sql, ids)}

    def cable_paragraph_ids(self, cable_id: str) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM paragraphs WHERE cable_id=? ORDER BY position",
                                              (cable_id,))]

    def cable_ids_of(self, ids: Sequence[int]) -> dict[int, str]:
        """paragraph id -> its cable id."""
        return dict(self._rows_by_id(f"SELECT id, cable_id FROM paragraphs {self._owner} WHERE id IN ({{ids}})", ids))

    def summary_ids(self, ids: Sequence[int]) -> set[int]:
        """Which of these paragraphs are their cable's summary ('Summary: ...' / 'SUMMARY AND COMMENT')."""
        ids = list(ids)
        if not ids:
            return set()
        rows = self.db.execute(
            f"SELECT id FROM paragraphs WHERE id IN ({','.join('?' * len(ids))}) AND "
            "(substr(ltrim(text), 1, 30) LIKE '%summary%' OR heading LIKE '%summary%')", ids).fetchall()
        return {r[0] for r in rows}

    def existing_ids(self, cable_ids: Sequence[str]) -> set[str]:
        found = set()
        for cable_id in cable_ids:
            hit = self.db.execute("SELECT id FROM cables WHERE id=? OR serial=?", (cable_id, cable_id)).fetchone()
            if hit:
                found.add(hit[0])
        return found

    def passing_ids(self, ids: Sequence[int], filters: Filters) -> set[int]:
        """Which of these paragraphs pass the filters."""
        memory = self._filter_index()
        if memory is not None:
            ids = np.asarray(ids, dtype=np.int64)
            return set(ids[memory.passing(ids, filters)].tolist())
        where, params = filters.sql()
        # CROSS JOIN keeps paragraphs as the outer loop: looked up by id, not every cable of a year scanned
        sql = (f"SELECT p.id FROM paragraphs p {self._owner} CROSS JOIN cables c ON c.id = p.cable_id "
               "WHERE p.id IN ({ids}) AND " + where.replace("{", "{{").replace("}", "}}"))
        return {row[0] for row in self._rows_by_id(sql, ids, params)}

    def filtered_paragraph_ids(self, filters: Filters) -> np.ndarray:
        """Every paragraph id that passes the filters."""
        memory = self._filter_index()
        if memory is not None:
            return memory.passing_paragraph_ids(filters)
        where, params = filters.sql()
        rows = self.db.execute(
            f"SELECT p.id FROM paragraphs p JOIN cables c ON c.id = p.cable_id WHERE {where}", params
        ).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def keyword_matches(self, match: str, filters: Filters) -> tuple[np.ndarray, np.ndarray]:
        """(paragraph ids, bm25 scores; higher is better) of every paragraph an FTS5 query matches, filters inside.

        Hybrid search needs the keyword side's best paragraphs and the exact score of every other candidate: FTS5
        scores every match to rank them anyway, so one pass gives both (scoring a `rowid IN (...)` list instead
        re-runs the whole query per id: 70 ms against 4 ms on the corpus).
        """
        memory = None if filters.empty else self._filter_index()
        in_sql = not filters.empty and memory is None
        where, params = filters.sql() if in_sql else ("", [])
        match = bounded_match(self.db, match)  # rarest terms only on big stores (qa/keyword.py)
        sql = (
            "SELECT f.rowid, -bm25(paragraphs_fts, 1.0, 0.35) FROM paragraphs_fts f "
            + ("" if not in_sql else
               # CROSS JOIN keeps this order (each match, its paragraph, its cable): with a year filter the
               # planner otherwise scans every cable of the year for each match
               f"CROSS JOIN paragraphs p {self._owner} ON p.id = f.rowid CROSS JOIN cables c ON c.id = p.cable_id ")
            + "WHERE paragraphs_fts MATCH ? "
            + (f"AND {where} " if in_sql else "")
        )
        try:
            rows = self.db.execute(sql, [match, *params]).fetchall()
        except sqlite3.OperationalError:
            rows = []
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        ids, scores = zip(*rows, strict=True)
        ids, scores = np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float64)
        if memory is not None:
            keep = memory.passing(ids, filters)
            ids, scores = ids[keep], scores[keep]
        return ids, scores

    def keyword_search(self, match: str, filters: Filters, k: int) -> list[tuple[int, float]]:
        """Top-k (paragraph id, bm25 score; higher is better) for an FTS5 query, filters applied inside."""
        ids, scores = self.keyword_matches(match, filters)
        return top_scores(ids, scores, k)

    def vectors(self, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of stored paragraphs that have a vector; all of them when ids is None."""
        if ids is None:
            rows = self.db.execute("SELECT id, vector FROM paragraphs WHERE vector IS NOT NULL").fetchall()
        else:
            rows = list(self._rows_by_id("SELECT id, vector FROM paragraphs WHERE vector IS NOT NULL AND id IN ({ids})",
                                         ids))
        return _decode_vectors(rows)

    def sentence_vectors(self, ids: Sequence[int]) -> SentenceVectors:
        """The stored sentence vectors of these paragraphs (those that have them)."""
        sql = ("SELECT id, NULL, sentence_vectors FROM paragraphs WHERE sentence_vectors IS NOT NULL "
               "AND length(sentence_vectors) > 0 AND id IN ({ids})")
        dim = self.vector_dim() or 0
        try:
            rows = list(self._rows_by_id(sql, ids))
        except sqlite3.OperationalError:  # a store opened read-only that predates sentence vectors
            rows = []
        return SentenceVectors.of(rows, dim)

    def candidate_vectors(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray, SentenceVectors]:
        """`vectors(ids)` and `sentence_vectors(ids)` from one read of the rows: search needs both per candidate."""
        sql = "SELECT id, vector, sentence_vectors FROM paragraphs WHERE vector IS NOT NULL AND id IN ({ids})"
        try:
            rows = self._rows_side_by_side(sql, ids)
        except sqlite3.OperationalError:  # a store opened read-only that predates sentence vectors
            return (*self.vectors(ids), SentenceVectors.of([], self.vector_dim() or 0))
        out_ids, matrix = _decode_vectors(rows)
        return out_ids, matrix, SentenceVectors.of([r for r in rows if r[2]], matrix.shape[1])

    def vector_dim(self) -> int | None:
        """Dimension of the stored vectors (None when there are none yet)."""
        row = self.db.execute("SELECT length(vector) FROM paragraphs WHERE vector IS NOT NULL LIMIT 1").fetchone()
        return row[0] // 4 if row else None

    def vector_ids(self) -> np.ndarray:
        rows = self.db.execute("SELECT id FROM paragraphs WHERE vector IS NOT NULL").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def facets(self) -> dict[str, list]:
        """Values users can filter on: posts, years, tags, classifications (with counts)."""
        origins = self.db.execute("SELECT origin, count(*) FROM cables WHERE origin IS NOT NULL "
                                  "GROUP BY origin ORDER BY origin").fetchall()
        years = self.db.execute("SELECT year, count(*) FROM cables WHERE year IS NOT NULL "
                                "GROUP BY year ORDER BY year").fetchall()
        classes = self.db.execute("SELECT classification, count(*) FROM cables WHERE classification IS NOT NULL "
                                  "GROUP BY classification ORDER BY classification").fetchall()
        tag_counts: dict[str, int] = {}
        # cables share tag lists: count each distinct list once (a Python pass over every cable took 0.8 s at 1M)
        for tags, cables in self.db.execute("SELECT tags, count(*) FROM cables WHERE tags != '' GROUP BY tags"):
            for tag in tags.split():
                tag_counts[tag] = tag_counts.get(tag, 0) + cables
        return {"origins": origins, "years": years, "classifications": classes,
                "tags": sorted(tag_counts.items(), key=lambda kv: (-kv[1], kv[0]))}

    def has_cables(self) -> bool:
        """Whether any cable is stored (one row read, unlike `stats`)."""
        return self.db.execute("SELECT 1 FROM cables LIMIT 1").fetchone() is not None

    def stats(self) -> dict[str, int]:
        one = self.db.execute
        return {
            "cables": one("SELECT count(*) FROM cables").fetchone()[0],
            "paragraphs": one("SELECT count(*) FROM paragraphs").fetchone()[0],
            "vectors": one("SELECT count(*) FROM paragraphs WHERE vector IS NOT NULL").fetchone()[0],
            "posts": one("SELECT count(DISTINCT origin) FROM cables").fetchone()[0],
            "years": one("SELECT count(DISTINCT year) FROM cables").fetchone()[0],
            "sources": one("SELECT count(DISTINCT source) FROM provenance").fetchone()[0],
            "duplicates": one("SELECT count(*) FROM provenance WHERE kept = 0").fetchone()[0],
        }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def top_scores(ids: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k best (id, score) pairs, best first; ties go to the smaller id, so the order never depends on SQLite's."""
    order = np.lexsort((ids, -scores))[:k]
    return [(int(ids[i]), float(scores[i])) for i in order]


def _readonly_uri(path: Path) -> str:
    """The URI that opens this database read-only (for the extra connections that only read)."""
    return f"{path.resolve().as_uri()}?mode=ro"


def _with_ids(sql: str, count: int) -> str:
    """`sql` with its `{ids}` placeholder filled by `count` bound parameters."""
    return sql.format(ids=",".join("?" * count))


def _decode_vectors(rows: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 matrix) from (id, vector blob, ...) rows, decoded in one array operation."""
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return ids, np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)


class _Readers:
    """Read-only connections to one database and threads to run them: each chunk of a read gets a connection of
    its own, so reads that wait on the disk overlap. They see the last committed data, as any reader does."""

    def __init__(self, uri: str, count: int) -> None:
        self.count = count
        self._free: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        try:
            for _ in range(count):
                self._all.append(sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30))
        except sqlite3.Error:
            for connection in self._all:
                connection.close()
            raise
        for connection in self._all:
            self._free.put(connection)
        self._pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="store-read")

    def read(self, sql: str, chunks: list[list[int]]) -> list[tuple]:
        def one(chunk: list[int]) -> list[tuple]:
            connection = self._free.get()
            try:
                return connection.execute(_with_ids(sql, len(chunk)), chunk).fetchall()
            finally:
                self._free.put(connection)

        return [row for rows in self._pool.map(one, chunks) for row in rows]

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for connection in self._all:
            connection.close()

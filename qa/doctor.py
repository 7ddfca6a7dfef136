"""`cables doctor`: check that a store's parts agree, and rebuild what can be rebuilt from the database rows.

SQLite is the source of truth. The keyword index (FTS5 rows), the FAISS file under `index/` and a paragraph's
vector can all be made again from stored rows (the vector by embedding the paragraph again); a database whose
pages are damaged cannot, and doctor says so instead of guessing.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.errors import StoreError
from qa.ingest import embedding_input, indexable
from qa.records import Paragraph
from qa.store import keyword_text

EMBED_BATCH = 256


@dataclass(frozen=True)
class Finding:
    """One disagreement (or 'ok') found by a check; `repairable` says whether --repair can fix it."""

    check: str
    ok: bool
    message: str
    repairable: bool = True


@dataclass
class DoctorReport:
    """All findings of a check, and what --repair did."""

    home: str
    findings: list[Finding] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else StoreError.exit_code

    def to_json(self) -> dict:
        return {"home": self.home, "ok": self.ok, "repaired": self.repaired,
                "findings": [{"check": f.check, "ok": f.ok, "message": f.message, "repairable": f.repairable}
                             for f in self.findings]}

    def lines(self) -> list[str]:
        out = [f"repaired: {r}" for r in self.repaired]
        out += [f"{'ok' if f.ok else 'PROBLEM'} {f.check}: {f.message}" for f in self.findings]
        if not self.ok:
            fixable = all(f.repairable for f in self.findings if not f.ok)
            out.append("run `cables doctor --repair` to rebuild it" if fixable and not self.repaired else
                       "cannot be repaired in place: restore a backup, or ingest the sources again into a new --home")
        return out


def doctor(home: str | Path, repair: bool = False, model: str | None = None, backend: str = "auto",
           embedder=None) -> DoctorReport:
    """Check the store in `home`; with `repair`, rebuild keyword rows, missing vectors and the FAISS index."""
    from qa.library import DB_FILE, Library

    home = Path(home)
    if not (home / DB_FILE).is_file():
        raise StoreError(f"no store at {home} (no {DB_FILE}); check --home or $CABLES_HOME")
    library = Library(home, model=model, backend=backend, embedder=embedder)  # StoreError if it cannot be opened
    try:
        report = check(library)
        if repair and not report.ok:
            repaired = _repair(library, report)
            report = check(library)
            report.repaired = repaired
        return report
    finally:
        library.close()


def check(library) -> DoctorReport:
    """Every check, read-only: integrity, paragraph/vector, paragraph/keyword rows, FAISS file/database."""
    report = DoctorReport(str(library.home))
    db = library.store.db
    try:
        problems = [r[0] for r in db.execute("PRAGMA integrity_check(20)").fetchall()]
    except sqlite3.DatabaseError as error:
        problems = [str(error)]
    if problems == ["ok"]:
        report.findings.append(Finding("database", True, "SQLite integrity_check passed"))
    else:
        lines = [line for p in problems for line in str(p).splitlines() if line.strip() and "***" not in line]
        more = f" (and {len(lines) - 3} more)" if len(lines) > 3 else ""
        report.findings.append(Finding("database", False, "SQLite integrity_check failed: " + "; ".join(lines[:3])
                                       + more, repairable=False))
        return report  # the other checks would read damaged pages
    report.findings.append(_check_vectors(library))
    report.findings.append(_check_keywords(library))
    report.findings.append(_check_index(library))
    note = library.model_note()
    if note:  # not a disagreement between the store's parts: it reads right, so the check stays ok
        report.findings.append(Finding("model", True, note, repairable=False))
    return report


def _missing_vectors(library) -> list[int]:
    """Ids of paragraphs that should have vectors (they contain words) but have none, one of the wrong size, or
    no sentence vectors of the right shape (a store written before sentence vectors existed)."""
    db = library.store.db
    dim = library.store.vector_dim() or 0
    rows = db.execute("SELECT id, text, length(vector) FROM paragraphs WHERE vector IS NULL "
                      "OR length(vector) != ? OR sentence_vectors IS NULL OR length(sentence_vectors) % ? != 0",
                      (dim * 4, max(dim * 2, 1))).fetchall()
    return [pid for pid, text, size in rows if (size is not None and size != dim * 4) or indexable(Paragraph("", text))]


def _check_vectors(library) -> Finding:
    db = library.store.db
    orphans = db.execute("SELECT count(*) FROM paragraphs WHERE cable_id NOT IN (SELECT id FROM cables)").fetchone()[0]
    missing = _missing_vectors(library)
    stats = library.store.stats()
    if orphans or missing:
        parts = [f"{len(missing)} paragraphs have no usable vector (or sentence vectors)"] if missing else []
        parts += [f"{orphans} paragraphs belong to no stored cable"] if orphans else []
        return Finding("vectors", False, ", ".join(parts))
    return Finding("vectors", True, f"{stats['paragraphs']} paragraphs, {stats['vectors']} vectors; every paragraph "
                                    "with words has exactly one")


def _check_keywords(library) -> Finding:
    db = library.store.db
    try:
        with db:
            db.execute("INSERT INTO paragraphs_fts(paragraphs_fts) VALUES ('integrity-check')")
        fts = {r[0] for r in db.execute("SELECT rowid FROM paragraphs_fts")}
    except sqlite3.DatabaseError as error:
        return Finding("keywords", False, f"the keyword index is damaged ({error})")
    paragraphs = {r[0] for r in db.execute("SELECT id FROM paragraphs")}
    if fts != paragraphs:
        return Finding("keywords", False, f"the keyword index misses {len(paragraphs - fts)} paragraphs and has "
                                          f"{len(fts - paragraphs)} rows of no paragraph")
    return Finding("keywords", True, f"{len(fts)} keyword rows, one per paragraph")


def _check_index(library) -> Finding:
    """The FAISS file on disk (not the copy Library would rebuild silently) against the stored vectors."""
    from embeddings import VectorIndex
    from embeddings.errors import IndexFileError
    from qa.library import INDEX_DIR

    folder = library.home / INDEX_DIR
    stored_ids, stored = library.store.vectors()
    if not (folder / "manifest.json").exists():
        if len(stored_ids):
            return Finding("index", False, f"no vector index in {folder} for {len(stored_ids)} stored vectors")
        return Finding("index", True, "no vectors stored, no index needed")
    try:
        index = VectorIndex.load(folder, library.store.get_meta("model"))
    except IndexFileError as error:
        return Finding("index", False, str(error).split(" (")[0].split(";")[0])
    present = index.ids()
    if set(present.tolist()) != set(stored_ids.tolist()):
        missing = len(np.setdiff1d(stored_ids, present))
        extra = len(np.setdiff1d(present, stored_ids))
        return Finding("index", False, f"the vector index misses {missing} stored vectors and has {extra} of no "
                                       "paragraph")
    if len(stored_ids) and not np.allclose(index.vectors(stored_ids), stored, atol=1e-6):
        return Finding("index", False, "the vector index holds vectors that differ from the stored ones")
    return Finding("index", True, f"{len(present)} vectors in {folder.name}/, the same ids and vectors as the database")


def _repair(library, report: DoctorReport) -> list[str]:
    """Rebuild what the failed findings name; returns what was done (the database itself is never rewritten)."""
    failed = {f.check for f in report.findings if not f.ok}
    if "database" in failed:
        try:
            with library.store.db:
                library.store.db.execute("REINDEX")
        except sqlite3.DatabaseError:
            return []
        if [r[0] for r in library.store.db.execute("PRAGMA integrity_check(1)")] != ["ok"]:
            return []
        done = ["rebuilt the SQLite indexes (REINDEX)"]
        failed = {f.check for f in check(library).findings if not f.ok}
    else:
        done = []
    if "vectors" in failed:
        done += _repair_vectors(library)
    if "keywords" in failed:
        done.append(_rebuild_keywords(library))
    done.append(_rebuild_index(library))
    return done


def _repair_vectors(library) -> list[str]:
    db = library.store.db
    done = []
    with db:
        orphans = db.execute("SELECT id FROM paragraphs WHERE cable_id NOT IN (SELECT id FROM cables)").fetchall()
        for (pid,) in orphans:
            db.execute("DELETE FROM paragraphs_fts WHERE rowid=?", (pid,))
            db.execute("DELETE FROM paragraphs WHERE id=?", (pid,))
    if orphans:
        done.append(f"removed {len(orphans)} paragraphs of no stored cable")
    missing = _missing_vectors(library)
    if not missing:
        return done
    stored_model = library.store.get_meta("model")
    if stored_model and stored_model != library.embedder.name:
        raise StoreError(f"the store was built with model {stored_model!r}; repair with --model {stored_model}")
    rows = db.execute(f"SELECT id, cable_id, position FROM paragraphs WHERE id IN ({','.join('?' * len(missing))})",
                      missing).fetchall()
    cables = {}
    inputs = []
    for _pid, cable_id, position in rows:
        cable = cables.get(cable_id) or cables.setdefault(cable_id, library.store.cable(cable_id))
        inputs.append(embedding_input(cable, cable.paragraphs[position]))
    for start in range(0, len(rows), EMBED_BATCH):
        chunk = inputs[start:start + EMBED_BATCH]
        passages = library.embedder.embed_passages([t for t, _ in chunk], [s for _, s in chunk])
        with db:
            for (pid, _, _), passage in zip(rows[start:start + EMBED_BATCH], passages, strict=True):
                sentences = np.asarray(passage.spans, dtype=np.float16).tobytes() if len(passage.spans) else None
                db.execute("UPDATE paragraphs SET vector=?, sentence_vectors=? WHERE id=?",
                           (np.asarray(passage.vector, dtype=np.float32).tobytes(), sentences, pid))
    done.append(f"embedded {len(rows)} paragraphs that had no usable vector (or sentence vectors)")
    return done


def _rebuild_keywords(library) -> str:
    """Recreate every keyword row from the paragraphs (same body and context as `Store.put_cable` writes)."""
    db = library.store.db
    rows = db.execute("SELECT p.id, p.text, p.heading, c.subject, c.id FROM paragraphs p "
                      "JOIN cables c ON c.id = p.cable_id").fetchall()
    with db:
        db.execute("DROP TABLE IF EXISTS paragraphs_fts")
        db.execute("CREATE VIRTUAL TABLE paragraphs_fts USING fts5(body, context, "
                   "tokenize = 'porter unicode61 remove_diacritics 2')")
        for pid, text, heading, subject, cable_id in rows:
            context = " ".join(x for x in (subject, heading, cable_id) if x)
            db.execute("INSERT INTO paragraphs_fts(rowid, body, context) VALUES (?,?,?)",
                       (pid, keyword_text(text), context))
    return f"rebuilt the keyword index ({len(rows)} paragraphs)"


def _rebuild_index(library) -> str:
    """A fresh FAISS index from the stored vectors, written atomically over the old file."""
    from embeddings import VectorIndex

    ids, vectors = library.store.vectors()
    model = library.store.get_meta("model") or library.embedder.name
    index = VectorIndex(model, vectors.shape[1] if len(ids) else library.embedder.dim)
    index.add(ids, vectors)
    library._index = index
    library._save_index(index)
    return f"rebuilt the vector index from {len(ids)} stored vectors"

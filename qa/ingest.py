"""Ingest pipeline: files -> cables -> new paragraphs embedded in batches -> one transaction per cable.

Incremental and idempotent: a file whose bytes were ingested before is skipped, a cable already stored is
kept unless the new copy is more complete, and only new paragraphs are embedded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CablesError, InputError, ParseError
from qa.formats import read_cables
from qa.records import REDACTION_MARK, Cable, Paragraph
from qa.text import sentences

BATCH_PARAGRAPHS = 256  # paragraphs embedded per call, unless the embedder prefers fewer (`preferred_batch`)
SKIP_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".pdf", ".zip", ".gz", ".faiss", ".db", ".sqlite", ".pyc"}


@dataclass
class IngestReport:
    """What an ingest did, for the summary line and `--json`."""

    files: int = 0
    unchanged_files: int = 0
    cables_added: int = 0
    cables_replaced: int = 0
    paragraphs_added: int = 0
    duplicates: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    empty_cables: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.skipped

    def summary(self) -> str:
        parts = [f"{self.files} files", f"{self.cables_added} cables added", f"{self.paragraphs_added} paragraphs"]
        if self.cables_replaced:
            parts.append(f"{self.cables_replaced} replaced by a more complete copy")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicate copies kept once")
        if self.unchanged_files:
            parts.append(f"{self.unchanged_files} files already ingested")
        parts.append(f"{len(self.skipped)} skipped")
        return ", ".join(parts)

    def to_json(self) -> dict:
        return {"files": self.files, "unchanged_files": self.unchanged_files, "cables_added": self.cables_added,
                "cables_replaced": self.cables_replaced, "paragraphs_added": self.paragraphs_added,
                "duplicates": self.duplicates, "empty_cables": self.empty_cables,
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}


def embedding_text(cable: Cable, paragraph: Paragraph) -> str:
    """What the dense side embeds: the paragraph plus what it lacks alone (subject, section, post, year).

    Citations and the viewer always show `paragraph.text` unchanged.
    """
    where_when = " ".join(x for x in (cable.origin, str(cable.year or "")) if x)
    context = [cable.subject or "", paragraph.heading or "", where_when]
    head = ". ".join(c.strip() for c in context if c.strip())
    body = paragraph.text.replace(REDACTION_MARK, " ")
    return f"{head}.\n{body}" if head else body


def embedding_input(cable: Cable, paragraph: Paragraph) -> tuple[str, list[tuple[int, int]]]:
    """`embedding_text` and the character span of each of the paragraph's sentences inside it.

    The spans follow `qa.text.sentences(paragraph.text)`, one for one, so stored sentence vectors line up with
    the sentences the answer quotes.
    """
    text = embedding_text(cable, paragraph)
    offset = len(text) - len(paragraph.text)  # the body ends the text, with redaction marks blanked one for one
    spans: list[tuple[int, int]] = []
    cursor = 0
    for sentence in sentences(paragraph.text):
        start = paragraph.text.find(sentence, cursor)
        if start < 0:
            start = cursor
        spans.append((offset + start, offset + start + len(sentence)))
        cursor = start + len(sentence)
    return text, spans


def indexable(paragraph: Paragraph) -> bool:
    """A paragraph made only of redaction marks or punctuation gets no vector."""
    return any(ch.isalnum() for ch in paragraph.text)


def iter_files(paths: Iterable[str | os.PathLike], report: IngestReport, exclude: Path | None = None
               ) -> Iterator[Path]:
    """Expand files and folders (recursively, sorted, symlink loops cut); missing paths go to `report.skipped`.

    `exclude` (the store folder itself) is never read as input.
    """
    excluded = exclude.resolve() if exclude else None
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            report.skipped.append((str(path), "no such file or folder; check the path"))
        elif path.is_dir():
            seen: set[tuple[int, int]] = set()
            for root, dirs, files in os.walk(path, followlinks=True):
                stat = os.stat(root)
                if (stat.st_dev, stat.st_ino) in seen:
                    dirs[:] = []
                    report.skipped.append((root, "symbolic link loop; not followed again"))
                    continue
                seen.add((stat.st_dev, stat.st_ino))
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                                 and (excluded is None or (Path(root) / d).resolve() != excluded))
                for name in sorted(files):
                    if not name.startswith(".") and Path(name).suffix.lower() not in SKIP_SUFFIXES:
                        yield Path(root) / name
        else:
            yield path


def decode(data: bytes, source: str) -> str:
    """Bytes to text: UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252; binary data is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if b"\x00" in data[:8192]:
        raise InputError(f"{source}: binary file (not text); give cable text, HTML, CSV or JSONL files")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def read_file(path: Path) -> tuple[str, str]:
    """(text, sha256) of a file, with a clear InputError for what cannot be read."""
    try:
        data = path.read_bytes()
    except PermissionError as error:
        raise InputError(f"{path}: permission denied; make the file readable") from error
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from error
    if not data.strip():
        raise InputError(f"{path}: empty file")
    return decode(data, str(path)), hashlib.sha256(data).hexdigest()


Progress = Callable[[int, int], None]  # (paragraphs done, cables done)


class Ingester:
    """Adds cables to a library's store, embedding new paragraphs in batches."""

    def __init__(self, store, embedder, on_progress: Progress | None = None, home: Path | None = None) -> None:
        self.store = store
        self.home = home
        self.embedder = embedder
        self.on_progress = on_progress or (lambda paragraphs, cables: None)
        self.pending: list[tuple[Cable, str | None]] = []
        self.report = IngestReport()
        # an embedder that gains nothing from big calls (ONNX: one text per run) says so: cables are then written,
        # and shown in the progress bar, as they are embedded rather than in bursts of BATCH_PARAGRAPHS
        self.batch_paragraphs = min(BATCH_PARAGRAPHS, getattr(embedder, "preferred_batch", BATCH_PARAGRAPHS))

    def run(self, paths: Iterable[str | os.PathLike]) -> IngestReport:
        for path in iter_files(paths, self.report, exclude=self.home):
            self.ingest_file(path)
        self.flush()
        return self.report

    def ingest_file(self, path: Path) -> None:
        self.report.files += 1
        try:
            text, sha = read_file(path)
        except CablesError as error:
            self.report.skipped.append((str(path), str(error)))
            return
        if self.store.file_seen(sha):
            self.report.unchanged_files += 1
            return
        problems = self.add_parsed(path, read_cables(text, str(path)))
        self.flush()
        if not problems:
            self.store.mark_file(sha, str(path))

    def add_parsed(self, path: Path, items: Iterable[Cable | ParseError]) -> int:
        """Add one file's parsed cables; its parse errors go to the report. Returns how many there were."""
        problems = 0
        for item in items:
            if isinstance(item, ParseError):
                self.report.skipped.append((str(path), str(item)))
                problems += 1
            else:
                self.add(item)
        return problems

    def add(self, cable: Cable) -> None:
        if any(c.id == cable.id for c, _ in self.pending):
            self.flush()
        copy = self.store.find_copy(cable)
        completeness = cable.completeness()
        source = cable.source or "?"
        if copy and completeness <= copy[1] and self.store.kept_from(copy[0], source):
            return  # this very file was stored by a run killed before it could mark the file done
        if copy and completeness <= copy[1]:
            self.store.record_provenance(copy[0], source, completeness, kept=False)
            kept = "a more complete copy" if completeness < copy[1] else "an equally complete copy (kept; first wins)"
            self.report.duplicates.append(f"{cable.id} from {source}: {kept} is already stored")
            return
        if copy:
            self.report.duplicates.append(f"{copy[0]}: replaced by the more complete copy from {source}")
        if not cable.paragraphs:
            self.report.empty_cables.append(cable.id)
        self.pending.append((cable, copy[0] if copy else None))
        if sum(len(c.paragraphs) for c, _ in self.pending) >= self.batch_paragraphs:
            self.flush()

    def flush(self) -> None:
        """Embed the pending cables' paragraphs in one batch, then store each cable in its own transaction."""
        if not self.pending:
            return
        inputs = [embedding_input(c, p) for c, _ in self.pending for p in c.paragraphs if indexable(p)]
        passages = iter(self.embedder.embed_passages([t for t, _ in inputs], [s for _, s in inputs]) if inputs else ())
        for cable, replaces in self.pending:
            embedded = [next(passages) if indexable(p) else None for p in cable.paragraphs]
            self.store.put_cable(cable, [e.vector if e else None for e in embedded], replaces=replaces,
                                 sentence_vectors=[e.spans if e else None for e in embedded])
            if replaces:
                self.report.cables_replaced += 1
            else:
                self.report.cables_added += 1
            self.report.paragraphs_added += len(cable.paragraphs)
            self.on_progress(len(cable.paragraphs), 1)
        self.pending.clear()

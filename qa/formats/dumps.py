"""Readers for files holding many cables: the Cablegate `cables.csv` dump and our own JSONL export."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from datetime import datetime

from qa.errors import ParseError
from qa.formats.telegram import PageMeta, parse_created, parse_telegram
from qa.records import Cable, Paragraph, distinct_labels

CSV_COLUMNS = 8  # id, created, reference id, origin, classification, references, header, body
MAX_CABLE_CHARS = 2_000_000  # one cable's text; the longest real cables are about 0.1 MB


def too_large(size: int, where: str) -> ParseError:
    """The error for a text too big to be one cable (parsing it would only make thousands of junk paragraphs)."""
    return ParseError(f"{where}: {size / 1e6:.1f} MB of text is too large for one cable (limit "
                      f"{MAX_CABLE_CHARS / 1e6:.0f} MB); split it into one cable per file, row or line")


def read_csv_dump(text: str, source: str | None) -> Iterator[Cable | ParseError]:
    """Yield a Cable per row of `cables.csv` (backslash-escaped quotes), or a ParseError for a bad row."""
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(io.StringIO(text), escapechar="\\", doublequote=False, strict=True)
    row_number = 0
    while True:
        row_number += 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield ParseError(f"{source}: row {row_number}: {error}; fix the quoting or remove the row")
            return
        if not row or (row_number == 1 and row[0].strip().lower() == "id"):
            continue
        if len(row) != CSV_COLUMNS:
            yield ParseError(f"{source}: row {row_number}: expected {CSV_COLUMNS} columns (id, created, reference id, "
                             f"origin, classification, references, header, body), found {len(row)}")
            continue
        _, created, ref_id, origin, classification, refs, header, body = row
        if len(header) + len(body) > MAX_CABLE_CHARS:
            yield too_large(len(header) + len(body), f"{source}: row {row_number}")
            continue
        meta = PageMeta(id=ref_id.strip() or None, created=parse_created(created), origin=origin.strip() or None,
                        classification=classification.strip() or None,
                        references=[r.strip() for r in refs.replace(";", ",").split(",") if r.strip()])
        try:
            yield parse_telegram(header + "\n" + body, meta, f"{source}#row{row_number}")
        except ParseError as error:
            yield error


def read_jsonl(text: str, source: str | None) -> Iterator[Cable | ParseError]:
    """Yield a Cable per line of a `cables export` file."""
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_CABLE_CHARS:
            yield too_large(len(line), f"{source}: line {line_number}")
            continue
        try:
            yield cable_from_json(json.loads(line), f"{source}#line{line_number}")
        except (ValueError, KeyError, TypeError) as error:
            yield ParseError(f"{source}: line {line_number}: not a cable record ({error}); "
                             "expected one JSON object per line as written by `cables export`")


def cable_from_json(data: dict, source: str | None) -> Cable:
    """Rebuild a Cable from its `to_json()` form."""
    created = data.get("created")
    return Cable(
        id=str(data["id"]),
        created=(parse_created(created) or datetime.fromisoformat(created)) if created else None,
        origin=data.get("origin"),
        classification=data.get("classification"),
        tags=tuple(data.get("tags") or ()),
        subject=data.get("subject"),
        references=tuple(data.get("references") or ()),
        signer=data.get("signer"),
        paragraphs=tuple(distinct_labels(Paragraph(str(p["label"]), p["text"], p.get("marking"), p.get("heading"))
                                         for p in data["paragraphs"])),  # exports of older stores repeat some
        source=data.get("source") or source,
    )

"""Format detection: every source shape of a cable goes through `read_cables`."""

from __future__ import annotations

import re
from collections.abc import Iterator

from qa.errors import ParseError
from qa.formats import dumps, pages
from qa.records import Cable

FORMATS = ("jsonl", "csv", "cablegate-html", "html", "key-value", "mirror", "telegram")


def detect_format(text: str, source: str | None = None) -> str:
    """Name the format of `text` from its content (the file name only breaks ties for CSV/JSONL)."""
    head = text[:4000]
    stripped = head.lstrip()
    name = (source or "").lower()
    if stripped.startswith("{") and '"paragraphs"' in text[:200000]:
        return "jsonl"
    if name.endswith(".csv") or re.match(r'^"?(id|\d+)"?,"?[^,]*"?,"?\d{2}[A-Z]', stripped):
        return "csv"
    if "<table class='cable'>" in text or '<table class="cable">' in text:
        return "cablegate-html"
    if re.search(r"<html|<body|<div|<p>|<pre>", head, re.IGNORECASE):
        return "html"
    if re.search(r"^\|?\s*Identifier\s*:", head, re.MULTILINE):
        return "key-value"
    if re.search(r"Cable title:|how-to read a cable", head):
        return "mirror"
    return "telegram"


def read_cables(text: str, source: str | None = None) -> Iterator[Cable | ParseError]:
    """Yield every cable in `text` (a ParseError in place of each unreadable one)."""
    fmt = detect_format(text, source)
    if fmt == "jsonl":
        yield from dumps.read_jsonl(text, source)
        return
    if fmt == "csv":
        yield from dumps.read_csv_dump(text, source)
        return
    if len(text) > dumps.MAX_CABLE_CHARS:
        yield dumps.too_large(len(text), str(source))
        return
    reader = {
        "cablegate-html": pages.read_cablegate_html,
        "html": pages.read_generic_html,
        "key-value": pages.read_key_value_page,
        "mirror": pages.read_mirror_page,
        "telegram": pages.read_markdown_telegram,
    }[fmt]
    try:
        yield reader(text, source)
    except ParseError as error:
        yield error

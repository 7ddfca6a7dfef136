"""Public parsing API: text or file in, `Cable` records out."""

from __future__ import annotations

from collections.abc import Iterator

from qa.errors import ParseError
from qa.formats import detect_format, read_cables
from qa.records import Cable, Paragraph

__all__ = ["Cable", "Paragraph", "detect_format", "parse_cable", "parse_cables"]


def parse_cable(text: str, source: str | None = None) -> Cable:
    """Parse one cable in any supported format; raises ParseError if there is not exactly one."""
    results = list(read_cables(text, source))
    errors = [r for r in results if isinstance(r, ParseError)]
    cables = [r for r in results if isinstance(r, Cable)]
    if errors and not cables:
        raise errors[0]
    if len(cables) != 1:
        raise ParseError(f"{source or 'text'}: expected one cable, found {len(cables)}; use parse_cables")
    return cables[0]


def parse_cables(text: str, source: str | None = None) -> Iterator[Cable | ParseError]:
    """Parse every cable in a text (CSV dumps and JSONL hold many)."""
    return read_cables(text, source)

"""Frozen records shared by every layer: a parsed cable, its paragraphs, search hits and answers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

REDACTION_MARK = "█"


def citation(cable_id: str, label: str) -> str:
    """The one place a citation key is made: "05ALMATY342 ¶3"."""
    return f"{cable_id} ¶{label}"


def repeated_label(label: str, occurrence: int) -> str:
    """The label of the n-th paragraph a cable gives the same number: "6", then "6 (2nd)", "6 (3rd)"."""
    if occurrence <= 1:
        return label
    suffix = "th" if 10 <= occurrence % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(occurrence % 10, "th")
    return f"{label} ({occurrence}{suffix})"


def printed_number(label: str) -> str:
    """The number as the cable prints it: "6" for both "6" and "6 (2nd)"."""
    return label.partition(" (")[0]


def unique_labels(labels: Iterable[str]) -> list[str]:
    """A cable's labels in order, a number given again made "6 (2nd)" (a drafter's slip: 5, 6, 6, 7), so a
    citation names one paragraph; the first keeps the plain number, as readers of the cable cite it."""
    seen: Counter[str] = Counter()
    out = []
    for label in labels:
        seen[label] += 1
        out.append(repeated_label(label, seen[label]))
    return out


def distinct_labels(paragraphs: Iterable[Paragraph]) -> list[Paragraph]:
    """The paragraphs with `unique_labels`."""
    paragraphs = list(paragraphs)
    return [p if label == p.label else replace(p, label=label)
            for p, label in zip(paragraphs, unique_labels(p.label for p in paragraphs), strict=True)]


@dataclass(frozen=True)
class Paragraph:
    """One paragraph as the cable numbers it: label "3" (unnumbered text "p1", "p2"…; a number the cable gives
    twice "3 (2nd)", so labels are unique in a cable), marking "SBU", clean text, section heading."""

    label: str
    text: str
    marking: str | None = None
    heading: str | None = None


@dataclass(frozen=True)
class Cable:
    """A parsed cable: metadata plus numbered paragraphs, whatever format it came from."""

    id: str
    created: datetime | None = None
    origin: str | None = None
    classification: str | None = None
    tags: tuple[str, ...] = ()
    subject: str | None = None
    references: tuple[str, ...] = ()
    signer: str | None = None
    paragraphs: tuple[Paragraph, ...] = ()
    source: str | None = None

    @property
    def year(self) -> int | None:
        return self.created.year if self.created else None

    def completeness(self) -> int:
        """How complete this copy is; the more complete of two copies of one cable is kept."""
        filled = sum(
            1
            for value in (self.created, self.origin, self.classification, self.subject, self.signer)
            if value
        )
        text_chars = sum(len(p.text) for p in self.paragraphs)
        return text_chars + 200 * len(self.paragraphs) + 500 * filled + 100 * len(self.tags)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (the `cables export` format, read back by the JSONL reader)."""
        data = asdict(self)
        data["created"] = self.created.isoformat(sep=" ") if self.created else None
        data["tags"] = list(self.tags)
        data["references"] = list(self.references)
        return data


@dataclass(frozen=True)
class Hit:
    """One retrieved paragraph with the metadata needed to cite and show it."""

    cable_id: str
    paragraph: str
    position: int
    citation: str
    score: float
    text: str
    subject: str | None
    created: str | None
    origin: str | None
    classification: str | None
    source: str | None
    paragraph_id: int = field(default=0, compare=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("paragraph_id")
        return data


@dataclass(frozen=True)
class Statement:
    """One sentence of an answer and the paragraph it comes from."""

    text: str
    citation: str


@dataclass(frozen=True)
class Answer:
    """An extractive answer: statements each citing a retrieved paragraph, plus those paragraphs."""

    question: str
    answered: bool
    statements: tuple[Statement, ...]
    hits: tuple[Hit, ...]
    message: str = ""

    def to_markdown(self) -> str:
        if not self.answered:
            return self.message
        return " ".join(f"{s.text} [{s.citation}]" for s in self.statements)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answered": self.answered,
            "message": self.message,
            "answer": self.to_markdown(),
            "statements": [asdict(s) for s in self.statements],
            "citations": [h.to_json() for h in self.hits],
        }

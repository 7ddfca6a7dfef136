"""Metadata filters (post, year, date range, tag, classification), applied inside the search as SQL."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from qa.errors import QueryError

FILTER_KEYS = ("origin", "year", "from", "to", "tag", "classification")


@dataclass(frozen=True)
class Filters:
    """All optional; text filters match case-insensitively as substrings ('madrid' matches 'Embassy Madrid')."""

    origin: str | None = None
    year: int | None = None
    date_from: str | None = None
    date_to: str | None = None
    tag: str | None = None
    classification: str | None = None

    @property
    def empty(self) -> bool:
        return not any(asdict(self).values())

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Filters:
        """Build from the JSON form used by --batch and the eval files: origin, year, from, to, tag, classification."""
        data = dict(data or {})
        unknown = set(data) - set(FILTER_KEYS) - {"date_from", "date_to"}
        if unknown:
            raise QueryError(f"unknown filter {sorted(unknown)[0]!r}; use one of {', '.join(FILTER_KEYS)}")
        return cls.make(origin=data.get("origin"), year=data.get("year"),
                        date_from=data.get("from", data.get("date_from")), date_to=data.get("to", data.get("date_to")),
                        tag=data.get("tag"), classification=data.get("classification"))

    @classmethod
    def make(cls, origin: str | None = None, year: int | str | None = None, date_from: str | None = None,
             date_to: str | None = None, tag: str | None = None, classification: str | None = None) -> Filters:
        """Validate user input: dates must be YYYY-MM-DD, a year a number."""
        if year not in (None, ""):
            try:
                year = int(year)
            except (TypeError, ValueError) as error:
                raise QueryError(f"filter year: {year!r} is not a year; use e.g. 2009") from error
        date_from, date_to = _iso_date("from", date_from), _iso_date("to", date_to)
        given = {"origin": origin, "date_from": date_from, "date_to": date_to, "tag": tag,
                 "classification": classification}
        clean = {k: (v.strip() or None) if isinstance(v, str) else v for k, v in given.items()}
        return cls(year=year or None, **clean)

    def sql(self) -> tuple[str, list[Any]]:
        """A WHERE clause over `cables c` (and its parameters) selecting the matching cables."""
        clauses, params = ["1=1"], []
        if self.origin:
            clauses.append("c.origin LIKE ? ESCAPE '\\'")
            params.append(f"%{_like(self.origin)}%")
        if self.year:
            clauses.append("c.year = ?")
            params.append(self.year)
        if self.date_from:
            clauses.append("c.created >= ?")
            params.append(str(self.date_from))
        if self.date_to:
            clauses.append("c.created < date(?, '+1 day')")
            params.append(str(self.date_to))
        if self.tag:
            clauses.append("(' ' || upper(c.tags) || ' ') LIKE ? ESCAPE '\\'")
            params.append(f"% {_like(self.tag.upper())} %")
        if self.classification:
            clauses.append("c.classification LIKE ? ESCAPE '\\'")
            params.append(f"%{_like(self.classification)}%")
        return " AND ".join(clauses), params

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.to_dict().items()]
        return ", ".join(parts) if parts else "none"

    def to_dict(self) -> dict[str, Any]:
        data = {"origin": self.origin, "year": self.year, "from": self.date_from, "to": self.date_to,
                "tag": self.tag, "classification": self.classification}
        return {k: v for k, v in data.items() if v not in (None, "")}


def _iso_date(name: str, value):
    """A date filter written YYYY-MM-DD: SQL compares it with the stored dates as text, so '20080101' (which
    `date.fromisoformat` also reads) becomes '2008-01-01'; anything else that is not a date is an error."""
    if not value or (isinstance(value, str) and not value.strip()):
        return value
    try:
        return date.fromisoformat(str(value).strip()).isoformat()
    except ValueError as error:
        raise QueryError(f"filter {name}: {value!r} is not a date; use YYYY-MM-DD") from error


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

"""Retrieval evaluation: Recall@1/5/10 and MRR@10 on a JSONL question file, overall and per question type."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import QueryError
from qa.filters import Filters
from qa.records import Hit

CUTOFFS = (1, 5, 10)


@dataclass(frozen=True)
class Question:
    qid: str
    question: str
    cable_id: str
    para: str
    answer_span: str
    type: str
    filters: Filters


@dataclass
class EvalResult:
    """Per-question first-correct ranks and the metrics made from them."""

    k: int
    ranks: dict[str, int | None] = field(default_factory=dict)  # qid -> 1-based rank of first hit, None if missed
    types: dict[str, str] = field(default_factory=dict)

    def metrics(self, qids: list[str] | None = None) -> dict[str, float]:
        qids = list(self.ranks) if qids is None else qids
        n = max(len(qids), 1)
        out = {f"R@{c}": sum(1 for q in qids if self.ranks[q] and self.ranks[q] <= c) / n for c in CUTOFFS}
        out["MRR@10"] = sum(1 / self.ranks[q] for q in qids if self.ranks[q] and self.ranks[q] <= 10) / n
        out["n"] = len(qids)
        return out

    def by_type(self) -> dict[str, dict[str, float]]:
        groups: dict[str, list[str]] = defaultdict(list)
        for qid, kind in self.types.items():
            groups[kind].append(qid)
        return {kind: self.metrics(qids) for kind, qids in sorted(groups.items())}

    def to_json(self) -> dict:
        return {"overall": self.metrics(), "by_type": self.by_type(),
                "misses": sorted(q for q, r in self.ranks.items() if not r or r > 5)}


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def is_hit(hit: Hit, question: Question) -> bool:
    """A returned paragraph is correct if it contains the answer span or is the named paragraph."""
    if hit.cable_id == question.cable_id and hit.paragraph == question.para:
        return True
    return bool(question.answer_span) and normalise(question.answer_span) in normalise(hit.text)


def load_questions(path: str | Path) -> list[Question]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise QueryError(f"{path}: cannot read the question file ({error.strerror})") from error
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            questions.append(Question(str(data["qid"]), data["question"], data["cable_id"], str(data["para"]),
                                      data.get("answer_span", ""), data.get("type", "other"),
                                      Filters.from_dict(data.get("filters"))))
        except (ValueError, KeyError, TypeError) as error:
            raise QueryError(f"{path}: line {number}: not a question record ({error})") from error
    return questions


def evaluate(library, questions: list[Question], k: int = 10, mode: str = "hybrid") -> EvalResult:
    result = EvalResult(k=k)
    searcher = library.searcher()
    for q in questions:
        hits = searcher.search(q.question, k=max(k, 10), filters=q.filters, mode=mode)
        rank = next((i for i, h in enumerate(hits, start=1) if is_hit(h, q)), None)
        result.ranks[q.qid] = rank
        result.types[q.qid] = q.type
    return result


def format_table(results: dict[str, EvalResult]) -> str:
    """A Markdown table: one row per question type (and overall), one column group per mode."""
    modes = list(results)
    first = results[modes[0]]
    header = "| questions | n | " + " | ".join(f"{m} R@1 | {m} R@5 | {m} R@10 | {m} MRR@10" for m in modes) + " |"
    rule = "|---|---|" + "---|" * (4 * len(modes))
    rows = []
    groups = [("all", None)] + [(kind, [q for q, t in first.types.items() if t == kind])
                                for kind in sorted(set(first.types.values()))]
    for name, qids in groups:
        cells = []
        for m in modes:
            metrics = results[m].metrics(qids)
            cells += [f"{metrics['R@1']:.2f}", f"{metrics['R@5']:.2f}", f"{metrics['R@10']:.2f}",
                      f"{metrics['MRR@10']:.2f}"]
        n = len(qids) if qids is not None else len(first.ranks)
        rows.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return "\n".join([header, rule, *rows])

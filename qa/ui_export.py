"""Export of a web-UI conversation as Markdown: each question, its answer with inline citations, and the cited
paragraphs quoted in full, so the file stands on its own in a newsroom's notes."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from qa.records import Answer


@dataclass(frozen=True)
class Turn:
    """One question of the conversation: the answer (None when it failed) or the message shown instead."""

    question: str
    answer: Answer | None
    message: str = ""
    filters: str = "none"


def conversation_markdown(turns: Sequence[Turn], now: datetime | None = None) -> str:
    """The whole conversation as Markdown (cable text is quoted as is: the file is the user's, not a web page)."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# cables-qa conversation ({stamp})", ""]
    if not turns:
        lines.append("_No questions asked yet._")
    for number, turn in enumerate(turns, start=1):
        lines += [f"## {number}. {turn.question}", ""]
        if turn.filters and turn.filters != "none":
            lines += [f"Filters: {turn.filters}", ""]
        answer = turn.answer
        if answer is None or not answer.answered:
            lines += [(answer.message if answer else turn.message) or "(no answer)", ""]
            continue
        lines += [" ".join(f"{s.text} [{s.citation}]" for s in answer.statements), "", "Sources:", ""]
        for index, hit in enumerate(answer.hits, start=1):
            meta = " · ".join(x for x in (hit.subject, hit.origin, (hit.created or "")[:10], hit.classification) if x)
            lines.append(f"{index}. **{hit.citation}** — {meta}")
            lines += ["", *(f"   > {line}" if line else "   >" for line in hit.text.splitlines()), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_export(turns: Sequence[Turn], folder: Path | None = None) -> Path:
    """Write the conversation to a fresh Markdown file (in a private temp folder) and return its path."""
    target = Path(tempfile.mkdtemp(prefix="cables-export-", dir=folder)) / "cables-qa-conversation.md"
    target.write_text(conversation_markdown(turns), encoding="utf-8")
    return target

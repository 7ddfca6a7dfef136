"""Mending what copying did to cable text: hard wraps, split words, spaced-out capitals, one-line bodies."""

from __future__ import annotations

import re
from collections import Counter

from qa.records import REDACTION_MARK

SPACED_CAPS_RE = re.compile(r"\b(?:[A-Z] ){3,}[A-Z]\b")
REDACTION_RE = re.compile(r"X{4,}(?:\s*X{4,})*|(?<![A-Za-wyz])x{4,}(?![A-Za-wyz])")
BULLET_RE = re.compile(r"^(?:--|-\s|\*\s|•|[a-zA-Z][.)]\s|\([a-zA-Z0-9]{1,3}\)\s|[ivx]{1,4}[.)]\s)")
INLINE_BREAKS = [
    # header keywords that start a new line when a whole cable was pasted on one line
    r"(?<=\S)\s+(?=SIPDIS\b)",
    r"(?<=\S)\s+(?=E\.\s?O\.\s*1\d{4})",
    r"(?<=\S)\s+(?=TAGS:)",
    r"(?<=\S)\s+(?=SUBJECT:)",
    r"(?<=\S)\s+(?=REF(?:S)?:)",
    r"(?<=\S)\s+(?=Classified By:)",
    r"(?<=[A-Z)])\s+(?=SENSITIVE\s)",
    r"\s+(?=-{3,})",
    r"(?<=-{3})\s+",
    r"(?<=[.!?\"])\s+(?=[A-Z][A-Z'-]{2,}\s+NNNN\s*$)",  # "... considered. ORDWAY NNNN": the signer
    r"\s+(?=NNNN\s*$)",
]


def normalise(text: str) -> str:
    """Unify line ends and spaces, collapse 'C O N F I D E N T I A L', mark redaction runs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ").replace("\u00a0", " ")
    text = text.replace("\ufeff", "").replace("\u200b", "")
    text = SPACED_CAPS_RE.sub(lambda m: m.group(0).replace(" ", ""), text)
    text = REDACTION_RE.sub(f" {REDACTION_MARK} ", text)
    lines = [re.sub(r" {2,}", " ", line).rstrip() for line in text.split("\n")]
    return "\n".join(lines)


def split_inline(text: str) -> str:
    """Re-break a cable pasted on one line: header keywords and '2. (SBU)' markers start new lines."""
    for pattern in INLINE_BREAKS:
        text = re.sub(pattern, "\n", text)
    out: list[str] = []
    expected = None
    pos = 0
    for m in re.finditer(r"(?:(?<=\s)|^)(¶?)(\d{1,3})\.\s+(?=\([A-Z/]{1,9}\)|[A-Z])", text):
        number = int(m.group(2))
        has_marking = text[m.end():m.end() + 1] == "("
        if m.group(1) or (expected is None and has_marking) or number == expected:
            out.append(text[pos:m.start()].rstrip())
            pos = m.start()
            expected = number + 1
    out.append(text[pos:])
    text = "\n".join(part for part in out if part)
    return split_glued_headings(text)


def split_glued_headings(text: str) -> str:
    """'...END SUMMARY. BACKGROUND AND TIMELINE' before a dashes line: move the title to its own line."""
    lines = text.split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if re.match(r"^\s*-{3,}\s*$", nxt) and len(line) > 90:
            head, tail = split_trailing_title(line)
            out.extend([head, "", tail] if head else [line])
        else:
            out.append(line)
    return "\n".join(out)


def split_trailing_title(line: str) -> tuple[str, str]:
    """Split 'text ends here. Section Title' into the text and the title (or ('', line) if none)."""
    m = re.search(r"^(.*[.!?:\"”)])\s+([A-Z][^.!?]{2,80})$", line)
    if not m or len(m.group(2).split()) > 10:
        return "", line
    return m.group(1), m.group(2)


def vocabulary(lines: list[str]) -> Counter[str]:
    """Lower-cased word counts of a cable, used to tell a word split across lines from two real words."""
    return Counter(w.lower() for line in lines for w in re.findall(r"[A-Za-z]+", line))


def join_lines(lines: list[str], words: Counter[str]) -> str:
    """Join hard-wrapped lines into paragraph text; list items keep their own line."""
    text = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if not text:
            text = line
        elif BULLET_RE.match(line):
            text += "\n" + line
        elif text.endswith("-") and not text.endswith(" -") and line[:1].isalpha():
            text += line  # "well-\nknown"
        elif _split_word(text, line, words):
            text += line
        else:
            text += " " + line
    text = re.sub(r"[ \t]{2,}", " ", text)
    return re.sub(rf"\s*{REDACTION_MARK}\s*", f" {REDACTION_MARK} ", text).strip()


def _split_word(text: str, line: str, words: Counter[str]) -> bool:
    """'elec' + 'tion' -> 'election' when the joined word occurs elsewhere and neither fragment does."""
    left = re.search(r"([A-Za-z]+)$", text[-100:])  # the tail only: searching all of `text` is quadratic
    right = re.match(r"([a-z]+)", line)
    if not left or not right:
        return False
    a, b = left.group(1).lower(), right.group(1)
    joined = a + b
    return words[joined] > 0 and words[a] <= 1 and words[b] <= 1

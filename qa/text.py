"""Small text helpers shared by retrieval and answers: query words, sentences, cable ids named in a query."""

from __future__ import annotations

import re
import unicodedata

from qa.records import REDACTION_MARK

MAX_QUERY_CHARS = 2000
_STOPWORD_TEXT = """
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has
have having he her here hers him his how i if in into is it its itself just me more most my no nor
not now of off on once only or other our out over own same she should so some such than that the
their them then there these they this those through to too under until up very was we were what when
where which while who whom why will with would you your tell told say said says report reported
reports cable cables embassy embassies according did does think know gist summary summarise
summarize main point points describe explain anything much many
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
CABLE_ID_RE = re.compile(r"\b(\d{2})\s?([A-Z][A-Z]{2,}(?:\s[A-Z]{3,})?)\s?0*(\d{1,6})\b")
POST_NUMBER_RE = re.compile(r"\b([A-Z][A-Za-z]{2,}(?:\s[A-Z][A-Za-z]{2,})?)\s+0*(\d{2,6})\b")
SENTENCE_RE = re.compile(  # a sentence end (maybe inside quotes), not after an initial like "S."
    r"(?<![\s.][A-Z]\.)(?:(?<=[.!?])|(?<=[.!?][\"”')]))\s+(?=[\"“(]?[A-Z0-9])")
ABBREVIATIONS = ("U.S.", "U.N.", "Mr.", "Ms.", "Mrs.", "Dr.", "St.", "No.", "Gen.", "Lt.", "Col.", "Amb.", "Jan.",
                 "Feb.", "Aug.", "Sept.", "Oct.", "Nov.", "Dec.", "i.e.", "e.g.", "para.", "Ref.", "approx.", "Sen.",
                 "Rep.", "Gov.", "Maj.", "Capt.", "Adm.", "Co.", "Inc.", "Ltd.", "Jr.", "vs.")


def clean_query(query: str) -> str:
    """Drop control characters and collapse whitespace; cap the length a question may have."""
    query = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in query)
    return re.sub(r"\s+", " ", query).strip()[:MAX_QUERY_CHARS]


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+(?:'[a-z]+)?", text)


def content_words(text: str) -> list[str]:
    """Lower-cased words that carry meaning (no stopwords), in order, without repeats."""
    seen: dict[str, None] = {}
    for word in words(text):
        low = word.lower().removesuffix("'s")
        if low not in STOPWORDS and (len(low) > 1 or low.isdigit()):
            seen.setdefault(low, None)
    return list(seen)


def fts_query(terms: list[str]) -> str:
    """An FTS5 MATCH expression: each term quoted (no FTS syntax from users gets through), OR-ed."""
    safe = [re.sub(r"[^A-Za-z0-9]", "", t) for t in terms]
    return " OR ".join(f'"{t}"' for t in safe if t)


def cable_ids_in(query: str) -> list[str]:
    """Cable ids a query names: '05ALMATY342', '05 ALMATY 342', 'PARIS 8729' (as 'PARIS8729')."""
    found = [f"{y}{post.replace(' ', '')}{int(n)}" for y, post, n in CABLE_ID_RE.findall(query)]
    for post, number in POST_NUMBER_RE.findall(query):
        if post.isupper() or post.istitle():
            found.append(f"{post.replace(' ', '').upper()}{int(number)}")
    return list(dict.fromkeys(found))


def sentences(text: str) -> list[str]:
    """Split paragraph text into sentences, keeping common abbreviations ('U.S.', 'Mr.') intact."""
    protected = text
    for i, abbreviation in enumerate(ABBREVIATIONS):
        protected = protected.replace(abbreviation, abbreviation.replace(".", f"\x00{i}\x00"))
    parts = []
    for line in protected.split("\n"):
        parts += SENTENCE_RE.split(line)
    out = []
    for part in parts:
        for i, abbreviation in enumerate(ABBREVIATIONS):
            part = part.replace(abbreviation.replace(".", f"\x00{i}\x00"), abbreviation)
        part = part.strip()
        if part and part.strip(REDACTION_MARK + " "):
            out.append(part)
    return out

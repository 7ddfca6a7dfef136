"""The telegram itself: routing, header fields and numbered paragraphs, whatever page it was copied from.

Every format reader hands this module the cable text (plus metadata its page already gave) and gets a
`Cable` back, so the hard part — telling header lines from paragraphs and repairing copy damage — lives
in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from qa.errors import ParseError
from qa.formats import repair
from qa.records import Cable, Paragraph, distinct_labels

MONTHS = {m: i for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)}

DTG_RE = re.compile(r"^(?:[A-Z]{1,2}\s+)?(\d{2})(\d{2})(\d{2})Z\s+([A-Z]{3})\s+(\d{2}|\d{4})$")
FROM_RE = re.compile(r"^FM\s+(.+?)\s*$")
CLASS_LINE_RE = re.compile(
    r"^(UNCLAS(?:SIFIED)?|LIMITED OFFICIAL USE|CONFIDENTIAL|SECRET|TOP SECRET)"
    r"(?:\s*//\s*[A-Z ]+?)?(?:\s+E\s?F\s?T\s?O)?(?:\s+SECTIONS?\s+\d+\s+OF\s+\d+)?"
    r"\s+([A-Z][A-Z.' -]*?)\s+0*(\d{1,7})\b\s*(.*)$"
)
PARA_RE = re.compile(r"^(¶\s*)?(\d{1,3})\s*[.)]\s*(?:\(([A-Z]{1,4}(?:\s*/{1,2}\s*[A-Z]{1,4})*)\)\s*)?(.*)$")
FIELD_RE = re.compile(
    r"^(?:\(\w{1,4}\)\s*)?(E\.?\s?O\.?\s*12958|E\.?\s?O\.?\s*13526|TAGS|SUBJ(?:ECT)?|REFS?|REFERENCES?|"
    r"CLAS+I?FI?ED\s+BY|DERIVED\s+FROM|DECLASSIFY\s+ON)\b\s*:?\s*(.*)$",  # "Classfied By:" is written too
    re.IGNORECASE,
)
REF_ITEM_LINE_RE = re.compile(r"^(?:¶\s*)?[A-Z][.)]\s+\S")
REF_CABLE_RE = re.compile(
    r"\b(?:(\d{2})\s*)?([A-Z][A-Za-z]+(?:\s[A-Z][A-Za-z]+){0,2})\s+0*(\d{2,7})\b(?!\s+[A-Z][A-Za-z]+\s+\d)")
DASHES_RE = re.compile(r"^\s*(?:[-=_]\s*){3,}$")  # "-------" and "- - - -"
DECORATED_HEADING_RE = re.compile(r"^[-=_]{3,}\s*([A-Z][^-=_]{0,60}?)\s*[-=_]{3,}$")  # "------- Summary -------"
FIGURE_RE = re.compile(r"^\(?[\d,.%*]*\d[\d,.%*]*\)?$")  # 708, (2.9), 15%, 1,855*
YEAR_RE = re.compile(r"^(?:19|20)\d\d\W*$")
PAGE_MARK_RE = re.compile(
    r"^(?:[A-Z][A-Za-z .'-]{1,30}\s+0*\d{3,8}\s+\d{3}(?:\.\d)?\s+OF\s+\d{3}"  # KABUL 00004150 002 OF 003
    r"|PAGE\s+\d{2,3}\s+(?:RUE[A-Z]{3,4}\d+\s+)?[A-Z][A-Z .]{1,40}?\s+0*\d{3,7})$",  # PAGE 02 STATE 050524
    re.IGNORECASE)
CLASSIFIED_BY_RE = re.compile(r"\bCLAS+I?FI?ED\s+BY\b", re.IGNORECASE)
SIGNER_RE = re.compile(r"^[A-Z][A-Za-z'.-]+(?:\s[A-Z][A-Za-z'.-]+){0,2}$")
SENTENCE_END = tuple('.!?:;"\')”’')
ROUTING_WORDS = {"SIPDIS", "SENSITIVE", "NOFORN", "EXDIS", "NODIS", "LIMDIS", "CORRECTED COPY", "BT",
                 "NNNN", "END", "EXCLUSIVE DISTRIBUTION", "STADIS", "PASS"}
NOT_SIGNERS = ROUTING_WORDS | {"UNCLASSIFIED", "CONFIDENTIAL", "SECRET", "END SUMMARY", "END COMMENT", "END NOTE"}
NOT_POSTS = {"REF", "REFS", "AND", "PARA", "PARAS", "DATED", "OF", "PREVIOUS", "SEPTEL", "REFTEL"}
POSTING_KINDS = {"AMEMBASSY": "Embassy", "AMCONSUL": "Consulate", "USMISSION": "Mission",
                 "AMCONSULATE": "Consulate", "USOFFICE": "US Office", "USDEL": "US Delegation"}


@dataclass
class PageMeta:
    """Metadata a page wrapper already states; it wins over what the telegram text implies."""

    id: str | None = None
    created: datetime | None = None
    origin: str | None = None
    classification: str | None = None
    tags: list[str] = field(default_factory=list)
    subject: str | None = None
    title: str | None = None
    references: list[str] = field(default_factory=list)


@dataclass
class _Header:
    created: datetime | None = None
    origin: str | None = None
    classification: str | None = None
    post: str | None = None
    number: str | None = None
    tags: list[str] = field(default_factory=list)
    subject: str = ""
    references: list[str] = field(default_factory=list)
    sensitive: bool = False
    noforn: bool = False


def parse_telegram(text: str, meta: PageMeta, source: str | None) -> Cable:
    """Turn one cable's text into a `Cable`; `meta` is what the surrounding page said."""
    text = repair.normalise(text)
    lines = text.split("\n")
    if len(lines) < 8 and max((len(x) for x in lines), default=0) > 600:
        text = repair.split_inline(" ".join(lines))
    lines = repair.split_glued_headings(text).split("\n")
    header = _Header()
    body_start = _read_header(lines, header)
    body_lines = lines[body_start:]
    signer = _pop_signer(body_lines)
    paragraphs = _read_paragraphs(body_lines)
    cable_id = meta.id or _make_id(header, meta.created or header.created)
    if not cable_id:
        raise ParseError(f"{source or 'text'}: no cable identifier found (no 'Identifier:' line and no "
                         "classification line such as 'CONFIDENTIAL PARIS 001234'); is this a cable?")
    return Cable(
        id=cable_id,
        created=meta.created or header.created,
        origin=meta.origin or header.origin or (header.post.title() if header.post else None),
        classification=meta.classification or _classification(header),
        tags=tuple(meta.tags or header.tags),
        subject=_clean_subject(header.subject) or meta.subject or meta.title,
        references=_merge_references(meta.references + header.references),
        signer=signer,
        paragraphs=tuple(paragraphs),
        source=source,
    )


def parse_created(value: str) -> datetime | None:
    """Read the dates the copies use: '2005-01-31 08:10:00', '2005-01-31 08:10', '12/28/1966 18:48'."""
    value = value.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d",
                "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%A, %d %B %Y, %H:%M"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def _make_id(header: _Header, created: datetime | None) -> str | None:
    if not (header.post and header.number):
        return None
    post = header.post.replace(" ", "").replace(".", "").replace("'", "")
    year = f"{created.year % 100:02d}" if created else ""
    return f"{year}{post}{int(header.number)}"


def _classification(header: _Header) -> str | None:
    level = header.classification
    if not level:
        return None
    if level == "UNCLAS":
        level = "UNCLASSIFIED"
    if header.sensitive and level == "UNCLASSIFIED":
        return "UNCLASSIFIED (SENSITIVE)"
    if header.noforn:
        return f"{level}//NOFORN"
    return level


def _clean_subject(subject: str) -> str | None:
    subject = re.sub(r"\s+", " ", subject).strip(" -")
    return subject or None


def _read_header(lines: list[str], header: _Header) -> int:
    """Consume routing and header lines; return the index where the body (paragraphs) starts."""
    block: str | None = None  # the multi-line field being continued: "subject", "ref", "classified"
    seen_field = False
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            if block in ("ref", "classified"):
                block = None
            continue
        if PARA_RE.match(line) and _is_paragraph_start(line, seen_field or header.classification is not None):
            return i
        if PAGE_MARK_RE.match(line):
            continue  # "PRETORIA 00000939 001.2 OF 003" between a subject's lines
        if DTG_RE.match(line) and header.created is None:
            day, hour, minute, mon, year = DTG_RE.match(line).groups()
            header.created = _dtg(day, hour, minute, mon, year)
            continue
        if m := FROM_RE.match(line):
            header.origin = _origin_from_fm(m.group(1))
            continue
        if (m := CLASS_LINE_RE.match(line)) and header.number is None:
            header.classification, header.post, header.number = m.group(1), m.group(2).strip(), m.group(3)
            rest = m.group(4)
            header.sensitive |= "SENSITIVE" in rest
            header.noforn |= "NOFORN" in rest
            continue
        if m := FIELD_RE.match(line):
            name, value = m.group(1).upper().replace(" ", ""), m.group(2)
            seen_field = True
            if name == "TAGS":
                header.tags = _tags(value)
                block = None
            elif name.startswith("SUBJ"):
                header.subject, block = value, "subject"
            elif name.startswith("REF"):
                header.references += _references(value)
                # "REF: LJUBLJANA 20 Classified By: DCM ... for reasons" goes on with the reasons, not references
                block = "classified" if CLASSIFIED_BY_RE.search(value) else "ref"
            elif name.startswith(("CLAS", "DERIVED", "DECLASSIFY")):
                block = "classified"
            else:
                block = None
            continue
        if line in ("SENSITIVE", "SENSITIVE SIPDIS") or line.startswith("SENSITIVE BUT"):
            header.sensitive = True
            continue
        if "NOFORN" in line and len(line) < 40:
            header.noforn = True
            continue
        if block == "subject" and _continues_subject(lines, i):
            header.subject += " " + line
            continue
        if (block == "ref" and re.search(r"\d{2,}", line) and len(line) < 120) or (
                REF_ITEM_LINE_RE.match(line) and seen_field):
            header.references += _references(line)
            block = "ref"
            continue
        if block == "classified":
            continue
        block = None
        if seen_field and re.search(r"[a-z]{3}", line) and not _is_routing(line):
            return i  # unnumbered body text
    return len(lines)


def _continues_subject(lines: list[str], i: int) -> bool:
    """A wrapped subject's next line: in capitals, or short and written straight after it (no blank line)."""
    line = lines[i].strip()
    if REF_ITEM_LINE_RE.match(line) or line.startswith(("-", "=", "_")):
        return False
    return not re.search(r"[a-z]", line) or (bool(lines[i - 1].strip()) and len(line) <= 60)


def _is_routing(line: str) -> bool:
    return line.upper() == line or line.split()[0].upper() in ("DEPARTMENT", "STATE", "FOR", "PASS")


def _is_paragraph_start(line: str, in_body_context: bool) -> bool:
    m = PARA_RE.match(line)
    if not m:
        return False
    pilcrow, _number, marking, rest = m.groups()
    return bool(pilcrow or marking or (in_body_context and rest[:1].isupper()))


def _dtg(day: str, hour: str, minute: str, mon: str, year: str) -> datetime | None:
    try:
        full_year = int(year) if len(year) == 4 else (1900 + int(year) if int(year) > 60 else 2000 + int(year))
        return datetime(full_year, MONTHS[mon], int(day), int(hour), int(minute))
    except (KeyError, ValueError):
        return None


def _origin_from_fm(value: str) -> str:
    words = value.split()
    kind = POSTING_KINDS.get(words[0].upper()) if words else None
    place = " ".join(words[1:] if kind else words).title()
    if value.upper().startswith("SECSTATE"):
        return "Secretary of State"
    return f"{kind} {place}" if kind else place


def _tags(value: str) -> list[str]:
    tokens = re.split(r"[,\s]+", value.strip())
    return [t for t in tokens if re.fullmatch(r"[A-Z][A-Z0-9]{1,12}", t)]


def _references(value: str) -> list[str]:
    refs = []
    for year, post, number in REF_CABLE_RE.findall(value):
        post = post.upper()
        if post in NOT_POSTS or len(post) < 3:
            continue
        post = re.sub(r"^(?:REF|AND|OF)\s+", "", post).replace(" ", "")
        refs.append(f"{year}{post}{int(number)}")
    return refs


def _merge_references(refs: list[str]) -> tuple[str, ...]:
    """Unique references; 'ANKARA1074' is dropped when '05ANKARA1074' is also there."""
    unique = list(dict.fromkeys(r for r in refs if r))
    with_year = {re.sub(r"^\d{2}", "", r) for r in unique if r[:2].isdigit()}
    return tuple(r for r in unique if r[:2].isdigit() or r not in with_year)


def _pop_signer(body_lines: list[str]) -> str | None:
    """Remove and return the signer line after the last paragraph ("ORDWAY"), if there is one."""
    while body_lines and (not body_lines[-1].strip() or body_lines[-1].strip() in ("NNNN", "BT")):
        body_lines.pop()
    if not body_lines:
        return None
    last = re.sub(r"^.*\b(?:END TEXT|UNQUOTE|MINIMIZE CONSIDERED)\.?\s+", "", body_lines[-1].strip(), flags=re.I)
    glued = re.match(r"^(.*[.!?\"”')])\s+([A-Z][A-Za-z'-]{2,})$", last)
    if glued and glued.group(2).upper() not in NOT_SIGNERS:  # "... inside Burma. Martinez"
        body_lines[-1] = glued.group(1)
        return glued.group(2).upper()
    looks_like_name = SIGNER_RE.match(last) and last.upper() not in NOT_SIGNERS and len(last) <= 40
    alone = last.isupper() or len(last.split()) == 1 or (len(body_lines) > 1 and not body_lines[-2].strip())
    if looks_like_name and alone and not PARA_RE.match(last):
        body_lines.pop()
        return last.upper()
    return None


@dataclass
class _Draft:
    label: str
    marking: str | None
    heading: str | None
    lines: list[str]
    first: str = ""  # the numbered line as written (without a pilcrow), for folding a false number back in


def _read_paragraphs(lines: list[str]) -> list[Paragraph]:
    """Group body lines into paragraphs; blank lines and page breaks inside a paragraph are mended."""
    drafts: list[_Draft] = []
    heading: str | None = None
    unnumbered = 0
    last_number: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line or DASHES_RE.match(line) or line in ROUTING_WORDS or PAGE_MARK_RE.match(line):
            i += 1  # page furniture: rules, routing words, "KABUL 00004150 002 OF 003"
            continue
        m = PARA_RE.match(line)
        if m and _accept_number(m, last_number):
            _pilcrow, number, marking, rest = m.groups()
            last_number = int(number)
            drafts.append(_Draft(number, marking.replace(" ", "") if marking else None, heading, [rest],
                                 line.lstrip("¶ ")))
            heading = None
            i += 1
            continue
        title = line.strip("-= ") if _is_heading(lines, i) else None
        if title is None and (decorated := DECORATED_HEADING_RE.match(line)):
            title = decorated.group(1).strip()
        if title is None and heading is not None and _titled(line) and _underlined(lines, i):
            title = line.strip("-= ")  # "Revisions to the Embassy Rules For / the Use of Force / -----"
        if title is not None:  # a heading wrapped over two lines is one heading
            heading = f"{heading} {title}" if heading else title
            i += 1
            continue
        if drafts and not _starts_new_block(lines, i, drafts[-1]):
            drafts[-1].lines.append(line)
        else:
            unnumbered += 1
            marking = re.match(r"^\(([A-Z]{1,4}(?:/{1,2}[A-Z]{1,4})*)\)\s*", line)
            if marking:
                line = line[marking.end():]
            drafts.append(_Draft(f"p{unnumbered}", marking.group(1) if marking else None, heading, [line]))
            heading = None
        i += 1
    vocabulary = repair.vocabulary(lines)
    paragraphs = []
    for draft in _fold_false_numbers(drafts):
        text = repair.join_lines(draft.lines, vocabulary)
        if text:
            paragraphs.append(Paragraph(draft.label, text, draft.marking, draft.heading))
    return distinct_labels(paragraphs)


def _fold_false_numbers(drafts: list[_Draft]) -> list[_Draft]:
    """Put back a number that only looked like a paragraph start: "... began on October / 5.  FDP strategist".

    Pages that mark paragraphs (Cablegate's ¶ anchors) mark these too. A number out of sequence, without a
    classification marking or a heading, between two paragraphs that are in sequence (2, 5, 3) is the previous
    paragraph's text: its line goes back there and the numbering reads 2, 3.
    """
    kept: list[_Draft] = []
    for position, draft in enumerate(drafts):
        following = drafts[position + 1] if position + 1 < len(drafts) else None
        if kept and following and _is_false_number(kept[-1], draft, following):
            kept[-1].lines += [draft.first, *draft.lines[1:]]
        else:
            kept.append(draft)
    return kept


def _is_false_number(previous: _Draft, draft: _Draft, following: _Draft) -> bool:
    """An unmarked, unheaded number out of sequence between two numbers that are in sequence."""
    if not draft.first or draft.marking or draft.heading:
        return False
    if not (previous.label.isdigit() and draft.label.isdigit() and following.label.isdigit()):
        return False
    expected = int(previous.label) + 1
    return int(draft.label) != expected and int(following.label) == expected


def _accept_number(match: re.Match[str], last_number: int | None) -> bool:
    pilcrow, number, marking, rest = match.groups()
    if pilcrow or marking:
        return True
    n = int(number)
    if last_number is None:
        return n <= 2 and rest[:1].isupper()
    return last_number < n <= last_number + 2 and (rest[:1].isupper() or rest[:1] in "(\"'")


def _is_heading(lines: list[str], i: int) -> bool:
    """A short title line: underlined/overlined with dashes, or alone before a numbered paragraph."""
    line = lines[i].strip()
    ends_like_sentence = line.endswith((",", ";")) or (line.endswith(".") and not re.search(r"[A-Z]\.[A-Z]\.$", line))
    if not _titled(line) or ends_like_sentence or not line[:1].isupper():
        return False
    if _underlined(lines, i):
        return True
    prev = i - 1
    if prev >= 0 and DASHES_RE.match(lines[prev]):
        return True
    nxt = _next_nonblank(lines, i)
    blank_before = prev < 0 or not lines[prev].strip()
    blank_after = i + 1 < len(lines) and not lines[i + 1].strip()
    if not (blank_before and blank_after) or nxt is None:
        return False
    return bool(PARA_RE.match(lines[nxt].strip())) and len(line.split()) <= 10


def _titled(line: str) -> bool:
    """Could be a line of a title: short and not a row of a table ("Dec 708", "Total 315 522")."""
    return len(line) <= 90 and not _table_row(line)


def _table_row(line: str) -> bool:
    """Half its words or more are figures other than years: "Dec 708", "Total 315 522", "Other 9 (2.9) Unavailable"."""
    words = line.split()
    figures = sum(1 for w in words if FIGURE_RE.match(w) and not YEAR_RE.match(w))
    return figures >= 1 and 2 * figures >= len(words)


def _underlined(lines: list[str], i: int) -> bool:
    nxt = _next_nonblank(lines, i)
    return nxt is not None and bool(DASHES_RE.match(lines[nxt]))


def _next_nonblank(lines: list[str], i: int) -> int | None:
    for j in range(i + 1, len(lines)):
        if lines[j].strip():
            return j
    return None


def _starts_new_block(lines: list[str], i: int, current: _Draft) -> bool:
    """After a blank line, unnumbered text starts a new paragraph unless it continues a broken sentence."""
    if not current.label.startswith("p"):
        return False  # inside a numbered paragraph everything up to the next number belongs to it
    if i == 0 or lines[i - 1].strip():
        return False
    previous = current.lines[-1].rstrip()
    return previous.endswith(SENTENCE_END) or not lines[i].strip()[:1].islower()

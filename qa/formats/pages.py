"""Readers for the page copies of one cable: web text, markdown table, markdown tags, mirror, Cablegate HTML."""

from __future__ import annotations

import html
import re

from qa.errors import ParseError
from qa.formats.telegram import PageMeta, parse_created, parse_telegram
from qa.records import Cable

BOILERPLATE_RE = re.compile(
    r"^(?:Disclaimer: .*|This record is a partial extract of the original cable\..*|Latest source of this page is.*"
    r"|US embassy cable - \S+|Wikileaks: .*|Redacted: .*|\|?\s*-{3}\|-{3}\|?|pdf\s*how-to read a cable"
    r"|Cable title:.*|.*\bHome\b.*\bCables\b.*|.*privacy policy.*)$",
    re.IGNORECASE,
)
META_LINE_RE = re.compile(
    r"^\|?\s*(Identifier|Origin|Created|Classification|Tags|Wikileaks|Redacted|Reference ID|Released)"
    r"\s*:\s*\|?\s*(.*?)\s*\|?\s*$"
)
DATETIME_LINE_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?$")
ORIGIN_LINE_RE = re.compile(r"^(?:Embassy|Consulate|US Office|Mission|USUN|Secretary of State|US Mission|REO|"
                            r"American Institute|US Delegation|U\.S\.)\b.{0,60}$")
DISCLAIMER_TAIL_RE = re.compile(r"Disclaimer: This site has been first put up.*$", re.DOTALL)


def read_key_value_page(text: str, source: str | None) -> Cable:
    """Formats 2 and 3: 'Identifier: 05ALMATY342' lines or a '| Identifier: | … |' markdown table."""
    meta = PageMeta()
    body: list[str] = []
    title: str | None = None
    seen_meta = False
    for line in text.split("\n"):
        stripped = line.strip()
        m = META_LINE_RE.match(stripped)
        if m:
            seen_meta = True
            _apply_meta(meta, m.group(1), m.group(2))
            continue
        if BOILERPLATE_RE.match(stripped):
            continue
        if not seen_meta:
            if stripped and not title:
                title = stripped
            continue
        body.append(line)
    meta.title = title
    return parse_telegram("\n".join(body), meta, source)


def read_mirror_page(text: str, source: str | None) -> Cable:
    """Format 5: a mirror page with navigation junk, a date line and an origin line above the cable."""
    text = DISCLAIMER_TAIL_RE.sub("", text)
    meta = PageMeta()
    body: list[str] = []
    expect_origin = False
    for line in text.split("\n"):
        stripped = line.strip()
        if meta.created is None and DATETIME_LINE_RE.match(stripped):
            meta.created = parse_created(stripped)
            expect_origin = True
            continue
        if expect_origin and stripped:
            expect_origin = False
            if ORIGIN_LINE_RE.match(stripped):
                meta.origin = stripped
                continue
        if BOILERPLATE_RE.match(stripped):
            continue
        body.append(line)
    return parse_telegram("\n".join(body), meta, source)


def read_markdown_telegram(text: str, source: str | None) -> Cable:
    """Format 4 (and plain telegrams): '[PGOV](#)' anchor links become plain words, boilerplate goes."""
    text = re.sub(r"\[([^\]]+)\]\(#[^)]*\)", r"\1", text)
    lines = [line for line in text.split("\n") if not BOILERPLATE_RE.match(line.strip())]
    return parse_telegram("\n".join(lines), PageMeta(), source)


def check_not_cut(text: str, source: str | None, pre: bool = False) -> None:
    """A page cut off mid-tag (or, with `pre`, before its cable text's closing </pre>) is refused, not guessed at."""
    tail = re.search(r"<[^<>]*$", text)
    if tail or (pre and text.count("</pre>") < text.count("<pre>")):
        where = f"ends inside an HTML tag ({tail.group(0)[:30]!r})" if tail else "has no closing </pre>"
        raise ParseError(f"{source}: the page is cut off (it {where}), so the cable may be incomplete; nothing was "
                         "stored from it: save the whole page again")


def read_cablegate_html(text: str, source: str | None) -> Cable:
    """Format 6: the original Cablegate page: a metadata table and the cable in the last <pre>."""
    check_not_cut(text, source, pre=True)
    meta = PageMeta()
    table = re.search(r"<table class=['\"]cable['\"]>(.*?)</table>", text, re.DOTALL)
    if table:
        cells = [_html_to_text(c).strip() for c in re.findall(r"<td>(.*?)</td>", table.group(1), re.DOTALL)]
        if len(cells) >= 5:
            meta.id = cells[0] or None
            meta.created = parse_created(cells[1])
            meta.classification = cells[3] or None
            meta.origin = cells[4] or None
    pres = re.findall(r"<pre>(.*?)</pre>", text, re.DOTALL)
    body = _html_to_text(pres[-1]) if pres else _html_to_text(text)
    return parse_telegram(body, meta, source)


def read_generic_html(text: str, source: str | None) -> Cable:
    """Any other HTML copy: drop scripts and tags, keep line structure, then read it as text."""
    check_not_cut(text, source)
    return read_markdown_telegram(_html_to_text(text, block_breaks=True), source)


def _apply_meta(meta: PageMeta, key: str, value: str) -> None:
    value = value.strip()
    if key in ("Identifier", "Reference ID"):
        meta.id = value.split()[0] if value else None
    elif key == "Origin":
        meta.origin = value or None
    elif key == "Created":
        meta.created = parse_created(value)
    elif key == "Classification":
        meta.classification = value or None
    elif key == "Tags":
        meta.tags = [t for t in value.split() if re.fullmatch(r"[A-Z][A-Z0-9]{1,12}", t)]


def _html_to_text(fragment: str, block_breaks: bool = False) -> str:
    fragment = re.sub(r"<(script|style)\b.*?</\1>", " ", fragment, flags=re.DOTALL | re.IGNORECASE)
    if block_breaks:
        fragment = re.sub(r"<br\s*/?>|</p>|</div>|</h\d>|</tr>|</li>", "\n", fragment, flags=re.IGNORECASE)
    fragment = re.sub(r"<[^>]+>", "", fragment)
    return html.unescape(fragment)

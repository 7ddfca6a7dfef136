"""What the web UI shows, as safe strings: cable text is untrusted, so every piece of it is escaped here.

Gradio renders chat messages as Markdown and HTML components as HTML; these functions make sure a cable
containing `<script>`, `<img onerror=…>`, `javascript:` links or Markdown shows up literally.
"""

from __future__ import annotations

import html
import re

from qa.records import Answer, Cable

MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def md_text(text: str) -> str:
    """Untrusted text as Markdown that renders literally (HTML escaped, Markdown punctuation backslashed)."""
    return html.escape(MARKDOWN_SPECIALS.sub(r"\\\1", text), quote=False)


def answer_markdown(answer: Answer) -> str:
    """The chat reply: statements with numbered citations, then the sources list."""
    if not answer.answered:
        return md_text(answer.message)
    numbers = {hit.citation: i for i, hit in enumerate(answer.hits, start=1)}
    body = " ".join(f"{md_text(s.text)} **[{numbers[s.citation]}]**" for s in answer.statements)
    sources = "\n".join(
        f"{numbers[h.citation]}. **{md_text(h.citation)}** — {md_text(h.subject or '(no subject)')} · "
        f"{md_text(h.origin or '?')} · {md_text(_day(h.created))}"
        for h in answer.hits
    )
    return f"{body}\n\n{sources}"


def evidence_html(answer: Answer | None) -> str:
    """One card per cited paragraph, in answer order, with the quoted sentences highlighted."""
    if answer is None or not answer.hits:
        return "<div class='evidence-empty'>Cited paragraphs appear here.</div>"
    quoted = {}
    for statement in answer.statements:
        quoted.setdefault(statement.citation, []).append(statement.text)
    cards = []
    for number, hit in enumerate(answer.hits, start=1):
        cards.append(
            f"<div class='evidence-card' data-citation='{html.escape(hit.citation, quote=True)}'>"
            f"<div class='card-head'><span class='card-num'>[{number}]</span> "
            f"<b>{html.escape(hit.citation)}</b> {classification_badge(hit.classification)}</div>"
            f"<div class='card-meta'>{html.escape(hit.subject or '(no subject)')}<br>"
            f"{html.escape(hit.origin or '?')} · {html.escape(_day(hit.created))}</div>"
            f"<div class='card-text'>{highlight(hit.text, quoted.get(hit.citation, []))}</div></div>"
        )
    return "\n".join(cards)


def highlight(text: str, sentences: list[str]) -> str:
    """Escaped paragraph text with the given sentences wrapped in <mark>."""
    escaped = html.escape(text)
    for sentence in sentences:
        target = html.escape(sentence)
        escaped = escaped.replace(target, f"<mark>{target}</mark>", 1)
    return escaped.replace("\n", "<br>")


def _day(created: str | None) -> str:
    return created[:10] if created else "date unknown"


def classification_badge(classification: str | None) -> str:
    value = (classification or "UNKNOWN").upper()
    level = ("secret" if "SECRET" in value else "confidential" if "CONFIDENTIAL" in value
             else "unclassified" if "UNCLAS" in value else "unknown")
    return f"<span class='badge badge-{level}'>{html.escape(classification or 'unknown')}</span>"


def cable_html(cable: Cable | None, cited_labels: set[str] | None = None, stored_refs: set[str] | None = None,
               focus: str | None = None) -> str:
    """The whole cable: metadata header and every paragraph, cited ones highlighted, the clicked one in focus."""
    if cable is None:
        return "<div class='viewer-empty'>Click a citation to read the whole cable here.</div>"
    cited_labels = cited_labels or set()
    stored_refs = stored_refs or set()
    refs = ", ".join(
        f"<b class='ref-stored'>{html.escape(r)}</b>" if r in stored_refs else html.escape(r) for r in cable.references
    ) or "none"
    head = (
        f"<div class='cable-head'><h3>{html.escape(cable.id)} {classification_badge(cable.classification)}</h3>"
        f"<div><b>Subject:</b> {html.escape(cable.subject or '(none)')}</div>"
        f"<div><b>Date:</b> {html.escape(str(cable.created) if cable.created else 'unknown')} · "
        f"<b>Origin:</b> {html.escape(cable.origin or 'unknown')} · "
        f"<b>Signed:</b> {html.escape(cable.signer or '?')}</div>"
        f"<div><b>Tags:</b> {html.escape(' '.join(cable.tags) or 'none')} · <b>References:</b> {refs}</div>"
        f"<div class='cable-source'>Source: {html.escape(cable.source or '?')}</div></div>"
    )
    paragraphs = []
    for position, p in enumerate(cable.paragraphs):
        cls = "para cited" if p.label in cited_labels else "para"
        if p.label == focus:
            cls += " focus"
        heading = f"<div class='para-heading'>{html.escape(p.heading)}</div>" if p.heading else ""
        marking = f"({html.escape(p.marking)}) " if p.marking else ""
        text = html.escape(p.text).replace("\n", "<br>")
        paragraphs.append(
            f"{heading}<div class='{cls}' id='para-{position}'>"
            f"<span class='para-label'>¶{html.escape(p.label)}.</span> {marking}{text}</div>"
        )
    return f"<div class='cable-viewer'>{head}{''.join(paragraphs)}</div>"


CSS = """
.badge { font-size: 0.75em; padding: 1px 6px; border-radius: 8px; margin-left: 4px; white-space: nowrap; }
.badge-secret { background: #b91c1c; color: white; }
.badge-confidential { background: #1d4ed8; color: white; }
.badge-unclassified { background: #15803d; color: white; }
.badge-unknown { background: #6b7280; color: white; }
.evidence-card { border: 1px solid #d1d5db; border-radius: 8px; padding: 8px 10px; margin-bottom: 8px; }
.card-meta { color: #4b5563; font-size: 0.85em; margin: 2px 0 4px; }
.card-text { font-size: 0.9em; }
.card-text mark, .para.cited mark { background: #fde68a; }
.cable-viewer { max-height: 640px; overflow-y: auto; padding-right: 6px; }
.cable-head { border-bottom: 1px solid #d1d5db; margin-bottom: 8px; padding-bottom: 6px; font-size: 0.9em; }
.cable-source { color: #6b7280; font-size: 0.8em; }
.para { margin: 6px 0; padding: 4px 6px; border-radius: 4px; }
.para.cited { background: #fef3c7; border-left: 4px solid #f59e0b; }
.para.focus { outline: 2px solid #d97706; }
.para-heading { font-weight: 600; margin-top: 10px; }
.para-label { font-weight: 600; }
.ref-stored { text-decoration: underline; }
"""

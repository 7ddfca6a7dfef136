"""What the web UI shows, as safe strings: cable text is untrusted, so every piece of it is escaped here.

Gradio renders chat messages as Markdown and HTML components as HTML; these functions make sure a cable
containing `<script>`, `<img onerror=…>`, `javascript:` links or Markdown shows up literally. Citations are
links of the form `#cite=<quoted citation>` that the page script (`PAGE_JS`) turns into "open in the viewer".
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from urllib.parse import quote

from qa.records import Answer, Cable, Hit

MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")


def md_text(text: str) -> str:
    """Untrusted text as Markdown that renders literally (HTML escaped, Markdown punctuation backslashed)."""
    return html.escape(MARKDOWN_SPECIALS.sub(r"\\\1", text), quote=False)


def esc(text: str | None) -> str:
    """Untrusted text for HTML text or attribute values."""
    return html.escape(text or "", quote=True)


def cite_href(citation: str) -> str:
    """The link target that opens a citation ("06ALMATY2399 ¶3") or a whole cable ("06ALMATY2399")."""
    return "#cite=" + quote(citation, safe="")


def numbered(answer: Answer) -> dict[str, int]:
    """Citation -> its number in the answer ([1], [2], … in order of the cited paragraphs)."""
    return {hit.citation: i for i, hit in enumerate(answer.hits, start=1)}


def answer_markdown(answer: Answer, statements: int | None = None) -> str:
    """The chat reply: statements with numbered citation links, then the sources list.

    `statements` < all: the partial reply shown while the answer streams (no sources list yet).
    """
    if not answer.answered:
        return md_text(answer.message)
    numbers = numbered(answer)
    shown = answer.statements if statements is None else answer.statements[:statements]
    body = " ".join(f"{md_text(s.text)} [\\[{numbers[s.citation]}\\]]({cite_href(s.citation)})" for s in shown)
    if statements is not None and statements < len(answer.statements):
        return body + " …"
    sources = "\n".join(
        f"{numbers[h.citation]}. [{md_text(h.citation)}]({cite_href(h.citation)}) — "
        f"{md_text(h.subject or '(no subject)')} · {md_text(h.origin or '?')} · {md_text(day(h.created))}"
        for h in answer.hits
    )
    return f"{body}\n\n{sources}"


def quoted_sentences(answer: Answer | None) -> dict[str, list[str]]:
    """Citation -> the sentences of that paragraph the answer quotes (to highlight them)."""
    quoted: dict[str, list[str]] = {}
    for statement in answer.statements if answer else ():
        quoted.setdefault(statement.citation, []).append(statement.text)
    return quoted


def evidence_html(answer: Answer | None, message: str = "") -> str:
    """One card per cited paragraph, in answer order: citation, badge, subject, post, date, highlighted text."""
    if answer is None or not answer.hits:
        note = message or "Ask a question: the paragraphs the answer cites appear here."
        return f"<div class='evidence-empty'>{esc(note)}</div>"
    quoted = quoted_sentences(answer)
    cards = [evidence_card(number, hit, quoted.get(hit.citation, []))
             for number, hit in enumerate(answer.hits, start=1)]
    return "<div class='evidence-list'>" + "\n".join(cards) + "</div>"


def evidence_card(number: int, hit: Hit, sentences: list[str]) -> str:
    citation = esc(hit.citation)
    return (
        f"<div class='evidence-card' data-citation='{citation}'>"
        f"<div class='card-head'>"
        f"<a class='card-cite' href='{cite_href(hit.citation)}' title='Open in the cable viewer'>"
        f"<span class='card-num'>[{number}]</span> {citation}</a> {classification_badge(hit.classification)}"
        f"<button type='button' class='copy-cite' data-copy='{citation}' title='Copy the citation'>Copy</button></div>"
        f"<div class='card-meta'><span class='card-subject'>{esc(hit.subject or '(no subject)')}</span><br>"
        f"{esc(hit.origin or '?')} · {esc(day(hit.created))}</div>"
        f"<div class='card-text'>{highlight(hit.text, sentences)}</div></div>"
    )


def highlight(text: str, sentences: Iterable[str]) -> str:
    """Escaped paragraph text with the given sentences wrapped in <mark>."""
    escaped = html.escape(text)
    for sentence in sentences:
        target = html.escape(sentence)
        escaped = escaped.replace(target, f"<mark>{target}</mark>", 1)
    return escaped.replace("\n", "<br>")


def day(created: str | None) -> str:
    return str(created)[:10] if created else "date unknown"


def classification_badge(classification: str | None) -> str:
    value = (classification or "UNKNOWN").upper()
    level = ("secret" if "SECRET" in value else "confidential" if "CONFIDENTIAL" in value
             else "unclassified" if "UNCLAS" in value else "unknown")
    return f"<span class='badge badge-{level}'>{esc(classification or 'unknown')}</span>"


def cable_html(cable: Cable | None, cited_labels: set[str] | None = None, stored_refs: dict[str, str] | None = None,
               focus: str | None = None, quoted: dict[str, list[str]] | None = None, message: str = "") -> str:
    """The whole cable: metadata header and every paragraph, cited ones highlighted, the clicked one in focus.

    `stored_refs` maps a reference as printed to the id of the stored cable it names (shown as a link);
    `quoted` maps paragraph labels to the sentences the answer quotes from them.
    """
    if cable is None:
        note = message or "Click a citation ([1] in the answer or on a card) to read the whole cable here."
        return f"<div class='viewer-empty'>{esc(note)}</div>"
    cited_labels = cited_labels or set()
    stored_refs = stored_refs or {}
    quoted = quoted or {}
    refs = ", ".join(
        f"<a class='ref-link' href='{cite_href(stored_refs[r])}' title='Open {esc(stored_refs[r])}'>{esc(r)}</a>"
        if r in stored_refs else esc(r) for r in cable.references
    ) or "none"
    head = (
        f"<div class='cable-title'>{esc(cable.id)} {classification_badge(cable.classification)}"
        f"<span class='cable-subject'>{esc(cable.subject or '(no subject)')}</span>"
        f"<button type='button' class='copy-cite' data-copy='{esc(cable.id)}' title='Copy the cable id'>Copy</button>"
        f"</div><div class='cable-head'><div><b>Subject:</b> {esc(cable.subject or '(none)')}</div>"
        f"<div><b>Date:</b> {esc(str(cable.created) if cable.created else 'unknown')} · "
        f"<b>Origin:</b> {esc(cable.origin or 'unknown')} · <b>Signed:</b> {esc(cable.signer or '?')}</div>"
        f"<div><b>Tags:</b> {esc(' '.join(cable.tags) or 'none')} · <b>References:</b> {refs}</div>"
        f"<div class='cable-source'>Source: {esc(cable.source or '?')}</div></div>"
    )
    paragraphs = []
    for position, p in enumerate(cable.paragraphs):
        cls = "para cited" if p.label in cited_labels else "para"
        if p.label == focus:
            cls += " focus"
        heading = f"<div class='para-heading'>{esc(p.heading)}</div>" if p.heading else ""
        marking = f"({esc(p.marking)}) " if p.marking else ""
        text = highlight(p.text, quoted.get(p.label, []) if p.label in cited_labels else [])
        paragraphs.append(
            f"{heading}<div class='{cls}' id='para-{position}' data-label='{esc(p.label)}'>"
            f"<span class='para-label'>¶{esc(p.label)}.</span> {marking}{text}</div>"
        )
    return f"<div class='cable-viewer'>{head}<div class='cable-body'>{''.join(paragraphs)}</div></div>"


def notice_html(text: str, kind: str = "info") -> str:
    """A one-line status message (kind: info, warn, error) shown in a panel."""
    return f"<div class='notice notice-{esc(kind)}'>{esc(text)}</div>"


# Installed by the evidence panel (gr.HTML js_on_load): one document-level listener turns every `#cite=` link
# (in the chat, on a card, in the viewer's references) into a "click" event carrying the citation, and makes the
# Copy buttons copy. The viewer scrolls its focused paragraph into view whenever its content changes.
EVIDENCE_JS = """
window.__cablesOpen = (citation) => trigger('click', {citation: citation});
if (!window.__cablesListening) {
  window.__cablesListening = true;
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest("a[href^='#cite=']");
    if (link) {
      event.preventDefault();
      event.stopPropagation();
      window.__cablesOpen(decodeURIComponent(link.getAttribute('href').slice(6)));
      return;
    }
    const copy = event.target.closest && event.target.closest('button[data-copy]');
    if (copy) {
      const text = copy.getAttribute('data-copy');
      const done = () => { copy.textContent = 'Copied'; copy.classList.add('copied');
                           setTimeout(() => { copy.textContent = 'Copy'; copy.classList.remove('copied'); }, 1500); };
      const fallback = () => { const area = document.createElement('textarea'); area.value = text;
        document.body.appendChild(area); area.select(); document.execCommand('copy'); area.remove(); done(); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, fallback);
      } else { fallback(); }
    }
  }, true);
}
"""

VIEWER_JS = """
const focusParagraph = () => {
  const body = element.querySelector('.cable-viewer');
  const focus = element.querySelector('.para.focus');
  if (body) { body.scrollTop = focus ? Math.max(focus.offsetTop - body.offsetTop - 60, 0) : 0; }
};
watch('value', focusParagraph);
focusParagraph();
"""

CSS = """
.desk-header { display: flex; align-items: baseline; gap: 18px; flex-wrap: wrap; }
.desk-header h2 { margin: 0; }
.desk-counts { color: #4b5563; font-size: 0.9em; }
.badge { font-size: 0.72em; padding: 1px 7px; border-radius: 8px; margin-left: 6px; white-space: nowrap;
         font-weight: 600; letter-spacing: 0.02em; vertical-align: middle; }
.badge-secret { background: #b91c1c; color: white; }
.badge-confidential { background: #1d4ed8; color: white; }
.badge-unclassified { background: #15803d; color: white; }
.badge-unknown { background: #6b7280; color: white; }
.evidence-list { max-height: 560px; overflow-y: auto; padding-right: 4px; }
.evidence-card { border: 1px solid #d1d5db; border-radius: 8px; padding: 8px 10px; margin-bottom: 8px;
                 background: var(--block-background-fill, #fff); }
.card-head { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 6px; }
.card-cite { font-weight: 700; text-decoration: none; color: var(--link-text-color, #1e3a8a); white-space: nowrap; }
.card-head .badge { margin-left: 0; max-width: 100%; overflow: hidden; text-overflow: ellipsis; }
.card-cite:hover { text-decoration: underline; }
.copy-cite { margin-left: auto; font-size: 0.75em; border: 1px solid #9ca3af; border-radius: 6px;
             padding: 0 8px; background: var(--button-secondary-background-fill, #f9fafb); color: inherit;
             cursor: pointer; }
.copy-cite.copied { background: #dcfce7; color: #14532d; border-color: #16a34a; }
.card-meta { color: var(--body-text-color-subdued, #4b5563); font-size: 0.82em; margin: 2px 0 4px; }
.card-subject { font-weight: 600; }
.card-text { font-size: 0.88em; line-height: 1.45; }
.card-text mark, .para mark { background: #fde68a; color: #111827; padding: 0 1px; }
.cable-viewer { max-height: 700px; overflow-y: auto; padding-right: 6px; position: relative; }
.cable-head { border-bottom: 1px solid #d1d5db; margin-bottom: 8px; padding-bottom: 6px; font-size: 0.88em; }
.cable-title { font-size: 1.1em; font-weight: 700; display: flex; align-items: center; gap: 6px;
               position: sticky; top: 0; z-index: 1; background: var(--background-fill-primary, #fff);
               padding: 3px 0; border-bottom: 1px solid #e5e7eb; }
.cable-subject { font-size: 0.72em; font-weight: 600; color: #4b5563; overflow: hidden; white-space: nowrap;
                 text-overflow: ellipsis; min-width: 0; flex: 1; }
.cable-source { color: #6b7280; font-size: 0.8em; word-break: break-all; }
.para { margin: 6px 0; padding: 4px 6px; border-radius: 4px; font-size: 0.92em; line-height: 1.45; }
.para.cited { background: #fef3c7; color: #1f2937; border-left: 4px solid #f59e0b; }
.para.focus { outline: 2px solid #d97706; }
.para-heading { font-weight: 600; margin-top: 10px; }
.para-label { font-weight: 600; }
.para.cited .para-label, .para.cited .para-label * { color: #1f2937; }
.ref-link { color: #1d4ed8; text-decoration: underline; cursor: pointer; }
.viewer-empty, .evidence-empty { color: #6b7280; padding: 12px; border: 1px dashed #d1d5db; border-radius: 8px; }
.notice { padding: 6px 10px; border-radius: 6px; font-size: 0.9em; }
.notice-info { background: #eff6ff; color: #1e3a8a; }
.notice-warn { background: #fffbeb; color: #92400e; }
.notice-error { background: #fef2f2; color: #991b1b; }
.timeline svg text { font-family: ui-sans-serif, system-ui, sans-serif; }
#active-filters { font-size: 0.88em; }
#chat .message-content .md { font-size: 14.5px; line-height: 1.5; }
#chat a[href^='#cite='] { text-decoration: none; font-weight: 700; color: var(--link-text-color, #1e3a8a); }
#chat a[href^='#cite=']:hover { text-decoration: underline; }
.timeline-title { font-size: 0.85em; margin-bottom: 4px; }
.timeline svg text { fill: currentColor; }
"""

"""The timeline panel: where the current question's top results fall in time and by post, as a small inline SVG.

An SVG string (not a plotting library) so it renders offline, costs nothing to import, and is escaped like
every other piece of cable text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from qa.records import Hit
from qa.webui import esc

UNKNOWN_YEAR = "n.d."
MAX_POSTS = 6
BAR_COLOR = "#2563eb"


def year_counts(hits: Sequence[Hit]) -> list[tuple[str, int]]:
    """Results per year, every year between the first and the last included (gaps show as 0), undated last."""
    counts = Counter((h.created or "")[:4] if (h.created or "")[:4].isdigit() else UNKNOWN_YEAR for h in hits)
    years = sorted(int(y) for y in counts if y != UNKNOWN_YEAR)
    out = [(str(y), counts.get(str(y), 0)) for y in range(years[0], years[-1] + 1)] if years else []
    if counts.get(UNKNOWN_YEAR):
        out.append((UNKNOWN_YEAR, counts[UNKNOWN_YEAR]))
    return out


def post_counts(hits: Sequence[Hit]) -> list[tuple[str, int]]:
    """Results per post, most first (the rest folded into 'other posts')."""
    ranked = Counter(h.origin or "unknown post" for h in hits).most_common()
    if len(ranked) > MAX_POSTS:
        rest = sum(c for _, c in ranked[MAX_POSTS - 1:])
        ranked = [*ranked[:MAX_POSTS - 1], ("other posts", rest)]
    return ranked


def timeline_html(hits: Sequence[Hit], question: str = "") -> str:
    """Two small bar charts (by year, by post) of the given top results, or a hint when there are none."""
    if not hits:
        return "<div class='timeline timeline-empty'>The timeline of the top results appears after a question.</div>"
    title = f"Top {len(hits)} results" + (f" for “{esc(_clip(question, 60))}”" if question else "")
    return (f"<div class='timeline'><div class='timeline-title'>{title}</div>"
            f"{_year_svg(year_counts(hits))}{_post_svg(post_counts(hits))}</div>")


def _year_svg(counts: list[tuple[str, int]]) -> str:
    width, height, bottom, top = 360, 110, 18, 14
    peak = max(c for _, c in counts) or 1
    slot = width / max(len(counts), 1)
    bar = min(slot * 0.7, 40)
    parts = []
    for i, (year, count) in enumerate(counts):
        h = (height - bottom - top) * count / peak
        x = i * slot + (slot - bar) / 2
        y = height - bottom - h
        parts.append(
            f"<g class='year-bar' data-year='{esc(year)}' data-count='{count}'>"
            f"<title>{esc(year)}: {count}</title>"
            f"<rect x='{x:.1f}' y='{y:.1f}' width='{bar:.1f}' height='{h:.1f}' fill='{BAR_COLOR}' rx='2'/>"
            + (f"<text x='{x + bar / 2:.1f}' y='{y - 3:.1f}' font-size='10' text-anchor='middle'>{count}</text>"
               if count else "")
            + f"<text x='{x + bar / 2:.1f}' y='{height - 4}' font-size='10' text-anchor='middle'>{esc(year)}</text></g>"
        )
    return (f"<svg class='timeline-years' viewBox='0 0 {width} {height}' width='100%' role='img' "
            f"aria-label='results by year'>{''.join(parts)}</svg>")


def _post_svg(counts: list[tuple[str, int]]) -> str:
    width, row, label_w = 360, 18, 150
    peak = max(c for _, c in counts) or 1
    parts = []
    for i, (post, count) in enumerate(counts):
        y = i * row
        w = (width - label_w - 30) * count / peak
        parts.append(
            f"<g class='post-bar' data-post='{esc(post)}' data-count='{count}'><title>{esc(post)}: {count}</title>"
            f"<text x='{label_w - 6}' y='{y + 13}' font-size='11' text-anchor='end'>{esc(_clip(post, 24))}</text>"
            f"<rect x='{label_w}' y='{y + 3}' width='{w:.1f}' height='{row - 6}' fill='#0f766e' rx='2'/>"
            f"<text x='{label_w + w + 4:.1f}' y='{y + 13}' font-size='10'>{count}</text></g>"
        )
    return (f"<svg class='timeline-posts' viewBox='0 0 {width} {row * len(counts)}' width='100%' role='img' "
            f"aria-label='results by post'>{''.join(parts)}</svg>")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

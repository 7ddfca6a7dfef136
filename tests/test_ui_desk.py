"""The research desk's handlers and renderers without a browser (fake embedder): streaming, messages for every
failure, viewer, timeline, export, escaping, and the remote-file guard."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import pytest

from qa import webui
from qa.records import Answer, Hit, Statement
from qa.ui_desk import BACKEND_ERROR, EMPTY_STORE, MAX_QUESTION_CHARS, Desk
from qa.ui_export import Turn, conversation_markdown, write_export
from qa.ui_guard import NoRemoteFiles, is_remote_file_request
from qa.ui_timeline import post_counts, timeline_html, year_counts
from tests.conftest import DATA, SEEDS


@pytest.fixture
def desk(fake_library, tmp_path):
    fake_library.ingest([SEEDS, DATA / "hostile_cable.txt"])
    return Desk(fake_library, export_dir=tmp_path)


def _steps(desk: Desk, question: str, turns=None, **filters) -> list[tuple]:
    values = [filters.get(k) for k in ("origin", "date_from", "date_to", "tag", "classification")]
    return list(desk.ask(question, [], turns or [], *values))


def _hit(citation: str, created: str | None, origin: str | None) -> Hit:
    cable_id, label = citation.split(" ¶")
    return Hit(cable_id, label, 0, citation, 1.0, "text", "subject", created, origin, "SECRET", "src")


def test_answer_streams_statement_by_statement_then_panels_and_export(desk, monkeypatch):
    monkeypatch.setattr("qa.ui_desk.STREAM_PAUSE_S", 0)
    steps = _steps(desk, "Why was the Uzbek refugee Shamsudinov detained in Almaty?")
    assert steps[0][0][-1]["content"] == "_Searching the cables…_"
    final_messages, question_box, turns, evidence, viewer, timeline, export, viewing = steps[-1]
    answer = turns[-1].answer
    assert answer.answered and len(steps) == len(answer.statements) + 1
    partial = [s[0][-1]["content"] for s in steps[1:-1]]
    assert all(p.endswith(" …") for p in partial)  # growing partial answers before the final one
    assert all(s[6] is None for s in steps[:-1])  # the export is only offered for the finished answer
    assert "[\\[1\\]](#cite=" in final_messages[-1]["content"] and question_box == ""
    assert evidence.count("class='evidence-card'") == len(answer.hits)
    assert "class='para cited focus'" in viewer and "class='year-bar'" in timeline
    assert viewing == answer.hits[0].cable_id  # the next question's "reftel A" refers to this cable
    text = Path(export).read_text(encoding="utf-8")
    assert f"[{answer.hits[0].citation}]" in text and "Shamsudinov" in text


def test_follow_up_uses_the_conversation(desk, monkeypatch):
    monkeypatch.setattr("qa.ui_desk.STREAM_PAUSE_S", 0)
    first = _steps(desk, "Why was the Uzbek refugee Shamsudinov detained in Almaty?")[-1]
    seen = []
    original = desk.library.ask
    monkeypatch.setattr(desk.library, "ask", lambda q, filters, history, viewing=None: seen.append(history) or original(
        q, filters=filters, history=history, viewing=viewing))
    _steps(desk, "What happened to him next?", turns=first[2])
    assert seen == [["Why was the Uzbek refugee Shamsudinov detained in Almaty?"]]


def test_messages_instead_of_stack_traces(desk, fake_library, tmp_path, monkeypatch):
    too_long = _steps(desk, "x" * (MAX_QUESTION_CHARS + 1))
    assert len(too_long) == 1 and "capped at 1,000" in too_long[0][0][-1]["content"]
    assert too_long[0][1] == "x" * (MAX_QUESTION_CHARS + 1)  # kept in the box to shorten it
    bad = _steps(desk, "refugee", date_from="soon")[-1]
    assert "is not a date" in bad[0][-1]["content"] and bad[6] is not None
    none = _steps(desk, "refugee", date_from="1990-01-01", date_to="1990-02-01")[-1]
    assert "No cable in the store matches" in none[0][-1]["content"]
    assert "No cited paragraphs" in none[3]

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire\nTraceback (most recent call last)")

    monkeypatch.setattr(desk.library, "ask", boom)
    broken = _steps(desk, "refugee")[-1][0][-1]["content"]
    assert webui.md_text(BACKEND_ERROR) in broken and "disk on fire" not in broken and "Traceback" not in broken

    from qa.library import Library

    empty = Library(tmp_path / "empty", embedder=fake_library.embedder)
    assert webui.md_text(EMPTY_STORE) in _steps(Desk(empty, tmp_path), "refugee")[-1][0][-1]["content"]
    empty.close()


def test_filter_note_says_what_the_next_question_searches(desk):
    assert "all cables" in desk.filter_note("", "", "", "", "")
    assert "origin=Embassy Almaty" in desk.filter_note("Embassy Almaty", "", "", "", "")
    assert "Filter problem" in desk.filter_note("", "2005-13-01", "", "", "")


def test_viewer_links_stored_references_and_marks_quotes(desk):
    hostile = desk.open_citation("TESTPOST666 ¶1")
    assert "href='#cite=06ALMATY2399'" in hostile  # REF: ALMATY 2399 is in the store
    assert "STATE" in hostile and "href='#cite=STATE" not in hostile  # not stored: plain text
    assert "&lt;script&gt;" in hostile and "<script>" not in hostile and "<img" not in hostile
    assert "is not in the store" in desk.open_citation("99NOWHERE1 ¶1")
    turns = [Turn("q", Answer("q", True, (Statement("Quoted sentence here.", "06ALMATY2399 ¶3"),),
                                 (_hit("06ALMATY2399 ¶3", None, None),)))]
    whole, viewing = desk.open_event({"citation": "06ALMATY2399"}, turns)
    assert "class='para cited'" in whole and "focus" not in whole and viewing == "06ALMATY2399"
    assert desk.open_event({}, turns) == (webui.cable_html(None), None)


def test_a_number_the_cable_gives_twice_opens_the_paragraph_cited(desk):
    """ALMATY2058 numbers two paragraphs 14: the second is cited "¶14 (2nd)" and only it is in focus."""
    import re

    page = desk.open_citation("ALMATY2058 ¶14 (2nd)")
    focused = re.findall(r"<div class='para cited focus' id='para-\d+' data-label='([^']*)'>(.{0,80})", page)
    assert len(focused) == 1 and focused[0][0] == "14 (2nd)", focused
    assert "A Mazhilis working group" in focused[0][1]
    assert page.count("data-label='14'") == 1 and "class='para' id='para-3' data-label='14'" in page


class EmptyProgress:
    """Like gr.Progress before anything is tracked: callable, and falsy (it has a zero length)."""

    def __init__(self) -> None:
        self.calls: list = []

    def __len__(self) -> int:
        return 0

    def __call__(self, value, desc: str = "") -> None:
        self.calls.append(value)


def test_ingest_reports_per_file_with_progress(fake_library, tmp_path):
    desk = Desk(fake_library, tmp_path)
    progress = EmptyProgress()
    calls = progress.calls
    seed = sorted(SEEDS.iterdir())[0]
    line = desk.ingest([str(seed), str(tmp_path / "missing.txt")], progress)
    assert "Added 1 cables" in line and "missing.txt" in line
    assert calls[0] == (0, 2) and calls[-1] == (2, 2)
    assert "<b>1</b> cables" in desk.library_html()
    assert "Choose cable files" in desk.ingest([])


def test_timeline_counts_years_with_gaps_and_posts():
    hits = [_hit("A ¶1", "2004-01-01", "Embassy X"), _hit("B ¶1", "2006-05-01", "Embassy X"),
            _hit("C ¶1", None, "<b>Post</b>")]
    assert year_counts(hits) == [("2004", 1), ("2005", 0), ("2006", 1), ("n.d.", 1)]
    assert post_counts(hits) == [("Embassy X", 2), ("<b>Post</b>", 1)]
    svg = timeline_html(hits, "q")
    assert svg.count("class='year-bar'") == 4 and "&lt;b&gt;Post" in svg and "<b>Post" not in svg
    assert "appears after a question" in timeline_html([])


def test_export_markdown_quotes_answers_and_failures(tmp_path):
    answer = Answer("q1", True, (Statement("It rose.", "A ¶1"),), (_hit("A ¶1", "2005-01-01", "Embassy X"),))
    turns = [Turn("q1", answer, filters="origin=X"), Turn("q2", None, "⚠️ bad date")]
    text = conversation_markdown(turns, now=datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc))
    assert text.startswith("# cables-qa conversation (2026-01-02 03:04 UTC)")
    assert "## 1. q1" in text and "Filters: origin=X" in text and "It rose. [A ¶1]" in text
    assert "1. **A ¶1** — subject · Embassy X · 2005-01-01 · SECRET" in text and "   > text" in text
    assert "## 2. q2\n\n⚠️ bad date" in text
    written = write_export(turns, tmp_path)
    assert written.parent.parent == tmp_path and "It rose. [A ¶1]" in written.read_text(encoding="utf-8")


def test_markdown_and_html_escaping_is_literal():
    hostile = "<script>x</script> [a](javascript:y) **b** ${z} {{w}}"
    md = webui.md_text(hostile)
    assert "<script>" not in md and "\\[a\\]" in md and "\\*\\*b" in md and "\\$" in md
    card = webui.evidence_card(1, _hit("A ¶1", None, "<img src=x onerror=y>"), [])
    assert "<img" not in card and "&lt;img" in card
    assert webui.cite_href("06ALMATY2399 ¶3") == "#cite=06ALMATY2399%20%C2%B63"


def test_guard_refuses_remote_file_routes():
    assert is_remote_file_request("/gradio_api/file=https://example.com/a")
    assert is_remote_file_request("/gradio_api/file=http%3A%2F%2F127.0.0.1%2F")
    assert is_remote_file_request("/gradio_api/file/https://example.com/a")
    assert not is_remote_file_request("/gradio_api/file=/tmp/cables-ui-x/abc/file.md")
    assert not is_remote_file_request("/gradio_api/file/tmp/cables-ui-x/a:b.md")
    sent, passed = [], []

    async def app(scope, receive, send):
        passed.append(scope["path"])

    async def send(message):
        sent.append(message)

    guard = NoRemoteFiles(app)
    asyncio.run(guard({"type": "http", "path": "/gradio_api/file=https://x.org/"}, None, send))
    asyncio.run(guard({"type": "http", "path": "/gradio_api/info"}, None, send))
    assert sent[0]["status"] == 403 and passed == ["/gradio_api/info"]


def test_reftel_in_a_question_means_the_open_cables_reference(desk, monkeypatch):
    monkeypatch.setattr("qa.ui_desk.STREAM_PAUSE_S", 0)
    asked = []
    real_ask = desk.library.ask
    monkeypatch.setattr(desk.library, "ask", lambda *a, **kw: asked.append(kw.get("viewing")) or real_ask(*a, **kw))
    list(desk.ask("what did reftel A say?", [], [], viewing="TESTPOST666"))
    assert asked == ["TESTPOST666"]

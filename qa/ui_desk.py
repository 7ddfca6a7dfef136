"""The web UI's handlers over one Library (the "research desk"): ask with a streamed answer, open citations,
filters, timeline, export, library counts and upload. Every error becomes a message, never a stack trace.

Gradio-free except where a handler must hand Gradio an update object; `app.py` only wires these to components.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa import webui
from qa.errors import CablesError
from qa.filters import Filters
from qa.records import Answer, Cable
from qa.ui_export import Turn, write_export
from qa.ui_timeline import timeline_html

MAX_QUESTION_CHARS = 1000
TIMELINE_RESULTS = 20
STREAM_PAUSE_S = 0.08  # between streamed statements, so each one paints
EMPTY_STORE = "The store is empty: add cable files in the Library tab (start with --allow-upload) or run " \
              "`cables ingest PATH`, then ask again."
BACKEND_ERROR = "Something went wrong while answering; the error was logged on the server. Try again or rephrase."
log = logging.getLogger("cables.app")


@dataclass(frozen=True)
class Reply:
    """What one step of `Desk.ask` shows: chat messages, the question box, the conversation and the panels.

    A panel left None keeps what it shows (the UI maps None to "no update").
    """

    messages: list
    question: str
    turns: list
    evidence: str | None = None
    viewer: str | None = None
    timeline: str | None = None
    export: str | None = None
    viewing: str | None = None  # id of the cable the viewer now shows ("reftel A" in the next question means its)

    def values(self) -> tuple:
        """A snapshot: later steps change the lists, never what an earlier step handed out."""
        return (list(self.messages), self.question, list(self.turns), self.evidence, self.viewer, self.timeline,
                self.export, self.viewing)


class Desk:
    """Handlers over one Library; a lock serialises use of the store and the model across browser sessions."""

    def __init__(self, library, export_dir: Path | None = None) -> None:
        self.library = library
        self.lock = threading.Lock()
        self.export_dir = export_dir or Path(tempfile.mkdtemp(prefix="cables-ui-"))
        self.export_dir.mkdir(parents=True, exist_ok=True)

    # ---- filters -------------------------------------------------------------------------------------------
    @staticmethod
    def filters(origin: str | None, date_from: str | None, date_to: str | None, tag: str | None,
                classification: str | None) -> Filters:
        return Filters.make(origin=origin or None, date_from=date_from or None, date_to=date_to or None,
                            tag=tag or None, classification=classification or None)

    def filter_note(self, origin: str | None, date_from: str | None, date_to: str | None, tag: str | None,
                    classification: str | None) -> str:
        """The line under the question box saying what the next question will search."""
        try:
            filters = self.filters(origin, date_from, date_to, tag, classification)
        except CablesError as error:
            return webui.notice_html(f"Filter problem: {error}", "warn")
        if filters.empty:
            return webui.notice_html("Next question searches all cables (no filters).")
        return webui.notice_html(f"Next question is filtered: {filters.describe()}", "warn")

    # ---- asking --------------------------------------------------------------------------------------------
    def ask(self, question: str, messages: list | None, turns: list | None, origin: str | None = None,
            date_from: str | None = None, date_to: str | None = None, tag: str | None = None,
            classification: str | None = None, viewing: str | None = None) -> Iterator[tuple]:
        """Answer one question, streaming: the question and a 'searching' line first, then statement by statement.

        `viewing` is the cable open in the viewer: "reftel A" in the question means its first reference.
        """
        messages = list(messages or [])
        turns = list(turns or [])
        question = (question or "").strip()
        if not question:
            yield Reply(messages, "", turns).values()
            return
        if len(question) > MAX_QUESTION_CHARS:
            messages += [{"role": "user", "content": webui.md_text(question[:200] + " …")},
                         {"role": "assistant", "content": webui.md_text(
                             f"⚠️ Your question is {len(question):,} characters long; questions are capped at "
                             f"{MAX_QUESTION_CHARS:,}. Shorten it and ask again.")}]
            yield Reply(messages, question, turns).values()
            return
        messages.append({"role": "user", "content": webui.md_text(question)})
        messages.append({"role": "assistant", "content": "_Searching the cables…_"})
        yield Reply(messages, "", turns, webui.evidence_html(None, "Searching…")).values()
        answer, hits, message, described = self._answer(question, turns, origin, date_from, date_to, tag,
                                                        classification, viewing=viewing)
        turns.append(Turn(question, answer, message, described))
        export = str(write_export(turns, self.export_dir))
        suffix = f"\n\n_Filters: {webui.md_text(described)}_" if described != "none" else ""
        timeline = timeline_html(hits, question)
        if answer is None or not answer.answered:
            text = answer.message if answer else message
            messages[-1] = {"role": "assistant", "content": webui.md_text(text) + suffix}
            evidence = webui.evidence_html(None, f"No cited paragraphs: {text}")
            yield Reply(messages, "", turns, evidence, webui.cable_html(None), timeline, export).values()
            return
        evidence = webui.evidence_html(answer)
        viewer = self.open_citation(answer.hits[0].citation, turns)
        opened = answer.hits[0].cable_id
        for shown in range(1, len(answer.statements)):
            messages[-1] = {"role": "assistant", "content": webui.answer_markdown(answer, statements=shown)}
            yield Reply(messages, "", turns, evidence, viewer, timeline).values()
            time.sleep(STREAM_PAUSE_S)
        messages[-1] = {"role": "assistant", "content": webui.answer_markdown(answer) + suffix}
        yield Reply(messages, "", turns, evidence, viewer, timeline, export, opened).values()

    def _answer(self, question: str, turns: Sequence[Turn], *filter_values: str | None,
                viewing: str | None = None) -> tuple:
        """(answer or None, top results for the timeline, message when there is no answer, filters described)."""
        from qa.answer import retrieval_query

        described = "none"
        try:
            filters = self.filters(*filter_values)
            described = filters.describe()
            with self.lock:
                if self.library.is_empty():
                    return None, [], EMPTY_STORE, described
                history = [t.question for t in turns]
                answer = self.library.ask(question, filters=filters, history=history, viewing=viewing)
                hits = self.library.search(retrieval_query(question, history), k=TIMELINE_RESULTS, filters=filters)
            return answer, hits, "", described
        except CablesError as error:
            return None, [], f"⚠️ {error}", described
        except Exception:  # the UI never shows a stack trace; the server log keeps it
            log.exception("ask failed")
            return None, [], f"⚠️ {BACKEND_ERROR}", described

    # ---- the cable viewer ----------------------------------------------------------------------------------
    def open_citation(self, citation: str | None, turns: Sequence[Turn] | None = None) -> str:
        """The whole cable of a citation ('ID ¶N' or just 'ID'), cited paragraphs marked, the named one in focus."""
        citation = (citation or "").strip()
        if not citation:
            return webui.cable_html(None)
        cable_id, _, focus = citation.partition(" ¶")
        try:
            with self.lock:
                cable = self.library.cable(cable_id)
                stored = self._stored_references(cable) if cable else {}
        except CablesError as error:
            return webui.cable_html(None, message=str(error))
        except Exception:
            log.exception("open %s failed", citation)
            return webui.cable_html(None, message=f"Could not open {citation}; the error was logged.")
        if cable is None:
            return webui.cable_html(None, message=f"{cable_id} is not in the store.")
        cited, quoted = _cited_in(cable, turns or ())
        if focus:
            cited.add(focus)
        return webui.cable_html(cable, cited, stored, focus=focus or None, quoted=quoted)

    def open_event(self, data: dict | None, turns: Sequence[Turn] | None) -> tuple[str, str | None]:
        """Handler for the page script's click event ({'citation': ...}): (viewer HTML, id of the cable shown)."""
        citation = (data or {}).get("citation") or ""
        cable_id = citation.strip().partition(" ¶")[0].upper() or None
        with self.lock:
            cable = self.library.cable(cable_id) if cable_id else None
        return self.open_citation(citation, turns), (cable.id if cable else None)

    def _stored_references(self, cable: Cable) -> dict[str, str]:
        found = {}
        for ref in cable.references:
            ids = self.library.store.existing_ids([ref])
            if len(ids) == 1:
                found[ref] = next(iter(ids))
        return found

    # ---- library -------------------------------------------------------------------------------------------
    def library_html(self) -> str:
        with self.lock:
            stats = self.library.stats()
        return (f"<div class='desk-counts'><b>{stats['cables']:,}</b> cables · <b>{stats['paragraphs']:,}</b> "
                f"paragraphs · <b>{stats['posts']:,}</b> posts · <b>{stats['years']:,}</b> years</div>")

    def facets(self) -> dict[str, list]:
        with self.lock:
            return self.library.store.facets()

    def ingest(self, files: Sequence[str] | None, progress: Callable | None = None) -> str:
        """Ingest uploaded files one by one (progress per file); a one-line HTML summary or problem."""
        paths = [str(f) for f in (files or [])]
        if not paths:
            return webui.notice_html("Choose cable files to add first.", "warn")
        if progress is None:  # not `or`: a gr.Progress with nothing tracked yet is falsy
            progress = lambda *args, **kwargs: None  # noqa: E731
        added = paragraphs = 0
        skipped: list[str] = []
        for done, path in enumerate(paths):
            name = Path(path).name
            progress((done, len(paths)), desc=f"Ingesting {name}")
            try:
                with self.lock:
                    report = self.library.ingest([path])
            except CablesError as error:
                skipped.append(f"{name}: {error}")
                continue
            except Exception:
                log.exception("ingest %s failed", path)
                skipped.append(f"{name}: unexpected error (logged on the server)")
                continue
            added += report.cables_added + report.cables_replaced
            paragraphs += report.paragraphs_added
            skipped += [f"{Path(p).name}: {reason}" for p, reason in report.skipped]
        progress((len(paths), len(paths)), desc="Done")
        line = f"Added {added} cables ({paragraphs} paragraphs) from {len(paths)} files."
        if skipped:
            return webui.notice_html(line + " Skipped: " + "; ".join(skipped), "warn")
        return webui.notice_html(line)

    # ---- JSON API for scripts ------------------------------------------------------------------------------
    def api_search(self, question: str, k: int = 10, filters_json: str = "{}", mode: str = "hybrid") -> dict:
        """JSON search for scripts (gradio_client): {"hits": [...]} or {"error": "..."}."""
        try:
            filters = Filters.from_dict(json.loads(filters_json or "{}"))
            with self.lock:
                hits = self.library.search(question, k=int(k), filters=filters, mode=mode)
            return {"question": question, "filters": filters.to_dict(), "hits": [h.to_json() for h in hits]}
        except (CablesError, ValueError) as error:
            return {"error": str(error)}

    def api_ask(self, question: str, filters_json: str = "{}") -> dict:
        try:
            filters = Filters.from_dict(json.loads(filters_json or "{}"))
            with self.lock:
                return self.library.ask(question, filters=filters).to_json()
        except (CablesError, ValueError) as error:
            return {"error": str(error)}


def _cited_in(cable: Cable, turns: Sequence[Turn]) -> tuple[set[str], dict[str, list[str]]]:
    """Labels of this cable's paragraphs cited anywhere in the conversation, and the sentences quoted from each."""
    cited: set[str] = set()
    quoted: dict[str, list[str]] = {}
    for turn in turns:
        answer: Answer | None = turn.answer
        if not answer:
            continue
        for hit in answer.hits:
            if hit.cable_id == cable.id:
                cited.add(hit.paragraph)
        for statement in answer.statements:
            cable_id, _, label = statement.citation.partition(" ¶")
            if cable_id == cable.id and statement.text not in quoted.get(label, []):
                quoted.setdefault(label, []).append(statement.text)
    return cited, quoted

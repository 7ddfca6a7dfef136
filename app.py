"""The cables-qa web UI (Gradio): chat with cited answers, evidence cards, whole-cable viewer, filters.

`python app.py` serves the store in ./.cables (or $CABLES_HOME) on http://127.0.0.1:7860, ingesting the
bundled seeds first when the store is empty. All logic lives in `qa`; this file only wires the UI.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from pathlib import Path

from qa import webui
from qa.errors import CablesError
from qa.filters import Filters
from qa.records import Answer

SEEDS = Path(__file__).resolve().parent / "seeds"
MAX_QUESTION_CHARS = 2000
EXAMPLES = [
    "What guarantees did Kazakhstan refuse to give about Guantanamo detainees?",
    "Why was the Uzbek refugee Shamsudinov detained in Almaty?",
    "How did the authorities harass the For a Just Kazakhstan movement?",
    "What did the Ambassador tell Dzhaksybekov about NGOs and certification?",
]
log = logging.getLogger("cables.app")


class Desk:
    """The UI's handlers over one Library; every error becomes a message, never a stack trace."""

    def __init__(self, library) -> None:
        self.library = library
        self.lock = threading.Lock()

    def filters(self, origin, date_from, date_to, tag, classification) -> Filters:
        return Filters.make(origin=origin or None, date_from=date_from or None, date_to=date_to or None,
                            tag=tag or None, classification=classification or None)

    def ask(self, question: str, messages: list, history: list, origin, date_from, date_to, tag, classification):
        messages = list(messages or [])
        history = list(history or [])
        question = (question or "").strip()
        if not question:
            return messages, "", history, None, webui.evidence_html(None), _radio([]), webui.cable_html(None)
        note = ""
        if len(question) > MAX_QUESTION_CHARS:
            question = question[:MAX_QUESTION_CHARS]
            note = f"\n\n_(Your question was cut to {MAX_QUESTION_CHARS} characters.)_"
        messages.append({"role": "user", "content": webui.md_text(question)})
        answer: Answer | None = None
        try:
            filters = self.filters(origin, date_from, date_to, tag, classification)
            if self.library.is_empty():
                reply = "The store is empty: ingest cables first (`cables ingest PATH`)."
            else:
                with self.lock:
                    answer = self.library.ask(question, filters=filters, history=history)
                reply = webui.answer_markdown(answer)
                if not filters.empty:
                    reply += f"\n\n_Filters: {webui.md_text(filters.describe())}_"
        except CablesError as error:
            reply = f"⚠️ {webui.md_text(str(error))}"
        except Exception:  # the UI must never show a stack trace; the log keeps it
            log.exception("ask failed")
            reply = "⚠️ Something went wrong while answering; the error was logged. Try again or rephrase."
        messages.append({"role": "assistant", "content": reply + note})
        history.append(question)
        citations = [h.citation for h in answer.hits] if answer else []
        viewer = self.open_citation(citations[0], answer) if citations else webui.cable_html(None)
        return (messages, "", history, answer, webui.evidence_html(answer),
                _radio(citations, citations[0] if citations else None), viewer)

    def open_citation(self, citation: str | None, answer: Answer | None) -> str:
        if not citation:
            return webui.cable_html(None)
        cable_id = citation.split(" ¶")[0]
        try:
            with self.lock:
                cable = self.library.cable(cable_id)
                stored = {r for r in cable.references if self.library.store.existing_ids([r])} if cable else set()
        except CablesError as error:
            return f"<div class='viewer-empty'>{webui.md_text(str(error))}</div>"
        focus = citation.split(" ¶")[1] if " ¶" in citation else None
        cited = {h.paragraph for h in (answer.hits if answer else ()) if h.cable_id == cable_id} | {focus}
        return webui.cable_html(cable, cited, stored, focus=focus)

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


def _choices(any_label: str, counted: list) -> list[tuple[str, str]]:
    """Dropdown choices: an explicit 'any' first (so nothing filters by default), then 'value (count)'."""
    return [(any_label, "")] + [(f"{value} ({count})", str(value)) for value, count in counted]


def _radio(choices: list[str], value: str | None = None):
    import gradio as gr

    return gr.update(choices=choices, value=value, visible=bool(choices))


def build(library):
    """The Gradio Blocks app over a Library."""
    import gradio as gr

    desk = Desk(library)
    facets = library.store.facets()
    stats = library.stats()
    with gr.Blocks(title="cables-qa") as demo:
        gr.Markdown(f"## cables-qa — ask the cables\n{stats['cables']} cables · {stats['paragraphs']} paragraphs · "
                    f"{stats['posts']} posts · {stats['years']} years. Every statement cites the cable and paragraph.")
        history = gr.State([])
        answer_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=5):
                chat = gr.Chatbot(label="Answers", height=480, elem_id="chat")
                with gr.Row():
                    question = gr.Textbox(placeholder="Ask a question about the cables…", show_label=False,
                                          scale=5, max_lines=4, elem_id="question")
                    ask = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                gr.Examples(EXAMPLES, inputs=question, label="Examples")
                with gr.Accordion("Filters (applied to the next question)", open=False):
                    origin = gr.Dropdown(_choices("Any post", facets["origins"]), value="", label="Post",
                                         allow_custom_value=True, elem_id="filter-origin")
                    with gr.Row():
                        date_from = gr.Textbox(label="From (YYYY-MM-DD)", elem_id="filter-from")
                        date_to = gr.Textbox(label="To (YYYY-MM-DD)", elem_id="filter-to")
                    tag = gr.Dropdown(_choices("Any tag", facets["tags"]), value="", label="Tag",
                                      allow_custom_value=True, elem_id="filter-tag")
                    classification = gr.Dropdown(_choices("Any classification", facets["classifications"]), value="",
                                                 label="Classification", allow_custom_value=True,
                                                 elem_id="filter-classification")
            with gr.Column(scale=4):
                citations = gr.Radio([], label="Cited paragraphs — click to open the cable", visible=False,
                                     elem_id="citations")
                evidence = gr.HTML(webui.evidence_html(None), elem_id="evidence")
                viewer = gr.HTML(webui.cable_html(None), elem_id="viewer")
        inputs = [question, chat, history, origin, date_from, date_to, tag, classification]
        outputs = [chat, question, history, answer_state, evidence, citations, viewer]
        scroll = ("() => { setTimeout(() => document.querySelector('#viewer .para.focus')"
                  "?.scrollIntoView({block: 'center'}), 300); }")
        for trigger in (ask.click, question.submit):
            trigger(desk.ask, inputs, outputs, api_name=False).then(None, js=scroll)
        citations.input(desk.open_citation, [citations, answer_state], viewer, api_name=False).then(None, js=scroll)
        gr.api(desk.api_search, api_name="search")
        gr.api(desk.api_ask, api_name="ask")
    return demo


def prepare(home: str | None = None, model: str | None = None, backend: str = "auto", seeds: str | None = None):
    """Open the store; on first start ingest the seeds so a fresh checkout has something to answer from."""
    from qa.library import Library

    library = Library(home, model=model, backend=backend)
    if library.is_empty():
        folder = Path(seeds) if seeds else SEEDS
        print(f"Empty store {library.home}: ingesting {folder} …", file=sys.stderr, flush=True)
        report = library.ingest([folder])
        print(report.summary(), file=sys.stderr, flush=True)
    library.load()  # model and vector index ready before the first question
    return library


def serve(home: str | None = None, model: str | None = None, backend: str = "auto", host: str = "127.0.0.1",
          port: int = 7860, auth: str | None = None, seeds: str | None = None) -> int:
    from qa import webui as ui

    try:
        library = prepare(home, model, backend, seeds)
    except CablesError as error:
        print(f"cables: error: {error}", file=sys.stderr)
        return error.exit_code
    auth = auth or os.environ.get("CABLES_AUTH")
    credentials = None
    if auth:
        if ":" not in auth:
            print("cables: error: --auth must be USER:PASS", file=sys.stderr)
            return 2
        credentials = tuple(auth.split(":", 1))
    demo = build(library)
    demo.queue(default_concurrency_limit=4)
    print(f"Serving on http://{host}:{port}", file=sys.stderr, flush=True)
    import gradio as gr

    # system fonts: the UI makes no request outside this machine (and works offline)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])
    demo.launch(server_name=host, server_port=port, auth=credentials, css=ui.CSS, theme=theme, show_error=False,
                footer_links=["api"], ssr_mode=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    from qa.cli import quiet_libraries

    quiet_libraries()
    parser = argparse.ArgumentParser(description="Serve the cables-qa web UI.")
    parser.add_argument("--home", help="store folder (default $CABLES_HOME or ./.cables)")
    parser.add_argument("--model", help="embedding model name or path")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("CABLES_PORT", 7860)))
    parser.add_argument("--auth", help="USER:PASS required to use the UI (or $CABLES_AUTH)")
    parser.add_argument("--seeds", help="folder ingested when the store is empty (default: bundled seeds)")
    args = parser.parse_args(argv)
    return serve(args.home, args.model, args.backend, args.host, args.port, args.auth, args.seeds)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())

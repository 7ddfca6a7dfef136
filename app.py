"""The cables-qa web UI (Gradio): a research desk with chat, evidence cards, cable viewer, filters, timeline,
library and export.

`python app.py` serves the store in ./.cables (or $CABLES_HOME) on http://127.0.0.1:7860, ingesting the
bundled seeds first when the store is empty. All logic lives in `qa` (qa/ui_desk.py and friends); this file
only builds the page and wires components to handlers.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import signal
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from qa.errors import CablesError

SEEDS = Path(__file__).resolve().parent / "seeds"
EXAMPLES = [
    "What guarantees did Kazakhstan refuse to give about Guantanamo detainees?",
    "Why was the Uzbek refugee Shamsudinov detained in Almaty?",
    "How did the authorities harass the For a Just Kazakhstan movement?",
    "What did the Ambassador tell Dzhaksybekov about NGOs and certification?",
]
UPLOAD_LIMIT = "25mb"
log = logging.getLogger("cables.app")


def _choices(any_label: str, counted: list) -> list[tuple[str, str]]:
    """Dropdown choices: an explicit 'any' first (so nothing filters by default), then 'value (count)'."""
    return [(any_label, "")] + [(f"{value} ({count})", str(value)) for value, count in counted]


def build(library, allow_upload: bool = False, export_dir: Path | None = None):
    """The Gradio Blocks app over a Library."""
    import gradio as gr

    from qa import webui
    from qa.ui_desk import MAX_QUESTION_CHARS, Desk
    from qa.ui_timeline import timeline_html

    desk = Desk(library, export_dir)
    facets = desk.facets()
    counts_html = desk.library_html()  # counted once: on a cold million-paragraph store each count reads the disk

    def header(counts_html: str) -> str:
        return ("<div class='desk-header'><h2>cables-qa · research desk</h2>" + counts_html
                + "<span class='desk-counts'>Every statement cites the cable and paragraph.</span></div>")

    with gr.Blocks(title="cables-qa") as demo:
        head = gr.HTML(header(counts_html), elem_id="desk-header")
        turns = gr.State([])
        viewing = gr.State(None)  # the cable open in the viewer, for "reftel A" in the next question
        with gr.Tabs():
            with gr.Tab("Desk", id="desk"), gr.Row(equal_height=False):
                with gr.Column(scale=5, min_width=380):
                    chat = gr.Chatbot(label="Answers", height=500, elem_id="chat", feedback_options=None,
                                      buttons=["copy"], placeholder="Ask a question: the answer quotes the cables, "
                                      "each statement with a numbered citation you can click.")
                    with gr.Row():
                        question = gr.Textbox(placeholder=f"Ask a question about the cables (up to "
                                              f"{MAX_QUESTION_CHARS:,} characters)…", show_label=False, scale=5,
                                              max_lines=4, elem_id="question")
                        ask = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                    active = gr.HTML(desk.filter_note("", "", "", "", ""), elem_id="active-filters")
                    with gr.Accordion("Filters (applied to the next question)", open=True, elem_id="filters"):
                        with gr.Row():
                            origin = gr.Dropdown(_choices("Any post", facets["origins"]), value="", label="Post",
                                                 elem_id="filter-origin")
                            classification = gr.Dropdown(_choices("Any classification", facets["classifications"]),
                                                         value="", label="Classification",
                                                         elem_id="filter-classification")
                        with gr.Row():
                            date_from = gr.Textbox(label="From (YYYY-MM-DD)", elem_id="filter-from")
                            date_to = gr.Textbox(label="To (YYYY-MM-DD)", elem_id="filter-to")
                            tag = gr.Dropdown(_choices("Any tag", facets["tags"]), value="", label="Tag",
                                              elem_id="filter-tag")
                        clear = gr.Button("Clear filters", size="sm", elem_id="clear-filters")
                    gr.Examples(EXAMPLES, inputs=question, label="Examples")
                    with gr.Row():
                        export = gr.DownloadButton("Export conversation (.md)", value=None, size="sm",
                                                   elem_id="export")
                        restart = gr.Button("New conversation", size="sm", elem_id="new-conversation")
                with gr.Column(scale=4, min_width=320):
                    gr.Markdown("#### Evidence")
                    evidence = gr.HTML(webui.evidence_html(None), elem_id="evidence", js_on_load=webui.EVIDENCE_JS)
                    gr.Markdown("#### Timeline")
                    timeline = gr.HTML(timeline_html([]), elem_id="timeline")
                with gr.Column(scale=5, min_width=380):
                    gr.Markdown("#### Cable")
                    viewer = gr.HTML(webui.cable_html(None), elem_id="viewer", js_on_load=webui.VIEWER_JS)
            with gr.Tab("Library", id="library"):
                counts = gr.HTML(counts_html, elem_id="library-counts")
                if allow_upload:
                    files = gr.File(file_count="multiple", type="filepath", elem_id="upload",
                                    label="Cable files to add (.txt, .html, .md, .csv, .jsonl)")
                    ingest = gr.Button("Ingest", variant="primary", elem_id="ingest")
                    status = gr.HTML("", elem_id="ingest-status")
                else:
                    gr.Markdown("Adding cables from the browser is off. Start the app with `--allow-upload` to turn "
                                "it on, or run `cables ingest PATH` and restart.")

        filter_inputs = [origin, date_from, date_to, tag, classification]

        def run_ask(text, messages, conversation, open_cable, *filters):
            for step in desk.ask(text, messages, conversation, *filters, viewing=open_cable):
                yield tuple(gr.skip() if value is None else value for value in step)

        def open_clicked(conversation, event: gr.EventData):
            return desk.open_event(getattr(event, "_data", None), conversation)

        open_clicked.__annotations__["event"] = gr.EventData  # resolved here: gradio is imported locally

        ask_outputs = [chat, question, turns, evidence, viewer, timeline, export, viewing]
        for trigger in (ask.click, question.submit):
            trigger(run_ask, [question, chat, turns, viewing, *filter_inputs], ask_outputs, api_name=False)
        evidence.click(open_clicked, [turns], [viewer, viewing], api_name=False)
        for component in filter_inputs:
            component.change(desk.filter_note, filter_inputs, active, api_name=False)
        clear.click(lambda: ("", "", "", "", ""), None, filter_inputs, api_name=False)
        def fresh():
            return [], [], webui.evidence_html(None), webui.cable_html(None), timeline_html([]), None

        restart.click(fresh, None, [chat, turns, evidence, viewer, timeline, export], api_name=False)
        chat.clear(lambda: fresh()[1:], None, [turns, evidence, viewer, timeline, export], api_name=False)
        if allow_upload:
            def run_ingest(paths, progress=gr.Progress()):  # noqa: B008 - how Gradio asks for a progress bar
                line = desk.ingest(paths, progress)
                new, new_counts = desk.facets(), desk.library_html()
                return (line, header(new_counts), new_counts, None,
                        gr.update(choices=_choices("Any post", new["origins"])),
                        gr.update(choices=_choices("Any tag", new["tags"])),
                        gr.update(choices=_choices("Any classification", new["classifications"])))

            ingest.click(run_ingest, [files], [status, head, counts, files, origin, tag, classification],
                         api_name=False)
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
    return library


def serve(home: str | None = None, model: str | None = None, backend: str = "auto", host: str = "127.0.0.1",
          port: int = 7860, auth: str | None = None, seeds: str | None = None, allow_upload: bool = False) -> int:
    auth = auth or os.environ.get("CABLES_AUTH")
    credentials = None
    if auth:
        if ":" not in auth:
            print("cables: error: --auth must be USER:PASS", file=sys.stderr)
            return 2
        credentials = tuple(auth.split(":", 1))
    # Gradio serves only its upload/cache folder: make it private to this server (not the shared /tmp/gradio),
    # and remove it when the server stops (Ctrl-C or SIGTERM)
    private = Path(tempfile.mkdtemp(prefix="cables-ui-"))
    atexit.register(shutil.rmtree, private, ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    os.environ.setdefault("GRADIO_TEMP_DIR", str(private / "gradio"))
    try:
        library = prepare(home, model, backend, seeds)
        # the model and the vector index load (mostly file reads, without the GIL) while Gradio is imported
        # and the page built, and are ready before the server answers: 2 s of a 10 s start at a million paragraphs
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="load") as pool:
            loading = pool.submit(library.load)
            import gradio as gr
            from starlette.middleware import Middleware

            from qa import webui
            from qa.ui_guard import NoRemoteFiles

            demo = build(library, allow_upload=allow_upload, export_dir=private / "exports")
            loading.result()
    except CablesError as error:
        print(f"cables: error: {error}", file=sys.stderr)
        return error.exit_code
    demo.queue(default_concurrency_limit=4)
    print(f"Serving on http://{host}:{port}" + (" (uploads on)" if allow_upload else ""), file=sys.stderr, flush=True)
    # system fonts: the UI makes no request outside this machine (and works offline)
    theme = gr.themes.Default(primary_hue="blue", font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])
    demo.launch(server_name=host, server_port=port, auth=credentials, css=webui.CSS, theme=theme, show_error=False,
                footer_links=["api"], ssr_mode=False, blocked_paths=[str(library.home.resolve())],
                max_file_size=UPLOAD_LIMIT if allow_upload else "1kb",
                app_kwargs={"middleware": [Middleware(NoRemoteFiles)]})
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
    parser.add_argument("--allow-upload", action="store_true",
                        help="let users add cable files from the browser (Library tab); off by default")
    args = parser.parse_args(argv)
    return serve(args.home, args.model, args.backend, args.host, args.port, args.auth, args.seeds, args.allow_upload)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())

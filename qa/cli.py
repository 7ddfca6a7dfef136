"""The `cables` command line. Library errors become one-line messages and documented exit codes here.

Exit codes: 0 success; 1 unexpected error; 2 bad query or usage; 3 input problems (ingest: some files or
rows were skipped, the rest was stored); 4 store problem; 5 model problem; 6 the Ray cluster failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from qa.errors import CablesError, QueryError
from qa.filters import Filters
from qa.records import printed_number

EXIT_SKIPPED = 3
_ORDINAL = re.compile(r"(¶\w+) \((?=\d+(?:st|nd|rd|th)\))")  # "¶6 (2nd)": a citation kept on one line
_GLUED_ORDINAL = re.compile(r"(¶\w+)\u00a0\((?=\d+(?:st|nd|rd|th)\))")


def quiet_libraries() -> None:
    """No model-loading progress bars from transformers / the hub in our output."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: Sequence[str] | None = None) -> int:
    quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args) or 0
    except CablesError as error:
        print(f"cables: error: {error}", file=sys.stderr)
        return error.exit_code
    except sqlite3.DatabaseError as error:  # pages damaged after the store opened, or a disk that filled up
        problem = ("cannot be written (free some space, then run the same command again)" if "full" in str(error)
                   else "is damaged (run `cables doctor` to see what can be rebuilt, or restore a backup)")
        print(f"cables: error: the store database {problem}: {error}", file=sys.stderr)
        return 4
    except BrokenPipeError:  # `cables show ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("cables: interrupted; what was stored so far is kept (run the same command again to continue)",
              file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cables", description="Question answering over US diplomatic cables, with paragraph citations.",
        epilog="Store: --home or $CABLES_HOME (default ./.cables)")
    sub = parser.add_subparsers(metavar="COMMAND")

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--home", help="store folder (default $CABLES_HOME or ./.cables)")
        p.add_argument("--model", help="embedding model name or path (default: the bundled all-MiniLM-L6-v2 with "
                       "the cables adapter; all-MiniLM-L6-v2 for the plain model)")
        p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                       help="embedding backend (auto: onnx int8 on CPU, torch on GPU)")
        p.set_defaults(handler=handler)
        return p

    p = command("ingest", cmd_ingest, "Parse cable files/folders (.txt, .html, .md, .csv, .jsonl) into the store.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="ray: parse and embed on a Ray cluster (pip install '.[ray]'; see docs/scaling.md)")
    p.add_argument("--address", help="Ray cluster HOST:PORT or 'auto' (default $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--gpus-per-actor", type=float, metavar="N",
                   help="GPUs per embedding actor (default 1 when the cluster has GPUs, else CPU actors)")

    p = command("search", cmd_search, "Find the paragraphs that answer a question (or name a cable id).")
    p.add_argument("question", nargs="?")
    _add_filters(p)
    p.add_argument("-k", type=int, default=10, help="number of paragraphs (1-1000, default 10)")
    p.add_argument("--mode", choices=("hybrid", "bm25", "dense"), default="hybrid")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument("--batch", metavar="FILE.jsonl",
                   help='one {"question": ..., "filters": {...}} per line; prints one JSON line per question')

    p = command("ask", cmd_ask, "Answer a question from the cables, citing paragraphs.")
    p.add_argument("question")
    _add_filters(p)
    p.add_argument("--json", action="store_true")

    p = command("show", cmd_show, "Print a stored cable (or one paragraph of it).")
    p.add_argument("cable_id")
    p.add_argument("--para", help="only this paragraph label")
    p.add_argument("--json", action="store_true")

    p = command("stats", cmd_stats, "Counts of cables, paragraphs, posts and years in the store.")
    p.add_argument("--json", action="store_true")

    p = command("export", cmd_export, "Write every stored cable as JSONL (re-ingestable).")
    p.add_argument("-o", "--output", help="file to write (default: standard output)")

    p = command("glossary", cmd_glossary, "Explain cable abbreviations (GOK, DCM, REFTEL...).")
    p.add_argument("term", nargs="?")

    p = command("eval", cmd_eval, "Retrieval quality on a question file: Recall@1/5/10 and MRR@10.")
    p.add_argument("questions", metavar="QUESTIONS.jsonl")
    p.add_argument("-k", "--k", type=int, default=10, help="ranks looked at (default 10)")
    p.add_argument("--mode", choices=("hybrid", "bm25", "dense", "all"), default="hybrid")
    p.add_argument("--json", action="store_true")

    p = command("doctor", cmd_doctor, "Check the store (database, vectors, keyword and vector indexes); --repair "
                                      "rebuilds what can be rebuilt from the stored rows.")
    p.add_argument("--repair", action="store_true", help="rebuild keyword rows, missing vectors and the vector index")
    p.add_argument("--json", action="store_true")

    p = command("serve", cmd_serve, "Serve the web UI (same as python app.py).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--auth", help="USER:PASS required to use the UI (or $CABLES_AUTH)")
    p.add_argument("--seeds", help="folder ingested when the store is empty (default: the bundled seeds)")
    p.add_argument("--allow-upload", action="store_true", help="let users add cable files from the browser")
    return parser


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--origin", help="post, e.g. 'Embassy Madrid' or 'Madrid' (substring)")
    p.add_argument("--year", type=int)
    p.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD")
    p.add_argument("--tag", help="TAGS code, e.g. PREL")
    p.add_argument("--classification", help="e.g. SECRET, CONFIDENTIAL")
    p.add_argument("--viewing", metavar="CABLE_ID", help="the cable you are reading: 'reftel A' / 'ref B' in the "
                   "question then mean its references")


def _filters(args: argparse.Namespace) -> Filters:
    return Filters.make(origin=args.origin, year=args.year, date_from=args.date_from, date_to=args.date_to,
                        tag=args.tag, classification=args.classification)


def _library(args: argparse.Namespace, existing: bool = True):
    """The store named by --home / $CABLES_HOME; commands that only read it refuse a folder that holds none."""
    from qa.errors import StoreError
    from qa.library import DB_FILE, Library, default_home

    home = Path(args.home) if args.home else default_home()
    if existing and not (home / DB_FILE).exists():
        raise StoreError(f"no store at {home}: run `cables ingest PATH --home {home}` first, or check --home "
                         "and $CABLES_HOME")
    return Library(home, model=args.model, backend=args.backend)


def cmd_ingest(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        from qa.distributed import require_ray

        require_ray()
    library = _library(args, existing=False)
    from qa.progress import ProgressBar

    progress = ProgressBar(enabled=not args.quiet and not args.json)
    if args.engine == "ray":
        from qa.distributed import ingest_on_ray

        run = ingest_on_ray(library, args.paths, address=args.address, gpus_per_actor=args.gpus_per_actor,
                            on_progress=progress)
        report = run.report
        cluster_note = (f"ray: {run.actors} embedding actors ({run.gpus_per_actor:g} GPU each), work done on "
                        f"{len(run.nodes)} nodes in {run.seconds:.1f} s")
    else:
        report = library.ingest(args.paths, on_progress=progress)
        cluster_note = None
    progress.close()
    if cluster_note:
        print(cluster_note, file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for note in report.duplicates:
            print(f"duplicate: {note}")
        for path, reason in report.skipped:
            print(f"skipped: {reason if reason.startswith(path) else f'{path}: {reason}'}", file=sys.stderr)
        print(report.summary())
    return 0 if report.ok else EXIT_SKIPPED


def cmd_search(args: argparse.Namespace) -> int:
    library = _library(args)
    if args.batch:
        return _search_batch(library, args)
    if not args.question:
        raise QueryError("give a QUESTION (or --batch FILE.jsonl)")
    filters = _filters(args)
    hits = library.search(args.question, k=args.k, filters=filters, mode=args.mode, viewing=args.viewing)
    if args.json:
        print(json.dumps({"question": args.question, "filters": filters.to_dict(),
                          "hits": [h.to_json() for h in hits]}, indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print(f"No paragraph found (filters: {filters.describe()}).")
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank:>2}. [{hit.citation}] {hit.subject or '(no subject)'}")
        print(f"    {hit.origin or '?'}, {hit.created or 'date unknown'}, {hit.classification or '?'}"
              f"  score {hit.score:.4f}")
        print(_wrap(_clip(hit.text, 400), "    "))
    return 0


def _search_batch(library, args: argparse.Namespace) -> int:
    path = Path(args.batch)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise QueryError(f"{path}: cannot read the batch file ({error.strerror})") from error
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            question = item["question"]
            filters = Filters.from_dict(item.get("filters"))
            hits = library.search(question, k=args.k, filters=filters, mode=args.mode)
        except QueryError as error:
            raise QueryError(f"{path}: line {number}: {error}") from error
        except (ValueError, KeyError, TypeError) as error:
            raise QueryError(f"{path}: line {number}: expected {{\"question\": ..., \"filters\": {{...}}}} "
                             f"({error})") from error
        line = json.dumps({"question": question, "filters": filters.to_dict(), "hits": [h.to_json() for h in hits]},
                          ensure_ascii=False)
        # U+2028/U+2029/U+0085 are valid inside JSON strings but split lines for many readers: keep one per line
        print(line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085"),
              flush=True)
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    library = _library(args)
    answer = library.ask(args.question, filters=_filters(args), viewing=args.viewing)
    if args.json:
        print(json.dumps(answer.to_json(), indent=2, ensure_ascii=False))
        return 0
    print(_wrap(answer.to_markdown()))
    if answer.answered:
        print("\nSources:")
        for hit in answer.hits:
            print(f"  [{hit.citation}] {hit.subject or '(no subject)'} — {hit.origin or '?'}, "
                  f"{hit.created or 'date unknown'}")
            print(_wrap(_clip(hit.text, 600), "      "))
    return 0


def _wrap(text: str, indent: str = "", width: int = 100) -> str:
    """Text wrapped line by line: a paragraph's own line breaks (list items) stay, as in the web view, a
    hyphenated word is never cut at its hyphen and a citation ("05ALMATY342 ¶4") never across two lines, so
    what is copied from the terminal reads as the cable does."""
    glued = _ORDINAL.sub("\\1\u00a0(", text.replace(" ¶", "\u00a0¶"))  # textwrap splits on ASCII spaces only
    wrapped = "\n".join(textwrap.fill(line, width=width, initial_indent=indent, subsequent_indent=indent,
                                      break_on_hyphens=False) for line in glued.split("\n"))
    return _GLUED_ORDINAL.sub("\\1 (", wrapped.replace("\u00a0¶", " ¶"))


def _numbered(label: str, wanted: str) -> bool:
    """`--para 6` is every paragraph the cable numbers 6 ("6", and "6 (2nd)" where it gives 6 twice);
    `--para "6 (2nd)"` is that one."""
    wanted = wanted.strip()
    return label == wanted or printed_number(label) == wanted


def cmd_show(args: argparse.Namespace) -> int:
    library = _library(args)
    cable = library.cable(args.cable_id)
    if cable is None:
        raise QueryError(f"cable {args.cable_id} is not in the store {library.home}; `cables search` finds ids")
    paragraphs = [p for p in cable.paragraphs if args.para is None or _numbered(p.label, args.para)]
    if args.para is not None and not paragraphs:
        labels = ", ".join(p.label for p in cable.paragraphs)
        raise QueryError(f"cable {cable.id} has no paragraph {args.para}; its paragraphs are {labels}")
    if args.json:
        data = cable.to_json()
        data["paragraphs"] = [p for p in data["paragraphs"] if args.para is None or _numbered(p["label"], args.para)]
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(f"{cable.id}  {cable.classification or ''}")
    print(f"Created: {cable.created or 'unknown'}   Origin: {cable.origin or 'unknown'}")
    print(f"Subject: {cable.subject or '(none)'}")
    print(f"Tags: {' '.join(cable.tags) or '(none)'}   References: {', '.join(cable.references) or '(none)'}")
    print(f"Signed: {cable.signer or '(unknown)'}   Source: {cable.source or '?'}\n")
    for p in paragraphs:
        if p.heading:
            print(f"    {p.heading}\n")
        marking = f"({p.marking}) " if p.marking else ""
        print(_wrap(f"¶{p.label}. {marking}{p.text}") + "\n")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    stats = _library(args).stats()
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        for key, value in stats.items():
            print(f"{key:>12}: {value}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    library = _library(args)
    if not args.output:
        _export(library, sys.stdout)
        return 0
    with open(args.output, "w", encoding="utf-8") as out:
        _export(library, out)
    return 0


def _export(library, out) -> None:
    for cable in library.store.cables():
        out.write(json.dumps(cable.to_json(), ensure_ascii=False) + "\n")


def cmd_glossary(args: argparse.Namespace) -> int:
    from qa import glossary

    entries = glossary.search(args.term) if args.term else sorted(glossary.GLOSSARY.items())
    if not entries:
        print(f"'{args.term}' is not in the glossary.")
        return 2
    for term, meaning in entries:
        print(f"{term:<10} {meaning}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from qa.evaluate import evaluate, format_table, load_questions

    library = _library(args)
    questions = load_questions(args.questions)
    modes = ["hybrid", "bm25", "dense"] if args.mode == "all" else [args.mode]
    results = {mode: evaluate(library, questions, k=args.k, mode=mode) for mode in modes}
    if args.json:
        print(json.dumps({mode: r.to_json() for mode, r in results.items()}, indent=2))
    else:
        print(format_table(results))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from qa.doctor import doctor
    from qa.library import default_home

    report = doctor(args.home or default_home(), repair=args.repair, model=args.model, backend=args.backend)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.lines()))
    return report.exit_code


def cmd_serve(args: argparse.Namespace) -> int:
    import app

    return app.serve(home=args.home, model=args.model, backend=args.backend, host=args.host, port=args.port,
                     auth=args.auth, seeds=args.seeds, allow_upload=args.allow_upload)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"

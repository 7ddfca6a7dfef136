#!/usr/bin/env python3
"""Check the adapter's training questions against a store holding the shared corpus (standard library only).

    python3 bench/check_trainset.py --home STORE bench/trainset/part-*.jsonl

For each line: a JSON record with qid, question, cable_id, para, answer_span, type; qids unique across files; the
cable and the paragraph exist in STORE; the whitespace-normalised, lower-cased answer_span (6+ words) occurs in
that paragraph's stored text; no question is about a cable that bench/devset.jsonl asks about (the development
set stays held out). Paraphrase questions sharing more than 35% of their content words with their paragraph are
reported as warnings. Exits 1 on any error.
"""
import argparse
import json
import re
import sqlite3
import sys
from pathlib import Path

_STOP_TEXT = ("a about above after again against all also am an and any are as at be because been before being below "
           "between both but by can could did do does doing down during each few for from further had has have "
           "having he her here hers him his how i if in into is it its itself just me more most my no nor not now "
           "of off on once only or other our out over own same she should so some such than that the their them "
           "then there these they this those through to too under until up very was we were what when where which "
           "while who whom why will with would you your")
STOP = set(_STOP_TEXT.split())
DEVSET = Path(__file__).resolve().parent / "devset.jsonl"


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP and len(w) > 2}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--home", type=Path, required=True)
    args = parser.parse_args()
    db = sqlite3.connect(f"file:{args.home / 'cables.db'}?mode=ro", uri=True)
    held_out = {json.loads(line)["cable_id"] for line in DEVSET.read_text().splitlines() if line.strip()}
    errors, warnings, seen, counts = 0, 0, set(), {}
    for path in args.files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                q = json.loads(line)
                qid, cable, para, span, kind = (q["qid"], q["cable_id"], str(q["para"]), q["answer_span"], q["type"])
                q["question"]
            except (ValueError, KeyError) as error:
                print(f"{where}: not a question record ({error})")
                errors += 1
                continue
            counts[kind] = counts.get(kind, 0) + 1
            problems = []
            if qid in seen:
                problems.append(f"duplicate qid {qid}")
            seen.add(qid)
            if cable in held_out:
                problems.append(f"{cable} is a development-set cable")
            row = db.execute("SELECT text FROM paragraphs WHERE cable_id=? AND label=?", (cable, para)).fetchone()
            if row is None:
                problems.append(f"{cable} has no paragraph {para!r}")
            elif len(span.split()) < 6 or norm(span) not in norm(row[0]):
                problems.append(f"answer_span not found verbatim (6+ words) in {cable} ¶{para}")
            for problem in problems:
                print(f"{where}: {problem}")
            errors += len(problems)
            if row is not None and kind == "paraphrase":
                asked = words(q["question"])
                share = len(asked & words(row[0])) / max(1, len(asked))
                if share > 0.35:
                    print(f"{where}: warning: the paraphrase shares {share:.2f} of its words with its paragraph")
                    warnings += 1
    print(f"{len(seen)} questions in {len(args.files)} files, {errors} errors, {warnings} warnings, types {counts}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

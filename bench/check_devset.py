#!/usr/bin/env python3
"""Validate bench/devset.jsonl against the Cablegate HTML corpus.

Standard library only. Usage (from the repo root or anywhere):

    python3 bench/check_devset.py [--devset bench/devset.jsonl] [--corpus DIR]

For every line it checks: valid JSON with all required keys; a known type;
the cable file exists; the paragraph exists; the whitespace-normalised
answer_span occurs in the whitespace-normalised paragraph text (tags
stripped, entities unescaped); filtered questions' filters match the
cable's metadata; qids are unique. Prints per-type counts and every
failure; exits 1 if anything fails.
"""
import argparse
import collections
import html
import json
import os
import re
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CORPUS = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "corpus", "cablegate-html"))
DEFAULT_DEVSET = os.path.join(REPO_ROOT, "bench", "devset.jsonl")

REQUIRED_KEYS = ("qid", "question", "cable_id", "para", "answer_span", "type", "filters")
TYPES = ("paraphrase", "entity", "acronym", "filtered", "summary")
FILTER_KEYS = ("origin", "year", "from", "to", "tag")

TABLE_RE = re.compile(r"<table class='cable'>(.*?)</table>", re.S)
TD_RE = re.compile(r"<td>(.*?)</td>", re.S)
PRE_RE = re.compile(r"<code><pre>(.*?)</pre></code>", re.S)
PAR_RE = re.compile(r"<a id='par([^']*)' href='#par[^']*'>\s*\u00b6\s*</a>")
TAG_RE = re.compile(r"<[^>]+>")
TAGS_LINE_RE = re.compile(r"TAGS:(.*?)(?:&#x000A;|\n)", re.S)
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def norm_ws(text):
    return " ".join(text.split())


def clean(fragment):
    """Strip tags, unescape entities, normalise whitespace."""
    return norm_ws(html.unescape(TAG_RE.sub("", fragment)))


def parse_cable(path):
    """Return dict with metadata and paragraphs {num: [text, ...]}."""
    with open(path, encoding="utf-8") as fh:
        raw = fh.read()
    meta = {}
    m = TABLE_RE.search(raw)
    if m:
        cells = [clean(c) for c in TD_RE.findall(m.group(1))]
        if len(cells) >= 5:
            meta = {
                "reference_id": cells[0],
                "created": cells[1],
                "released": cells[2],
                "classification": cells[3],
                "origin": cells[4],
            }
    pres = PRE_RE.findall(raw)
    body = pres[-1] if pres else ""
    tags = []
    tm = TAGS_LINE_RE.search(body)
    if tm:
        tags = clean(tm.group(1)).replace(",", " ").split()
    meta["tags"] = tags
    paras = collections.OrderedDict()
    matches = list(PAR_RE.finditer(body))
    for i, pm in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        text = clean(body[pm.end():end])
        paras.setdefault(pm.group(1), []).append(text)
    return {"meta": meta, "paras": paras, "body": clean(body)}


def check_filters(filters, meta):
    errs = []
    if not isinstance(filters, dict) or not filters:
        return ["filtered question needs a non-empty filters object"]
    unknown = set(filters) - set(FILTER_KEYS)
    if unknown:
        errs.append(f"unknown filter keys {sorted(unknown)}")
    created = meta.get("created", "")
    cdate = created[:10]
    if "origin" in filters and filters["origin"] != meta.get("origin"):
        errs.append("origin {!r} != cable origin {!r}".format(filters["origin"], meta.get("origin")))
    if "year" in filters:
        y = filters["year"]
        if not isinstance(y, int) or isinstance(y, bool):
            errs.append(f"year must be an int, got {y!r}")
        elif str(y) != cdate[:4]:
            errs.append(f"year {y!r} != cable year {cdate[:4]!r}")
    for key in ("from", "to"):
        if key in filters:
            v = filters[key]
            if not isinstance(v, str) or not DATE_RE.match(v):
                errs.append(f"{key} must be YYYY-MM-DD, got {v!r}")
            elif key == "from" and cdate < v:
                errs.append(f"cable date {cdate} before from={v}")
            elif key == "to" and cdate > v:
                errs.append(f"cable date {cdate} after to={v}")
    if "tag" in filters and filters["tag"] not in meta.get("tags", []):
        errs.append("tag {!r} not in cable tags {!r}".format(filters["tag"], meta.get("tags")))
    return errs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devset", default=DEFAULT_DEVSET)
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    args = ap.parse_args(argv)

    failures = []
    counts = collections.Counter()
    seen_qids = set()
    per_cable = collections.Counter()
    cache = {}
    n = 0

    with open(args.devset, encoding="utf-8") as fh:
        lines = fh.readlines()

    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        n += 1
        where = "line %d" % lineno

        def fail(msg):
            failures.append(f"{where}: {msg}")

        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            fail(f"invalid JSON: {e}")
            continue
        if not isinstance(rec, dict):
            fail("not a JSON object")
            continue
        missing = [k for k in REQUIRED_KEYS if k not in rec]
        if missing:
            fail(f"missing keys {missing}")
            continue
        where = "line %d (%s)" % (lineno, rec["qid"])
        for k in ("qid", "question", "cable_id", "para", "answer_span", "type"):
            if not isinstance(rec[k], str) or not rec[k].strip():
                fail(f"{k} must be a non-empty string")
        if not isinstance(rec["filters"], dict):
            fail("filters must be an object")
        if rec["qid"] in seen_qids:
            fail("duplicate qid {!r}".format(rec["qid"]))
        seen_qids.add(rec["qid"])
        qtype = rec["type"]
        counts[qtype] += 1
        if qtype not in TYPES:
            fail(f"unknown type {qtype!r}")
        if qtype != "filtered" and rec["filters"]:
            fail(f"filters must be empty for type {qtype!r}")

        cid = str(rec["cable_id"])
        per_cable[cid] += 1
        path = os.path.join(args.corpus, cid + ".html")
        if not os.path.isfile(path):
            fail(f"cable file not found: {path}")
            continue
        if cid not in cache:
            try:
                cache[cid] = parse_cable(path)
            except Exception as e:
                fail(f"could not parse {path}: {e}")
                continue
        cable = cache[cid]
        meta = cable["meta"]
        if meta.get("reference_id") != cid:
            fail("reference id in file {!r} != cable_id {!r}".format(meta.get("reference_id"), cid))
        para = str(rec["para"])
        texts = cable["paras"].get(para)
        if not texts:
            fail("paragraph {!r} not found in {} (have {})".format(para, cid, list(cable["paras"])))
        else:
            span = norm_ws(html.unescape(rec["answer_span"]))
            words = span.split()
            if not (6 <= len(words) <= 20):
                fail("answer_span has %d words (want 6-20)" % len(words))
            if not any(span in t for t in texts):
                fail(f"answer_span not found in {cid} par {para}: {span!r}")
        if qtype == "filtered":
            for e in check_filters(rec["filters"], meta):
                fail(e)

    for cid, c in per_cable.items():
        if c > 2:
            failures.append("cable %s used by %d questions (max 2)" % (cid, c))

    print(f"devset: {args.devset}")
    print(f"corpus: {args.corpus}")
    print("questions: %d, distinct cables: %d" % (n, len(per_cable)))
    for t in TYPES:
        print("  %-10s %d" % (t, counts.get(t, 0)))
    for t in sorted(set(counts) - set(TYPES)):
        print("  %-10s %d (unknown type)" % (t, counts[t]))
    if failures:
        print("FAILURES: %d" % len(failures))
        for f in failures:
            print("  " + f)
        return 1
    print("OK: 0 failures")
    return 0


if __name__ == "__main__":
    sys.exit(main())

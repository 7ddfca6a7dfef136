"""Hostile and broken queries through the real CLI and the library: clear answers, right exit codes, no crash and
no injection (FTS5 syntax and SQL in questions or filter values are only ever text)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from qa.errors import QueryError
from qa.filters import Filters
from qa.library import Library
from tests.conftest import run_cli

pytestmark = pytest.mark.slow
GUARANTEES = "What guarantees did Kazakhstan refuse to give about Guantanamo detainees?"
INJECTIONS = ["'; DROP TABLE cables; --", "\" OR 1=1 --", "x') UNION SELECT id, vector FROM paragraphs --",
              "guarantees\" OR \"1\"=\"1", "paragraphs_fts MATCH '*'"]
FTS_SYNTAX = ['"', '"guarantees', "guarant*", "*", "NEAR(guarantees detainees", "OR", "guarantees OR",
              "AND NOT detainees", "guarantees AND NOT", "body:guarantees", "^detainees", "{body context}: x",
              "NOT", "(((", "detainees -guarantees +Kazakhstan"]
CONTROL = "\x01guarantees\x07 refused\x1b[31m by \u200bKazakhstan\x7f\u2028detainees\t\r\n"


def schema_and_counts(home) -> tuple:
    with sqlite3.connect(home / "cables.db") as db:
        out = (db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall(),
               db.execute("SELECT count(*) FROM cables").fetchone(), db.execute("SELECT count(*) FROM paragraphs"
                                                                                ).fetchone())
    db.close()
    return out


@pytest.fixture(scope="module")
def library(seeds_home):
    lib = Library(seeds_home)
    yield lib
    lib.close()


def test_library_refuses_unusable_queries_with_query_errors(library):
    for query, message in (("", "the question is empty"), ("   \t\n", "the question is empty"),
                           ("\x00\x01\x02", "the question is empty"), ('"', "has no words"), ("*", "has no words"),
                           ("(((", "has no words")):
        with pytest.raises(QueryError, match=message):
            library.search(query)
    for k in (0, -1, 1001, 100_000):
        with pytest.raises(QueryError, match="k must be between 1 and 1000"):
            library.search(GUARANTEES, k=k)
    with pytest.raises(QueryError, match="unknown search mode"):
        library.search(GUARANTEES, mode="sql")
    with pytest.raises(QueryError, match="is not a date"):
        Filters.make(date_from="2005-13-45")
    with pytest.raises(QueryError, match="unknown filter 'author'"):
        Filters.from_dict({"author": "x"})
    with pytest.raises(QueryError, match="is not a year"):
        Filters.make(year="1=1")


def test_library_treats_syntax_and_sql_as_words(library, seeds_home):
    before = schema_and_counts(seeds_home)
    for query in ['"guarantees detainees', "NEAR(guarantees detainees", "guarantees OR", "guarantees AND NOT"]:
        for mode in ("hybrid", "bm25", "dense"):
            hits = library.search(query, k=5, mode=mode)
            assert "06ALMATY2399" in [h.cable_id for h in hits], (query, mode, [h.citation for h in hits])
    for query in FTS_SYNTAX + INJECTIONS:  # whatever the FTS5 grammar would make of them: results or a QueryError
        if any(ch.isalnum() for ch in query):
            library.search(query, k=5, mode="bm25")
            library.ask(query)
        else:
            with pytest.raises(QueryError, match="has no words"):
                library.ask(query)
    big = (GUARANTEES + " ") * 1400  # ~100 kB
    assert library.search(big, k=3)[0].cable_id == "06ALMATY2399"
    assert library.search(CONTROL, k=3)[0].cable_id == "06ALMATY2399"
    assert len(library.search(GUARANTEES, k=1000)) == 49  # k above the paragraph count returns what there is
    for filters in (Filters(origin="%"), Filters(origin="_"), Filters(tag="%"), Filters(classification="%"),
                    Filters(origin="x' OR '1'='1"), Filters(origin="Almaty' --"), Filters(origin="Embassy Nowhere"),
                    Filters(year=1850), Filters(date_from="2030-01-01"), Filters(tag="NOSUCHTAG")):
        assert library.search(GUARANTEES, filters=filters) == [], filters
        assert not library.ask(GUARANTEES, filters=filters).answered
    assert schema_and_counts(seeds_home) == before


def test_cli_exit_codes_and_one_line_messages(seeds_home):
    for args, message in ((("search", ""), "give a QUESTION"), (("search", " \t "), "the question is empty"),
                          (("search", "* ( \""), "has no words"), (("ask", "   "), "the question is empty"),
                          (("search", GUARANTEES, "-k", "0"), "k must be between 1 and 1000 (got 0)"),
                          (("search", GUARANTEES, "-k", "100000"), "k must be between 1 and 1000 (got 100000)"),
                          (("search", GUARANTEES, "--to", "'; DROP TABLE cables; --"), "is not a date")):
        result = run_cli(*args, home=seeds_home)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and result.stderr.strip().count("\n") == 0, (args, result.stderr)
        assert result.stdout == "" and "Traceback" not in result.stderr
    for args in (("search", GUARANTEES, "--year", "1=1"), ("search", GUARANTEES, "--mode", "sql")):
        result = run_cli(*args, home=seeds_home)  # argparse refuses these before anything runs
        assert result.returncode == 2 and "invalid" in result.stderr


def test_cli_batch_of_hostile_questions_answers_each_without_harm(seeds_home, tmp_path):
    before = schema_and_counts(seeds_home)
    questions = [q for q in FTS_SYNTAX if any(ch.isalnum() for ch in q)] + INJECTIONS
    questions += [CONTROL, (GUARANTEES + " ") * 1400]
    lines = [{"question": q} for q in questions]
    lines += [{"question": GUARANTEES, "filters": {"origin": value}} for value in ("%", "x' OR '1'='1", "Nowhere")]
    lines += [{"question": GUARANTEES, "filters": {"year": 1850}}, {"question": GUARANTEES, "filters": {"tag": "%"}}]
    batch = tmp_path / "hostile.jsonl"
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result = run_cli("search", "--batch", str(batch), "-k", "5", home=seeds_home)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(lines)
    by_question = {a["question"]: a for a in answers if not a["filters"]}
    assert by_question[CONTROL]["hits"][0]["cable_id"] == "06ALMATY2399"
    assert by_question[(GUARANTEES + " ") * 1400]["hits"][0]["cable_id"] == "06ALMATY2399"
    assert by_question["NEAR(guarantees detainees"]["hits"][0]["cable_id"] == "06ALMATY2399"
    assert all(a["hits"] == [] for a in answers if a["filters"])  # filter values never widen a search
    assert schema_and_counts(seeds_home) == before
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"question": "x", "filters": {"author": "me"}}) + "\n", encoding="utf-8")
    refused = run_cli("search", "--batch", str(unknown), home=seeds_home)
    assert refused.returncode == 2 and "line 1" in refused.stderr and "unknown filter 'author'" in refused.stderr

"""Retrieval through the real stack (real model, SQLite FTS5, FAISS, the CLI) on a slice of the shared corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, SEEDS, run_cli

DEVSET = ROOT / "bench" / "devset.jsonl"
SLICE_CABLES = 30


@pytest.fixture(scope="module")
def slice_store(tmp_path_factory) -> tuple[Path, Path]:
    """(store, questions): the seeds plus the cables of the first dev-set questions, and those questions."""
    from tests.conftest import SHARED_CORPUS

    if not SHARED_CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS} (clone the project beside ../shared)")
    questions = [json.loads(line) for line in DEVSET.read_text().splitlines() if line.strip()]
    cables = list(dict.fromkeys(q["cable_id"] for q in questions))[:SLICE_CABLES]
    chosen = [q for q in questions if q["cable_id"] in cables]
    root = tmp_path_factory.mktemp("retrieval")
    corpus = root / "slice"
    corpus.mkdir()
    for cable in cables:
        (corpus / f"{cable}.html").write_bytes((SHARED_CORPUS / f"{cable}.html").read_bytes())
    question_file = root / "questions.jsonl"
    question_file.write_text("".join(json.dumps(q) + "\n" for q in chosen))
    home = root / "home"
    run_cli("ingest", str(SEEDS), str(corpus), "--quiet", home=home, check=True)
    return home, question_file


def test_hybrid_is_as_good_as_the_better_side_and_finds_most_answers(slice_store):
    """On 30 cables the adapted dense side alone is strong; hybrid must not lose to it (one question of slack:
    on the whole development set and the held-out training part hybrid leads by 3-4 points, see README)."""
    home, questions = slice_store
    result = run_cli("eval", str(questions), "--mode", "all", "--json", home=home, check=True)
    metrics = {mode: data["overall"] for mode, data in json.loads(result.stdout).items()}
    n = metrics["hybrid"]["n"]
    assert n >= 30
    for measure in ("R@5", "MRR@10"):
        best_side = max(metrics["bm25"][measure], metrics["dense"][measure])
        assert metrics["hybrid"][measure] >= best_side - 1 / n, (measure, metrics)
    assert metrics["hybrid"]["R@5"] >= 0.9 and metrics["hybrid"]["R@5"] > metrics["bm25"]["R@5"]


def test_table_output_has_the_three_modes_and_each_question_type(slice_store):
    home, questions = slice_store
    table = run_cli("eval", str(questions), "--mode", "all", "--k", "10", home=home, check=True).stdout
    assert "hybrid R@5" in table and "bm25 MRR@10" in table and "dense R@1" in table
    kinds = {json.loads(line)["type"] for line in questions.read_text().splitlines()}
    assert all(f"| {kind} |" in table for kind in kinds)


def test_filtered_search_returns_only_matching_paragraphs_and_finds_the_answer(slice_store):
    home, questions = slice_store
    filtered = [json.loads(line) for line in questions.read_text().splitlines() if '"filtered"' in line]
    assert filtered, "the slice should hold filtered questions"
    found = 0
    for q in filtered:
        args = ["search", q["question"], "--json", "-k", "5"]
        if "origin" in q["filters"]:
            args += ["--origin", q["filters"]["origin"]]
        if "year" in q["filters"]:
            args += ["--year", str(q["filters"]["year"])]
        hits = json.loads(run_cli(*args, home=home, check=True).stdout)["hits"]
        assert hits
        for hit in hits:
            if "year" in q["filters"]:
                assert hit["created"].startswith(str(q["filters"]["year"]))
            if "origin" in q["filters"]:
                assert q["filters"]["origin"].lower() in hit["origin"].lower()
        found += any(h["cable_id"] == q["cable_id"] and h["paragraph"] == q["para"] for h in hits)
    assert found >= len(filtered) - 1


def test_exact_names_win_and_a_bare_id_opens_the_cable(seeds_home):
    hits = json.loads(run_cli("search", "Tuyakbay Weaver consultant letter", "--json", "-k", "3",
                              home=seeds_home, check=True).stdout)["hits"]
    assert hits[0]["citation"] == "05ALMATY2985 ¶14"
    bare = run_cli("search", "06ALMATY2399", "--json", "-k", "3", home=seeds_home, check=True)
    hits = json.loads(bare.stdout)["hits"]
    assert [h["citation"] for h in hits] == ["06ALMATY2399 ¶1", "06ALMATY2399 ¶2", "06ALMATY2399 ¶3"]


def test_glossary_terms_are_explained_and_widen_the_search(seeds_home):
    out = run_cli("glossary", "GOK", home=seeds_home, check=True).stdout
    assert "government of kazakhstan" in out
    question = "Would the GOK guarantee that returned detainees never again engage in terrorism?"
    for mode in ("hybrid", "dense", "bm25"):
        hits = json.loads(run_cli("search", question, "--mode", mode, "--json", "-k", "3",
                                  home=seeds_home, check=True).stdout)["hits"]
        assert "06ALMATY2399 ¶3" in [h["citation"] for h in hits], mode


def test_every_sentence_gets_its_own_vector_from_the_paragraphs_forward_pass(seeds_home):
    """Stored sentence vectors line up one for one with the sentences answers quote, and each is closest to its own
    sentence (embedded alone) among the paragraph's sentences."""
    import sqlite3

    import numpy as np

    from embeddings import load_embedder
    from qa.text import sentences

    embedder = load_embedder(None, cache_dir=seeds_home / "models")
    with sqlite3.connect(seeds_home / "cables.db") as db:
        rows = db.execute("SELECT text, sentence_vectors FROM paragraphs WHERE vector IS NOT NULL").fetchall()
    db.close()
    checked = 0
    for text, blob in rows:
        parts = np.frombuffer(blob, dtype=np.float16).reshape(-1, embedder.dim).astype(np.float32)
        said = sentences(text)
        assert len(parts) == len(said) and np.allclose(np.linalg.norm(parts, axis=1), 1.0, atol=1e-2)
        if len(said) >= 3:
            alone = embedder.embed(said)
            assert (np.argmax(alone @ parts.T, axis=1) == np.arange(len(said))).mean() >= 0.75
            checked += 1
    assert checked >= 10

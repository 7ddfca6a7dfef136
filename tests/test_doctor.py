"""Damaged stores through the real CLI: a clear message, and `cables doctor [--repair]` rebuilding what it can."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow
QUESTION = "What guarantees did Kazakhstan refuse to give about Guantanamo detainees?"


def citations(home) -> list[str]:
    data = json.loads(run_cli("search", QUESTION, "--json", "-k", "5", home=home, check=True).stdout)
    return [h["citation"] for h in data["hits"]]


def findings(result) -> dict[str, dict]:
    return {f["check"]: f for f in json.loads(result.stdout)["findings"]}


def test_healthy_store_passes_every_check(seeds_home):
    result = run_cli("doctor", "--json", home=seeds_home)
    assert result.returncode == 0, result.stdout + result.stderr
    found = findings(result)
    assert set(found) == {"database", "vectors", "keywords", "index"}
    assert all(f["ok"] for f in found.values())
    assert "49 paragraphs, 49 vectors" in found["vectors"]["message"]


def test_truncated_index_file_is_reported_and_rebuilt_from_the_database(seeds_home_copy):
    expected = citations(seeds_home_copy)
    faiss_file = seeds_home_copy / "index" / "vectors.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:1000])
    checked = run_cli("doctor", home=seeds_home_copy)
    assert checked.returncode == 4
    assert "PROBLEM index: " in checked.stdout and "vectors.faiss is damaged" in checked.stdout
    assert "cables doctor --repair" in checked.stdout
    search = run_cli("search", QUESTION, "--json", "-k", "5", home=seeds_home_copy)  # heals the cache itself
    assert search.returncode == 0 and "vectors.faiss is damaged" in search.stderr and "rebuilt" in search.stderr
    assert [h["citation"] for h in json.loads(search.stdout)["hits"]] == expected
    assert run_cli("doctor", home=seeds_home_copy).returncode == 0


def test_repair_re_embeds_missing_vectors_and_rebuilds_keyword_rows_and_index(seeds_home_copy):
    expected = citations(seeds_home_copy)
    db_path = seeds_home_copy / "cables.db"
    with sqlite3.connect(db_path) as db:
        keyword_rows = db.execute("SELECT rowid, body, context FROM paragraphs_fts ORDER BY rowid").fetchall()
        damaged = [r[0] for r in db.execute("SELECT id FROM paragraphs WHERE cable_id='06ALMATY2399' LIMIT 3")]
        before = {pid: np.frombuffer(v, dtype=np.float32) for pid, v in
                  db.execute(f"SELECT id, vector FROM paragraphs WHERE id IN ({','.join(map(str, damaged))})")}
        db.execute(f"UPDATE paragraphs SET vector=NULL WHERE id IN ({','.join(map(str, damaged))})")
        db.execute("DELETE FROM paragraphs_fts WHERE rowid IN (SELECT rowid FROM paragraphs_fts LIMIT 4)")
    db.close()
    (seeds_home_copy / "index" / "vectors.faiss").unlink()

    checked = run_cli("doctor", "--json", home=seeds_home_copy)
    assert checked.returncode == 4
    found = findings(checked)
    assert found["database"]["ok"]
    assert "3 paragraphs have no usable vector" in found["vectors"]["message"]
    assert "misses 4 paragraphs" in found["keywords"]["message"]
    assert not found["index"]["ok"] and all(f["repairable"] for f in found.values())

    repaired = run_cli("doctor", "--repair", home=seeds_home_copy)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "repaired: embedded 3 paragraphs" in repaired.stdout
    assert "repaired: rebuilt the keyword index (49 paragraphs)" in repaired.stdout
    assert "repaired: rebuilt the vector index from 49 stored vectors" in repaired.stdout
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT rowid, body, context FROM paragraphs_fts ORDER BY rowid").fetchall() == keyword_rows
        for pid, blob in db.execute(f"SELECT id, vector FROM paragraphs WHERE id IN ({','.join(map(str, damaged))})"):
            assert float(np.frombuffer(blob, dtype=np.float32) @ before[pid]) > 0.98  # same text, same model
    db.close()
    assert citations(seeds_home_copy) == expected
    assert run_cli("doctor", home=seeds_home_copy).returncode == 0


def test_truncated_database_gives_one_clear_line_and_exit_4(seeds_home_copy):
    db_path = seeds_home_copy / "cables.db"
    db_path.write_bytes(db_path.read_bytes()[: db_path.stat().st_size // 2])
    for args in (("search", QUESTION), ("stats",), ("doctor",), ("doctor", "--repair")):
        result = run_cli(*args, home=seeds_home_copy)
        assert result.returncode == 4, (args, result.stderr)
        assert "cables.db is not a usable cables database" in result.stderr
        assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


def test_damaged_pages_are_found_and_not_repaired_by_guessing(seeds_home_copy):
    db_path = seeds_home_copy / "cables.db"
    data = bytearray(db_path.read_bytes())
    middle = len(data) // 2 // 4096 * 4096
    data[middle:middle + 8192] = b"\xde\xad\xbe\xef" * 2048  # two whole pages of garbage
    db_path.write_bytes(bytes(data))
    checked = run_cli("doctor", home=seeds_home_copy)
    assert checked.returncode == 4
    assert "PROBLEM database: SQLite integrity_check failed" in checked.stdout
    assert "cannot be repaired in place" in checked.stdout
    repaired = run_cli("doctor", "--repair", home=seeds_home_copy)
    assert repaired.returncode == 4 and "cannot be repaired in place" in repaired.stdout
    search = run_cli("search", QUESTION, home=seeds_home_copy)
    assert search.returncode in (0, 4) and "Traceback" not in search.stderr
    if search.returncode == 4:
        assert "damaged" in search.stderr or "not a usable cables database" in search.stderr


def test_doctor_on_a_folder_without_a_store(tmp_path):
    result = run_cli("doctor", home=tmp_path / "nothing")
    assert result.returncode == 4 and "no store at" in result.stderr
    assert not (tmp_path / "nothing").exists()


def test_a_store_without_sentence_vectors_is_named_and_repaired(seeds_home_copy):
    db_path = seeds_home_copy / "cables.db"
    with sqlite3.connect(db_path) as db:
        before = dict(db.execute("SELECT id, sentence_vectors FROM paragraphs"))
        db.execute("UPDATE paragraphs SET sentence_vectors=NULL")  # as a store written before they existed
    db.close()
    assert "49 paragraphs have no usable vector (or sentence vectors)" in run_cli("doctor", home=seeds_home_copy).stdout
    repaired = run_cli("doctor", "--repair", home=seeds_home_copy)
    assert repaired.returncode == 0 and "embedded 49 paragraphs" in repaired.stdout
    with sqlite3.connect(db_path) as db:
        assert dict(db.execute("SELECT id, sentence_vectors FROM paragraphs")) == before  # the same bytes again
    db.close()


def test_a_store_from_an_earlier_adapter_is_noted_by_stats_and_doctor_but_stays_ok(seeds_home_copy):
    """The store reads right (its merged model is kept), so nothing fails; the note says how to get the new one."""
    from embeddings.model import default_model
    from qa.store import Store

    earlier = "all-MiniLM-L6-v2-cables-0123456789"
    store = Store(seeds_home_copy / "cables.db")
    store.set_meta("model", earlier)
    store.close()
    manifest = seeds_home_copy / "index" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "model": earlier}))
    checked = run_cli("doctor", "--json", home=seeds_home_copy)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    note = findings(checked)["model"]
    assert note["ok"] and earlier in note["message"] and default_model() in note["message"]
    assert "fresh --home" in note["message"]
    stats = json.loads(run_cli("stats", "--json", home=seeds_home_copy, check=True).stdout)
    assert stats["model"] == earlier and "fresh --home" in stats["model_note"]

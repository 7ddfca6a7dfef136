"""Ingest through the real store and FAISS index (fake embedder for speed): idempotence, dedupe, bad files."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np

from qa.library import Library
from tests.conftest import DATA, SEEDS


def test_ingest_seeds_then_reingest_adds_nothing(fake_library):
    report = fake_library.ingest([SEEDS])
    assert (report.files, report.cables_added, report.paragraphs_added, report.skipped) == (5, 5, 49, [])
    again = fake_library.ingest([SEEDS])
    assert (again.cables_added, again.paragraphs_added, again.unchanged_files) == (0, 0, 5)
    stats = fake_library.stats()
    assert (stats["cables"], stats["paragraphs"], stats["vectors"]) == (5, 49, 49)
    assert len(fake_library.index) == 49


def test_new_files_add_only_what_is_new(fake_library, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(next(SEEDS.glob("000_*")), folder)
    assert fake_library.ingest([folder]).cables_added == 1
    shutil.copy(next(SEEDS.glob("001_*")), folder)
    report = fake_library.ingest([folder])
    assert (report.cables_added, report.unchanged_files) == (1, 1)


def test_same_cable_from_two_sources_is_stored_once_keeping_the_more_complete(fake_library, tmp_path):
    full = next(SEEDS.glob("001_*")).read_text(encoding="utf-8")
    partial = full.split("4. (SBU)")[0]  # the same cable cut after paragraph 3
    (tmp_path / "partial.txt").write_text(partial, encoding="utf-8")
    (tmp_path / "full.txt").write_text(full, encoding="utf-8")
    first = fake_library.ingest([tmp_path / "partial.txt"])
    assert first.cables_added == 1
    second = fake_library.ingest([tmp_path / "full.txt"])
    assert second.cables_replaced == 1 and "replaced by the more complete copy" in second.duplicates[0]
    cable = fake_library.cable("05ALMATY342")
    assert len(cable.paragraphs) == 8 and cable.source.endswith("full.txt")
    third = fake_library.ingest([tmp_path / "partial.txt", tmp_path / "full.txt"])
    assert third.cables_added == 0 and third.unchanged_files == 2
    (tmp_path / "partial2.txt").write_text(partial + "\n", encoding="utf-8")
    fourth = fake_library.ingest([tmp_path / "partial2.txt"])
    assert fourth.cables_added == 0 and "more complete copy is already stored" in fourth.duplicates[0]
    stats = fake_library.stats()
    assert (stats["cables"], stats["paragraphs"], stats["vectors"], len(fake_library.index)) == (1, 8, 8, 8)


def test_year_unknown_copy_matches_the_dated_one(fake_library, tmp_path):
    seed = next(SEEDS.glob("003_*")).read_text(encoding="utf-8")
    dated = seed.replace("UNCLAS ALMATY 002058", "R 010101Z JUN 05\nFM AMEMBASSY ALMATY\n\nUNCLAS ALMATY 002058")
    (tmp_path / "undated.md").write_text(seed, encoding="utf-8")
    (tmp_path / "dated.txt").write_text(dated, encoding="utf-8")
    fake_library.ingest([tmp_path / "undated.md"])
    fake_library.ingest([tmp_path / "dated.txt"])
    assert fake_library.stats()["cables"] == 1


def test_bad_inputs_are_skipped_with_a_reason_and_the_rest_is_stored(fake_library, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    (tmp_path / "notes.txt").write_text("Nothing that looks like a cable.\n", encoding="utf-8")
    shutil.copy(next(SEEDS.glob("000_*")), tmp_path / "good.txt")
    report = fake_library.ingest([tmp_path, tmp_path / "missing.txt"])
    reasons = dict(report.skipped)
    assert report.cables_added == 1 and len(report.skipped) == 4
    assert "empty file" in reasons[str(tmp_path / "empty.txt")]
    assert "binary file" in reasons[str(tmp_path / "image.txt")]
    assert "no cable identifier" in reasons[str(tmp_path / "notes.txt")]
    assert "no such file" in reasons[str(tmp_path / "missing.txt")]


def test_cp1252_and_utf16_files_are_decoded(fake_library, tmp_path):
    text = (next(SEEDS.glob("000_*")).read_text(encoding="utf-8")
            .replace("Sanginkhanov's first point", "Sanginkhanov’s first point, café"))
    (tmp_path / "a.txt").write_bytes(text.encode("cp1252", errors="replace"))
    report = fake_library.ingest([tmp_path / "a.txt"])
    assert report.cables_added == 1
    assert "Sanginkhanov’s first point, café" in fake_library.cable("06ALMATY2399").paragraphs[2].text
    other = text.replace("UNCLAS ALMATY 002399", "UNCLAS ALMATY 002400")
    (tmp_path / "b.txt").write_bytes(other.encode("utf-16"))
    assert fake_library.ingest([tmp_path / "b.txt"]).cables_added == 1


def test_csv_and_jsonl_ingest(fake_library, tmp_path):
    report = fake_library.ingest([DATA / "cables.csv"])
    assert report.cables_added == 2
    export = tmp_path / "export.jsonl"
    with export.open("w", encoding="utf-8") as handle:
        import json
        for cable in fake_library.store.cables():
            handle.write(json.dumps(cable.to_json()) + "\n")
    other = Library(tmp_path / "other", embedder=fake_library.embedder)
    assert other.ingest([export]).cables_added == 2
    assert other.cable("05ANKARA1730") == fake_library.cable("05ANKARA1730")


def test_index_cache_is_rebuilt_from_stored_vectors(fake_library, fake_embedder):
    fake_library.ingest([SEEDS])
    home = fake_library.home
    fake_library.close()
    (home / "index" / "vectors.faiss").write_bytes(b"broken")
    reopened = Library(home, embedder=fake_embedder)
    assert len(reopened.index) == 49
    ids, vectors = reopened.store.vectors()
    assert np.allclose(reopened.index.vectors(ids), vectors)


def test_a_store_written_with_repeated_labels_gets_them_made_distinct_once(tmp_path, fake_embedder):
    """Stores ingested before labels were unique (ALMATY2058 had two "14") are relabelled when next opened."""
    from qa.store import Store

    home = tmp_path / "home"
    library = Library(home, embedder=fake_embedder)
    library.ingest([SEEDS])
    library.close()
    db = sqlite3.connect(home / "cables.db")
    db.execute("UPDATE paragraphs SET label = '14' WHERE label = '14 (2nd)'")  # as the old parser stored it
    db.execute("DELETE FROM meta WHERE key = 'labels'")
    db.commit()
    db.close()
    store = Store(home / "cables.db")
    try:
        assert [p.label for p in store.cable("ALMATY2058").paragraphs] == [
            "11", "12", "13", "14", "14 (2nd)", "15", "16", "17", "18"]
        assert store.get_meta("labels") == "distinct"
    finally:
        store.close()
    reopened = Library(home, embedder=fake_embedder)  # and everything else is as it was
    try:
        assert reopened.stats()["paragraphs"] == 49
        assert reopened.search("Mazhilis working group", k=1)[0].citation == "ALMATY2058 ¶14 (2nd)"
    finally:
        reopened.close()

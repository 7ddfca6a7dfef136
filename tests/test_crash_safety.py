"""SIGKILL `cables ingest` at random moments: the store always opens consistent, and finishing the ingest gives
the same store (counts, rows, search results) as one uninterrupted run. Real CLI, real model, real SQLite/FAISS."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from qa.doctor import check
from qa.library import Library
from tests.conftest import ROOT, SEEDS, run_cli

pytestmark = pytest.mark.slow
KILLS = 3
QUERIES = ["What guarantees did Kazakhstan refuse to give about Guantanamo detainees?",
           "Who was beaten by police at the protest over demolition of homes?",
           "nuclear weapons program", "elections and the opposition"]


def stored_cables(home) -> int:
    try:
        with sqlite3.connect(f"file:{home / 'cables.db'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT count(*) FROM cables").fetchone()[0]
    except sqlite3.Error:
        return 0


def assert_consistent(home, context: str) -> dict:
    """The store opens; paragraphs, vectors and keyword rows agree; the FAISS index holds exactly the stored ids."""
    library = Library(home)
    try:
        ids = library.index.ids()  # opening syncs the cache with the database
        assert sorted(ids.tolist()) == sorted(library.store.vector_ids().tolist()), context
        report = check(library)
        assert report.ok, (context, report.lines())
        return library.stats()
    finally:
        library.close()


def rows(home) -> list[tuple]:
    with sqlite3.connect(home / "cables.db") as db:
        out = db.execute("SELECT p.cable_id, p.position, p.label, p.text, c.subject, c.created FROM paragraphs p "
                         "JOIN cables c ON c.id = p.cable_id ORDER BY p.cable_id, p.position").fetchall()
    db.close()
    return out


def vectors_by_paragraph(home) -> dict[tuple[str, int], np.ndarray]:
    with sqlite3.connect(home / "cables.db") as db:
        out = {(c, p): np.frombuffer(v, dtype=np.float32)
               for c, p, v in db.execute("SELECT cable_id, position, vector FROM paragraphs WHERE vector IS NOT NULL")}
    db.close()
    return out


def searches(home, embedder) -> list[list[tuple[str, float]]]:
    """Top-5 (citation, score) per query, through the library with the real model (loaded once)."""
    library = Library(home, embedder=embedder)
    try:
        return [[(h.citation, h.score) for h in library.search(query, k=5)] for query in QUERIES]
    finally:
        library.close()


def test_sigkill_at_random_moments_then_resume_equals_one_clean_run(shared_corpus, tmp_path):
    seed = int(os.environ.get("CABLES_KILL_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    folder = tmp_path / "slice"
    shutil.copytree(SEEDS, folder)
    for path in sorted(shared_corpus.glob("*.html"), key=lambda p: (p.stat().st_size, p.name))[:60]:
        shutil.copy(path, folder)  # the 60 smallest pages: enough paragraphs that a kill lands mid-ingest
    total = len(list(folder.iterdir()))

    clean = tmp_path / "clean"
    run_cli("ingest", str(folder), "--quiet", home=clean, check=True)

    home = tmp_path / "killed"
    env = dict(os.environ, CABLES_HOME=str(home))
    moments = []
    for kill in range(KILLS):
        before = stored_cables(home)
        target = min(total - 1, before + rng.randint(1, max(1, (total - before) // (KILLS - kill))))
        extra = rng.uniform(0, 0.15)  # then a random instant: mid-embedding, mid-transaction or mid-index-save
        process = subprocess.Popen([sys.executable, "-m", "qa", "ingest", str(folder), "--quiet"], cwd=ROOT,
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while process.poll() is None and stored_cables(home) < target and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(extra)
        finished = process.poll() is not None
        process.send_signal(signal.SIGKILL)
        process.wait()
        now = stored_cables(home)
        moments.append((before, target, round(extra, 2), now, finished))
        context = f"seed {seed}, kills (before, target, extra s, after, had finished): {moments}"
        assert_consistent(home, context)
        if finished:
            break
    assert any(0 < after < total and not done for _, _, _, after, done in moments), context

    resumed = run_cli("ingest", str(folder), "--json", home=home, check=True)
    report = json.loads(resumed.stdout)
    assert report["skipped"] == [] and report["duplicates"] == [], (context, report)  # re-reading is no duplicate
    assert assert_consistent(home, context) == {**assert_consistent(clean, "clean run"), "home": str(home)}
    assert rows(home) == rows(clean), context
    clean_vectors, resumed_vectors = vectors_by_paragraph(clean), vectors_by_paragraph(home)
    assert clean_vectors.keys() == resumed_vectors.keys()
    # int8 activations are scaled per batch, so a paragraph embedded in another batch moves a little, never far
    assert min(float(clean_vectors[k] @ resumed_vectors[k]) for k in clean_vectors) > 0.98, context
    model = Library(clean)
    embedder = model.embedder
    model.close()
    for clean_hits, resumed_hits in zip(searches(clean, embedder), searches(home, embedder), strict=True):
        assert [c for c, _ in resumed_hits][:3] == [c for c, _ in clean_hits][:3], (context, clean_hits, resumed_hits)
        assert {c for c, _ in resumed_hits} == {c for c, _ in clean_hits}, (context, clean_hits, resumed_hits)


def test_a_file_stored_but_not_yet_marked_done_is_not_its_own_duplicate(fake_library, fake_embedder):
    """The narrowest kill window: the cable's transaction committed, the file not yet recorded as ingested."""
    from qa.formats import read_cables
    from qa.ingest import embedding_text, read_file

    path = SEEDS / "000_443c1dcb190b58e3.txt"
    text, _ = read_file(path)
    cable = next(read_cables(text, str(path)))
    fake_library.store.set_meta("model", fake_embedder.name)
    fake_library.store.put_cable(cable, list(fake_embedder.embed([embedding_text(cable, p) for p in cable.paragraphs])))
    report = fake_library.ingest([path])
    assert (report.cables_added, report.duplicates, report.skipped) == (0, [], [])
    stats = fake_library.stats()
    assert (stats["cables"], stats["duplicates"], stats["paragraphs"], stats["vectors"]) == (1, 0, 6, 6)
    assert fake_library.ingest([path]).unchanged_files == 1  # and now the file is marked done


def test_full_disk_fails_with_a_clear_message_and_leaves_the_store_usable(seeds_home, shared_corpus, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or 'needs root'}")
    try:
        home = disk / "home"
        home.mkdir()
        shutil.copy(seeds_home / "cables.db", home)
        shutil.copytree(seeds_home / "index", home / "index")
        (home / "models").symlink_to(seeds_home / "models")  # the exported model stays on the big disk
        seeds_rows = rows(home)
        pages = tmp_path / "pages"
        pages.mkdir()
        for path in sorted(shared_corpus.glob("*.html"), key=lambda p: (p.stat().st_size, p.name))[200:206]:
            shutil.copy(path, pages)
        space = os.statvfs(disk)
        with open(disk / "filler", "wb") as filler:
            filler.write(b"\0" * (space.f_bavail * space.f_frsize - 100_000))  # leave ~100 kB

        failed = run_cli("ingest", str(pages), "--quiet", home=home)
        assert failed.returncode == 4, failed.stderr
        assert failed.stderr.startswith("cables: error: cannot write to the store")
        assert "free some space" in failed.stderr
        assert failed.stderr.strip().count("\n") == 0 and "Traceback" not in failed.stderr

        library = Library(home)  # opens and searches while the disk is still full (the index serves from memory)
        try:
            assert library.search(QUERIES[0], k=1)[0].citation in ("06ALMATY2399 ¶3", "06ALMATY2399 ¶1")
            findings = {f.check: f for f in check(library).findings}
            assert findings["database"].ok and findings["vectors"].ok and findings["keywords"].ok
            stored = library.stats()["cables"]
        finally:
            library.close()
        assert 5 <= stored < 11
        assert [r for r in rows(home) if r[0] in {s[0] for s in seeds_rows}] == seeds_rows

        (disk / "filler").unlink()
        resumed = run_cli("ingest", str(pages), "--quiet", home=home, check=True)
        assert f"{11 - stored} cables added" in resumed.stdout
        assert assert_consistent(home, "after the disk was freed")["cables"] == 11
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)

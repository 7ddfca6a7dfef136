"""The pipelined ingest (parsing in worker processes) stores what the sequential one does, resumes after a crash,
shows progress with a rate and ETA; opening a store never re-embeds what it holds."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest

from qa import pipeline
from qa.ingest import Ingester
from qa.library import INDEX_DIR, Library
from qa.progress import ProgressBar, format_seconds
from qa.store import Store
from tests.conftest import SEEDS, FakeEmbedder, run_cli


class CountingEmbedder(FakeEmbedder):
    """The fake embedder, counting the texts it embeds; optionally fails on its n-th call (a crash mid-ingest)."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.texts = 0
        self.fail_on_call = fail_on_call

    def embed(self, texts):
        self.calls += 1
        if self.fail_on_call is not None and self.calls >= self.fail_on_call:
            raise KeyboardInterrupt("killed")
        self.texts += len(texts)
        return super().embed(texts)


def _contents(db_path) -> list[tuple]:
    store = Store(db_path)
    try:
        rows = store.db.execute("SELECT p.cable_id, p.position, p.text, p.vector FROM paragraphs p "
                                "ORDER BY p.cable_id, p.position").fetchall()
        files = store.db.execute("SELECT count(*) FROM files").fetchone()[0]
    finally:
        store.close()
    return [*rows, ("files", files)]


@pytest.fixture
def many_files(tmp_path):
    """The seeds, each under three names, with distinct bytes so each file counts (18 files, 5 distinct cables)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for copy in range(3):
        for path in sorted(SEEDS.glob("*.txt")):
            (folder / f"{copy}-{path.name}").write_text(path.read_text(encoding="utf-8") + "\n" * (copy + 1),
                                                        encoding="utf-8")
    (folder / "zz-broken.txt").write_text("not a cable at all", encoding="utf-8")
    return folder


def test_pool_ingest_stores_the_same_as_sequential(many_files, tmp_path):
    sequential = Store(tmp_path / "a.db")
    Ingester(sequential, FakeEmbedder()).run([many_files])
    sequential.close()
    pooled = Store(tmp_path / "b.db")
    report = pipeline.PipelinedIngester(pooled, FakeEmbedder(), workers=1).run([many_files])
    pooled.close()
    assert report.files == 16 and report.cables_added == 5 and len(report.skipped) == 1
    assert _contents(tmp_path / "a.db") == _contents(tmp_path / "b.db")


def test_pool_ingest_resumes_after_a_crash(many_files, tmp_path, monkeypatch):
    monkeypatch.setattr("qa.ingest.BATCH_PARAGRAPHS", 10)  # several embedding batches, so the crash lands midway
    store = Store(tmp_path / "c.db")
    with pytest.raises(KeyboardInterrupt):
        pipeline.PipelinedIngester(store, CountingEmbedder(fail_on_call=2), workers=1).run([many_files])
    stored = store.stats()["cables"]
    assert 0 < stored < 5
    resumed = CountingEmbedder()
    report = pipeline.PipelinedIngester(store, resumed, workers=1).run([many_files])
    store.close()
    assert report.cables_added == 5 - stored and report.unchanged_files > 0
    clean = Store(tmp_path / "d.db")
    Ingester(clean, FakeEmbedder()).run([many_files])
    clean.close()
    assert [r[:3] for r in _contents(tmp_path / "c.db")[:-1]] == [r[:3] for r in _contents(tmp_path / "d.db")[:-1]]


def test_opening_a_store_never_reembeds_stored_paragraphs(tmp_path):
    home = tmp_path / "home"
    library = Library(home, embedder=CountingEmbedder())
    library.ingest([SEEDS])
    library.close()
    for remove_index in (False, True):
        if remove_index:
            shutil.rmtree(home / INDEX_DIR)  # the cache is rebuilt from the stored vectors, not by the model
        embedder = CountingEmbedder()
        reopened = Library(home, embedder=embedder)
        reopened.load()
        assert len(reopened.index) == 49
        reopened.search("guarantees about Guantanamo detainees", k=3)
        reopened.close()
        assert embedder.texts == 1  # the question only


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_shows_share_rate_and_eta():
    stream = _Terminal()
    bar = ProgressBar(stream=stream)
    bar.plan(1000)
    bar.started -= 10
    bar(120, 12)
    bar.first_store -= 4
    bar.advance(250)
    line = bar.line()
    assert "25%" in line and "12 cables, 120 paragraphs" in line and "30 paragraphs/s" in line
    assert "ETA 30s" in line
    bar.close()
    assert stream.getvalue().endswith("\n") and "paragraphs/s" in stream.getvalue()
    assert ProgressBar(stream=io.StringIO()).enabled is False  # not a terminal: nothing drawn
    assert (format_seconds(75), format_seconds(3725)) == ("1m15s", "1h02m")


@pytest.mark.slow
def test_cli_ingest_of_corpus_files_through_the_pool_and_again(shared_corpus, seeds_home, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for path in sorted(shared_corpus.glob("*.html"))[:pipeline.POOL_MIN_FILES]:
        shutil.copy(path, folder)
    home = tmp_path / "home"
    shutil.copytree(seeds_home / "models", home / "models")  # the onnx export is reused, not redone
    first = run_cli("ingest", str(folder), "--json", home=home, check=True)
    assert '"cables_added": 16' in first.stdout
    again = run_cli("ingest", str(folder), "--json", home=home, check=True)
    assert '"unchanged_files": 16' in again.stdout and '"cables_added": 0' in again.stdout
    library = Library(home)
    try:
        ids, vectors = library.store.vectors()
        assert len(ids) == library.store.stats()["vectors"] > 100
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    finally:
        library.close()


def test_pool_ingest_drives_the_progress_bar_to_the_end(many_files, tmp_path):
    bar = ProgressBar(stream=_Terminal())
    store = Store(tmp_path / "e.db")
    pipeline.PipelinedIngester(store, FakeEmbedder(), on_progress=bar, workers=1).run([many_files])
    store.close()
    assert bar.total_bytes == sum(p.stat().st_size for p in many_files.iterdir()) == bar.done_bytes
    assert (bar.cables, bar.paragraphs) == (5, 49) and "100%" in bar.line()

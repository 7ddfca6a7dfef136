"""Many users at once: the real web app under `bench/load.py` (gradio_client on 127.0.0.1) while `cables ingest`
writes into the same store. No request may fail, and no search may see part of a cable."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def test_searches_during_an_ingest_never_fail_or_see_half_a_cable(seeds_home_copy, shared_corpus, tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    for path in sorted(shared_corpus.glob("*.html"), key=lambda p: (p.stat().st_size, p.name))[300:305]:
        shutil.copy(path, pages)
    result = subprocess.run([sys.executable, "bench/load.py", "--home", str(seeds_home_copy), "--clients", "4",
                             "--seconds", "10", "--ingest", str(pages), "--until-ingested", "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=420)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    load = json.loads(result.stdout.strip().splitlines()[-1])
    assert load["errors"] == 0, load["error_samples"]
    assert load["partial_cables"] == []
    assert load["ingest_rc"] == 0
    assert load["search_requests"] > 0 and load["ask_requests"] > 0
    # the check has teeth: every ingested cable was seen whole by some search once its transaction committed
    assert load["watched_cables"] == 5 and load["watched_seen_complete"] == 5, load
    assert result.returncode == 0
    stats = json.loads(run_cli("stats", "--json", home=seeds_home_copy, check=True).stdout)
    assert stats["cables"] == 10 and stats["paragraphs"] == stats["vectors"]

"""The `cables` command end to end: real parser, real model, real SQLite and FAISS, in a subprocess."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from embeddings.model import default_model
from tests.conftest import DATA, SEEDS, run_cli

pytestmark = pytest.mark.slow
GUARANTEES = "What guarantees did Kazakhstan refuse to give about Guantanamo detainees?"
ANSWERS = ("06ALMATY2399 ¶3", "06ALMATY2399 ¶1")  # the refusal itself, and the summary that restates it


def test_search_json_puts_the_right_paragraph_first(seeds_home):
    result = run_cli("search", GUARANTEES, "--json", "-k", "5", home=seeds_home, check=True)
    data = json.loads(result.stdout)
    first = data["hits"][0]
    assert first["citation"] in ANSWERS  # the detail, or the summary that restates it
    assert first["cable_id"] == "06ALMATY2399" and first["citation"] == f"06ALMATY2399 ¶{first['paragraph']}"
    assert first["subject"].startswith("KAZAKHSTAN: DISCUSSIONS ON GUANTANAMO")
    assert first["origin"] == "Embassy Almaty" and first["created"].startswith("2006-07-07")
    assert first["classification"] == "UNCLASSIFIED (SENSITIVE)" and first["source"].endswith(".txt")
    assert len(data["hits"]) == 5


@pytest.mark.parametrize("question,citation", [
    ("Why was the Uzbek human rights observer detained by migration police in Almaty?", "05ALMATY2503"),
    ("Who was beaten by police at the protest over demolition of homes?", "05ALMATY2985 ¶4"),
    ("Which commission goes by the unfortunate acronym NKVD?", "ALMATY2058 ¶15"),
    ("Did Soros get an invitation to meet President Nazarbayev?", "05ALMATY342"),
])
def test_search_finds_seed_paragraphs(seeds_home, question, citation):
    data = json.loads(run_cli("search", question, "--json", "-k", "3", home=seeds_home, check=True).stdout)
    assert any(h["citation"].startswith(citation) for h in data["hits"][:3]), [h["citation"] for h in data["hits"]]


def test_search_filters_from_the_command_line(seeds_home):
    data = json.loads(run_cli("search", "harassment of the opposition", "--json", "--from", "2005-08-01",
                              "--to", "2005-08-31", home=seeds_home, check=True).stdout)
    assert {h["cable_id"] for h in data["hits"]} == {"05ALMATY2985"}
    assert data["filters"] == {"from": "2005-08-01", "to": "2005-08-31"}
    data = json.loads(run_cli("search", "detainees", "--json", "--tag", "PTER", "--classification", "unclassified",
                              home=seeds_home, check=True).stdout)
    assert {h["cable_id"] for h in data["hits"]} == {"06ALMATY2399"}


def test_batch_prints_one_json_line_per_question(seeds_home, tmp_path):
    batch = tmp_path / "q.jsonl"
    batch.write_text(json.dumps({"question": GUARANTEES}) + "\n\n"
                     + json.dumps({"question": "refugee", "filters": {"year": 2005, "origin": "Almaty"}}) + "\n")
    lines = run_cli("search", "--batch", str(batch), "-k", "3", home=seeds_home, check=True).stdout.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["hits"][0]["citation"] in ANSWERS
    assert second["filters"] == {"origin": "Almaty", "year": 2005}
    assert all(h["created"].startswith("2005") for h in second["hits"])


def test_ask_answers_with_citations(seeds_home):
    data = json.loads(run_cli("ask", GUARANTEES, "--json", home=seeds_home, check=True).stdout)
    assert data["answered"]
    cited = {c["citation"] for c in data["citations"]}
    assert "06ALMATY2399 ¶3" in cited
    assert all(f"[{s['citation']}]" in data["answer"] for s in data["statements"])
    for statement in data["statements"]:  # every statement is a sentence of the paragraph it cites
        source = next(c for c in data["citations"] if c["citation"] == statement["citation"])
        assert statement["text"] in source["text"]
    text = run_cli("ask", GUARANTEES, home=seeds_home, check=True).stdout
    assert "[06ALMATY2399 ¶3]" in text and "Sources:" in text


def test_ask_says_when_the_cables_do_not_answer(seeds_home):
    data = json.loads(run_cli("ask", "What is the best recipe for chocolate cake?", "--json",
                              home=seeds_home, check=True).stdout)
    assert not data["answered"] and "do not answer" in data["message"]
    data = json.loads(run_cli("ask", GUARANTEES, "--json", "--origin", "Embassy Paris", home=seeds_home,
                              check=True).stdout)
    assert not data["answered"] and "No cable in the store matches the filters" in data["message"]


def test_show_keeps_the_paragraphs_line_breaks_and_hyphenated_words(seeds_home):
    """The terminal shows what the web view shows: a list line stays a line, "well-known" is never cut."""
    shown = run_cli("show", "05ALMATY342", "--para", "4", home=seeds_home, check=True).stdout
    body = shown[shown.index("¶4."):].splitlines()  # the header above names the store's (long) source path
    assert any(line.startswith("-- and asked that the Ambassador") for line in body)
    assert all(len(line) <= 100 and not re.search(r"[A-Za-z]-$", line) for line in body)


def test_wrapping_never_cuts_a_word_at_its_hyphen_or_a_citation():
    from qa.cli import _wrap

    text = "x" * 93 + " extra-judicial killings\n-- a list item"
    lines = _wrap(text).splitlines()
    assert lines == ["x" * 93, "extra-judicial killings", "-- a list item"]
    assert _wrap("y" * 85 + " [05ALMATY342 ¶4] next").splitlines() == ["y" * 85, "[05ALMATY342 ¶4] next"]


def test_show_stats_export_and_glossary(seeds_home, tmp_path):
    shown = run_cli("show", "05ALMATY342", "--para", "3", home=seeds_home, check=True).stdout
    assert "¶3. (SBU) Dzhaksybekov responded" in shown and "¶4." not in shown
    stats = json.loads(run_cli("stats", "--json", home=seeds_home, check=True).stdout)
    assert (stats["cables"], stats["paragraphs"], stats["vectors"]) == (5, 49, 49)
    assert stats["model"] == default_model() and "model_note" not in stats
    out = tmp_path / "export.jsonl"
    run_cli("export", "-o", str(out), home=seeds_home, check=True)
    assert len(out.read_text().splitlines()) == 5
    assert "deputy chief of mission" in run_cli("glossary", "DCM", check=True).stdout


def test_ingest_reports_and_is_idempotent(tmp_path):
    home = tmp_path / "home"
    first = run_cli("ingest", str(DATA / "cables.csv"), str(SEEDS / "000_443c1dcb190b58e3.txt"), "--json",
                    home=home, check=True)
    report = json.loads(first.stdout)
    assert (report["cables_added"], report["paragraphs_added"], report["skipped"]) == (3, 10, [])
    again = json.loads(run_cli("ingest", str(DATA / "cables.csv"), "--json", home=home, check=True).stdout)
    assert (again["cables_added"], again["unchanged_files"]) == (0, 1)


def test_user_errors_are_one_line_with_documented_exit_codes(seeds_home, tmp_path):
    missing = run_cli("ingest", str(tmp_path / "nope.txt"), home=tmp_path / "h")
    assert missing.returncode == 3 and "nope.txt: no such file or folder" in missing.stderr
    bad_date = run_cli("search", "x", "--from", "yesterday", home=seeds_home)
    assert bad_date.returncode == 2 and bad_date.stderr.strip().count("\n") == 0
    assert "YYYY-MM-DD" in bad_date.stderr
    bad_k = run_cli("search", "x", "-k", "0", home=seeds_home)
    assert bad_k.returncode == 2 and "k must be between 1 and 1000" in bad_k.stderr
    unknown = run_cli("show", "99NOWHERE1", home=seeds_home)
    assert unknown.returncode == 2 and "not in the store" in unknown.stderr
    other_model = run_cli("search", "x", "--model", "some/other-model", home=seeds_home)
    assert other_model.returncode == 4 and "was built with model" in other_model.stderr


def test_a_number_the_cable_gives_twice_is_cited_apart(seeds_home):
    """ALMATY2058 numbers two paragraphs 14: search cites the second "¶14 (2nd)", `show --para 14` prints both,
    `show --para "14 (2nd)"` that one."""
    data = json.loads(run_cli("search", "Mazhilis working group chaired by Kiselyov of the Asar party", "--json",
                              "-k", "1", home=seeds_home, check=True).stdout)
    assert data["hits"][0]["citation"] == "ALMATY2058 ¶14 (2nd)"
    both = json.loads(run_cli("show", "ALMATY2058", "--para", "14", "--json", home=seeds_home, check=True).stdout)
    assert [p["label"] for p in both["paragraphs"]] == ["14", "14 (2nd)"]
    one = run_cli("show", "ALMATY2058", "--para", "14 (2nd)", home=seeds_home, check=True).stdout
    assert "¶14 (2nd). (SBU) A Mazhilis working group" in one and "troubling provisions" not in one


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_a_model_not_on_disk_is_one_line_at_once_when_offline(tmp_path, monkeypatch, backend):
    """Offline, an unknown --model gets one line straight away, not a minute of the hub client's retries."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: the hub cannot be reached
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    result = run_cli("ingest", str(SEEDS), "--model", "no-such-org/no-such-model", "--backend", backend,
                     home=tmp_path / "h", timeout=60)  # the retries alone took 80 s
    assert result.returncode == 5, result.stderr  # 5: a model problem
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "'no-such-org/no-such-model' is not a folder on disk" in result.stderr
    assert "--model with a local folder" in result.stderr and "Retrying" not in result.stderr


def test_help_is_instant_and_lists_commands():
    result = run_cli("--help", check=True)
    for command in ("ingest", "search", "ask", "show", "stats", "export", "serve", "eval", "glossary"):
        assert command in result.stdout
    import subprocess
    import sys
    heavy = subprocess.run([sys.executable, "-c", "import sys, qa.cli; qa.cli.build_parser(); "
                            "print(sorted(m for m in ('torch', 'faiss', 'gradio') if m in sys.modules))"],
                           capture_output=True, text=True, check=True)
    assert heavy.stdout.strip() == "[]"


def test_killed_ingest_leaves_a_usable_store_and_resumes(shared_corpus, tmp_path):
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from qa.cables import parse_cable
    from qa.library import Library

    folder = tmp_path / "slice"
    folder.mkdir()
    files = sorted(shared_corpus.glob("*.html"))[:60]
    for path in files:
        (folder / path.name).write_bytes(path.read_bytes())
    expected = sum(len(parse_cable(p.read_text(encoding="utf-8")).paragraphs) for p in files)
    home = tmp_path / "home"
    env = dict(os.environ, CABLES_HOME=str(home))
    process = subprocess.Popen([sys.executable, "-m", "qa", "ingest", str(folder), "--quiet"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    stored = 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with sqlite3.connect(home / "cables.db", timeout=1) as db:
                stored = db.execute("SELECT count(*) FROM cables").fetchone()[0]
        except sqlite3.Error:
            stored = 0
        if stored >= 5:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 5 <= stored < 60, "the ingest should have been killed part-way"
    library = Library(home)
    stats = library.stats()
    assert 0 < stats["cables"] < 60 and stats["paragraphs"] == stats["vectors"] == len(library.index)
    library.close()
    report = json.loads(run_cli("ingest", str(folder), "--json", home=home, check=True).stdout)
    assert report["cables_added"] == 60 - stats["cables"]
    final = json.loads(run_cli("stats", "--json", home=home, check=True).stdout)
    assert (final["cables"], final["paragraphs"], final["vectors"]) == (60, expected, expected)


def test_reading_a_folder_without_a_store_says_so_and_creates_nothing(tmp_path):
    home = tmp_path / "typo"
    for args in (("search", "detainees"), ("ask", "detainees"), ("stats",), ("show", "06ALMATY2399")):
        result = run_cli(*args, home=home)
        assert result.returncode == 4, args
        assert result.stderr.startswith("cables: error: no store at") and result.stderr.count("\n") == 1
    assert not home.exists()


def test_output_cut_short_by_the_reader_is_no_error(seeds_home):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = dict(os.environ, CABLES_HOME=str(seeds_home))
    # `cables show ... | head -1`: the reader goes away after one line
    shown = subprocess.Popen([sys.executable, "-m", "qa", "show", "06ALMATY2399"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    shown.stdout.read(10)
    shown.stdout.close()
    error = shown.stderr.read().decode()
    assert shown.wait(timeout=60) == 0 and "Traceback" not in error and "BrokenPipe" not in error


def test_a_store_built_with_a_model_folder_opens_again_without_naming_it(tmp_path):
    from embeddings.model import resolve_model_path

    folder = resolve_model_path(None)[1]  # the bundled model, given as a folder like any local model
    home = tmp_path / "home"
    run_cli("ingest", str(SEEDS / "000_443c1dcb190b58e3.txt"), "--model", folder, "--quiet", home=home, check=True)
    found = run_cli("search", "Guantanamo detainees", "--json", "-k", "1", home=home, check=True)
    assert json.loads(found.stdout)["hits"][0]["cable_id"] == "06ALMATY2399"


def test_a_store_built_with_an_earlier_adapter_still_searches(seeds_home_copy):
    """Upgrading the shipped adapter renames the default model; a store built before searches with its own."""
    import sqlite3

    models = seeds_home_copy / "models"
    current = next(p for p in models.iterdir() if p.is_dir())
    earlier = current.with_name("all-MiniLM-L6-v2-cables-0123456789")
    current.rename(earlier)
    shutil.rmtree(seeds_home_copy / "index")  # it names the model too; it is rebuilt from the database
    with sqlite3.connect(seeds_home_copy / "cables.db") as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'model'", (earlier.name,))
    result = run_cli("search", GUARANTEES, "--json", "-k", "3", "--backend", "torch", home=seeds_home_copy)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hits"][0]["citation"] in ANSWERS
    assert not (models / current.name).exists()  # the new adapter is not merged into a store that does not use it

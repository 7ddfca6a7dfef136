"""Broken and hostile inputs (tests/data/bad/ plus big or odd files made here): each is named in one line with its
problem, the rest is stored, the store is unchanged by the bad file, and odd encodings come through as real text."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from qa.library import Library
from tests.conftest import DATA, ROOT, SEEDS, run_cli

BAD = DATA / "bad"
SEED = SEEDS / "000_443c1dcb190b58e3.txt"  # 06ALMATY2399
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, PR_CAPBSET_DROP = 1, 2, 24


def csv_row(number: int, body: str) -> str:
    """One `cables.csv` row (8 columns, backslash escapes) for cable 05ANKARA{number}."""
    header = "R 250909Z MAR 05\nFM AMEMBASSY ANKARA\nTO RUEHC/SECSTATE WASHDC 4321\n"
    text = f"UNCLAS ANKARA {number:06d}\n\nTAGS: PREL TU\nSUBJECT: TURKEY: ROW {number}\n\n{body}\n\nDEUTSCH\n"
    values = [str(number), "3/25/2005 9:09", f"05ANKARA{number}", "Embassy Ankara", "UNCLASSIFIED", "", header, text]
    return ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "\n"


def make_generated(folder) -> None:
    """The cases too big or too odd to commit: a 5 MB CSV body, a 50 MB one-line file, symlink loops."""
    huge_body = "1. (U) " + "The same sentence again and again. " * 150_000  # ~5 MB
    (folder / "big_body.csv").write_text(csv_row(9301, "1. (U) A normal row before the big one.")
                                         + csv_row(9302, huge_body)
                                         + csv_row(9303, "1. (U) A normal row after the big one."), encoding="utf-8")
    seed = SEEDS.joinpath("002_9949241257ca7f17.txt").read_text(encoding="utf-8").replace("\n", " ")
    with open(folder / "one_line.txt", "w", encoding="utf-8") as out:
        out.write((seed * (50_000_000 // len(seed) + 1))[:50_000_000])
    loop = folder / "loop"
    loop.mkdir()
    (loop / "again").symlink_to("..", target_is_directory=True)  # a folder that contains itself
    (loop / "ping.txt").symlink_to("pong.txt")
    (loop / "pong.txt").symlink_to("ping.txt")  # two links pointing at each other


def store_snapshot(home) -> list[str]:
    with sqlite3.connect(home / "cables.db") as db:
        rows = [line for line in db.iterdump() if "INSERT INTO \"provenance\"" not in line]
    db.close()
    return rows


@pytest.mark.slow
def test_each_bad_input_is_named_once_and_the_rest_is_stored(tmp_path):
    folder = tmp_path / "scraped"
    shutil.copytree(BAD, folder)
    shutil.copy(SEED, folder / "good.txt")
    (folder / "image.png").unlink()  # a folder walk passes image files over; the image is named explicitly below
    make_generated(folder)
    home = tmp_path / "home"
    args = ("ingest", str(folder), str(BAD / "image.png"), str(tmp_path / "does-not-exist.txt"))
    result = run_cli(*args, home=home)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("skipped: ") for line in lines), lines
    expected = {
        "empty.txt": "empty file",
        "image.png": "binary file (not text)",
        "cut_mid_tag.html": "the page is cut off (it ends inside an HTML tag",
        "no_cable.txt": "no cable identifier found",
        "wrong_columns.csv": "row 2: expected 8 columns",
        "unterminated_quote.csv": "row 2: unexpected end of data; fix the quoting",
        "big_body.csv": "row 2: 5.3 MB of text is too large for one cable",
        "one_line.txt": "50.0 MB of text is too large for one cable",
        "does-not-exist.txt": "no such file or folder",
        "again": "symbolic link loop",
        "ping.txt": "cannot read (Too many levels of symbolic links)",
        "pong.txt": "cannot read (Too many levels of symbolic links)",
    }
    for name, problem in expected.items():
        named = [line for line in lines if f"{os.sep}{name}" in line.split(": ", 2)[1]]
        assert len(named) == 1 and problem in named[0], (name, named)
    assert len(lines) == len(expected)
    assert "9 cables added" in result.stdout and "12 skipped" in result.stdout
    assert "duplicate: 06ALMATY9104 from " in result.stdout
    assert "same_id_b.txt: an equally complete copy (kept; first wins) is already stored" in result.stdout

    stats = json.loads(run_cli("stats", "--json", home=home, check=True).stdout)
    with sqlite3.connect(home / "cables.db") as db:
        stored = {r[0] for r in db.execute("SELECT id FROM cables")}
    db.close()
    assert stored == {"06ALMATY2399", "06ALMATY9102", "06ALMATY9103", "06ALMATY9104", "05ANKARA9201", "05ANKARA9203",
                      "05ANKARA9204", "05ANKARA9301", "05ANKARA9303"}
    assert stats["paragraphs"] == stats["vectors"]

    cp1252 = json.loads(run_cli("show", "06ALMATY9102", "--json", home=home, check=True).stdout)
    assert cp1252["subject"] == "KAZAKHSTAN: CAFÉ OWNERS’ “SPECIAL” TAX"
    assert "Café Résumé said the tax office’s “special review”" in cp1252["paragraphs"][0]["text"]
    utf16 = json.loads(run_cli("show", "06ALMATY9103", "--json", home=home, check=True).stdout)
    assert "Almaty’s “ministry” is quoted" in utf16["paragraphs"][0]["text"]
    first_copy = json.loads(run_cli("show", "06ALMATY9104", "--json", home=home, check=True).stdout)
    assert "accepted" in first_copy["paragraphs"][0]["text"]  # the first copy stays; the other is reported
    found = json.loads(run_cli("search", "café tax review", "--json", "-k", "3", home=home, check=True).stdout)
    assert found["hits"][0]["cable_id"] == "06ALMATY9102"

    before = store_snapshot(home)
    again = run_cli(*args, home=home)
    assert again.returncode == 3 and "0 cables added" in again.stdout
    assert store_snapshot(home) == before


@pytest.mark.parametrize("name", ["empty.txt", "image.png", "cut_mid_tag.html", "no_cable.txt"])
def test_a_bad_file_leaves_the_store_unchanged(fake_library, name):
    fake_library.ingest([SEED])
    before = store_snapshot(fake_library.home)
    report = fake_library.ingest([BAD / name])
    assert [path for path, _ in report.skipped] == [str(BAD / name)]
    assert report.cables_added == 0
    assert store_snapshot(fake_library.home) == before


def test_bad_rows_are_skipped_and_good_rows_of_the_same_file_stored(fake_library):
    report = fake_library.ingest([BAD / "wrong_columns.csv", BAD / "unterminated_quote.csv"])
    assert report.cables_added == 3 and len(report.skipped) == 2
    assert {c.id for c in fake_library.store.cables()} == {"05ANKARA9201", "05ANKARA9203", "05ANKARA9204"}
    again = fake_library.ingest([BAD / "wrong_columns.csv", BAD / "unterminated_quote.csv"])
    assert again.cables_added == 0 and len(again.skipped) == 2  # bad files are read again, never marked done


def test_a_page_cut_before_its_closing_pre_is_refused(fake_library, tmp_path):
    page = (DATA / "04RANGOON88.html").read_text(encoding="utf-8")
    (tmp_path / "cut.html").write_text(page[: page.rindex("</pre>") - 500], encoding="utf-8")
    report = fake_library.ingest([tmp_path / "cut.html"])
    assert report.cables_added == 0 and "has no closing </pre>" in report.skipped[0][1]
    (tmp_path / "whole.html").write_text(page, encoding="utf-8")
    assert fake_library.ingest([tmp_path / "whole.html"]).cables_added == 1


def _drop_read_override() -> None:
    """In the child: lose root's right to read files whatever their mode (so chmod 000 means unreadable)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.slow
def test_an_unreadable_file_is_named_and_the_rest_stored(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SEED, folder / "good.txt")
    locked = folder / "locked.txt"
    shutil.copy(SEEDS / "001_b0cfab23c18ec7f2.txt", locked)
    locked.chmod(0)
    preexec = _drop_read_override if os.geteuid() == 0 else None
    probe = subprocess.run(["cat", str(locked)], capture_output=True, preexec_fn=preexec)
    if probe.returncode == 0:
        pytest.skip("cannot make a file unreadable here (root without the right to drop CAP_DAC_OVERRIDE)")
    env = dict(os.environ, CABLES_HOME=str(tmp_path / "home"))
    result = subprocess.run([sys.executable, "-m", "qa", "ingest", str(folder), "--json"], capture_output=True,
                            text=True, cwd=ROOT, env=env, preexec_fn=preexec, timeout=300)
    report = json.loads(result.stdout)
    assert result.returncode == 3
    assert report["skipped"] == [{"path": str(locked), "reason": f"{locked}: permission denied; make the file "
                                                                   "readable"}]
    assert report["cables_added"] == 1
    library = Library(tmp_path / "home")
    assert {c.id for c in library.store.cables()} == {"06ALMATY2399"}
    library.close()

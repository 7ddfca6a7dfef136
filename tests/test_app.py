"""The Gradio app through the real server: first start ingests the seeds; the API answers; a real browser
asks, opens the cited cable, filters, and shows a hostile cable as text."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DATA, ROOT, SEEDS

pytestmark = pytest.mark.slow
GUARANTEES = "What guarantees did Kazakhstan refuse to give about Guantanamo detainees?"
SHOTS = ROOT / "bench" / "out"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python app.py` on a fresh home: it ingests its seed folder on first start, then serves."""
    base = tmp_path_factory.mktemp("app")
    seeds = base / "seeds"
    shutil.copytree(SEEDS, seeds)
    shutil.copy(DATA / "hostile_cable.txt", seeds)
    port = free_port()
    log = open(base / "app.log", "w")  # noqa: SIM115 - stays open while the server runs
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "app.py", "--home", str(base / "home"), "--port", str(port),
                                "--seeds", str(seeds)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"app exited: {(base / 'app.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        raise AssertionError("app did not start in time")
    yield url, base
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False)


def test_first_start_ingests_seeds_and_binds_loopback(server):
    url, base = server
    assert url.startswith("http://127.0.0.1:")
    log = (base / "app.log").read_text()
    assert "6 cables added" in log


def test_api_search_and_ask(client):
    data = client.predict(GUARANTEES, 5, "{}", "hybrid", api_name="/search")
    assert data["hits"][0]["citation"] == "06ALMATY2399 ¶3"
    filtered = client.predict("refugee", 10, json.dumps({"year": 2005, "origin": "Almaty"}), "hybrid",
                              api_name="/search")
    assert filtered["hits"] and all(h["created"].startswith("2005") for h in filtered["hits"])
    answer = client.predict(GUARANTEES, "{}", api_name="/ask")
    assert answer["answered"] and "06ALMATY2399 ¶3" in {c["citation"] for c in answer["citations"]}
    assert "error" in client.predict("x", 10, json.dumps({"from": "soon"}), "hybrid", api_name="/search")


def _browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed (make test installs it when run as root)")
    return playwright_api


def _ask(page, question: str) -> None:
    page.fill("#question textarea, #question input", question)
    page.click("#ask")


def test_browser_ask_open_cited_cable_filter_and_hostile_text(server):
    api = _browser()
    url, _ = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    with api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run"])
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(url)
        page.wait_for_selector("#question textarea, #question input", timeout=60000)
        _ask(page, GUARANTEES)
        page.wait_for_selector("#evidence .evidence-card", timeout=90000)
        assert "06ALMATY2399 ¶3" in page.inner_text("#evidence")
        assert "[1]" in page.inner_text("#chat")
        # one click on a citation shows that paragraph highlighted inside the whole cable
        page.locator("#citations input[value='06ALMATY2399 ¶3']").check()
        page.wait_for_function("document.querySelector('#viewer .para.focus')?.innerText.startsWith('¶3.')",
                               timeout=30000)
        cited = page.inner_text("#viewer .para.focus")
        assert cited.startswith("¶3.") and "can not give any guarantees" in cited, cited
        assert "¶6." in page.inner_text("#viewer")  # the whole cable, not just the paragraph
        page.screenshot(path=str(SHOTS / "ui-answer.png"), full_page=True)

        # a filter applies to the next question and is shown with the answer
        page.click("text=Filters (applied to the next question)")
        page.fill("#filter-from input, #filter-from textarea", "2005-08-01")
        page.fill("#filter-to input, #filter-to textarea", "2005-08-31")
        _ask(page, "How was the opposition harassed?")
        page.wait_for_function("document.querySelector('#chat').innerText.includes('from=2005-08-01')",
                               timeout=90000)
        assert "05ALMATY2985" in page.inner_text("#evidence")
        assert "06ALMATY2399" not in page.inner_text("#evidence")
        page.fill("#filter-from input, #filter-from textarea", "")
        page.fill("#filter-to input, #filter-to textarea", "")

        # a cable full of markup is shown as text and runs nothing
        _ask(page, "What did the minister say about zebra quotas?")
        page.wait_for_function("document.querySelector('#evidence').innerText.includes('TESTPOST666')",
                               timeout=90000)
        page.locator("#citations input[value='TESTPOST666 ¶1']").check()
        page.wait_for_function("document.querySelector('#viewer').innerText.includes('window.__pwned')",
                               timeout=30000)
        assert page.evaluate("window.__pwned") is None
        viewer = page.inner_text("#viewer")
        assert "<script>window.__pwned = 'script'</script>" in viewer
        assert '<img src=x onerror="window.__pwned=\'img\'">' in viewer
        assert "[the annex](javascript:" in viewer
        assert page.locator("#viewer img, #evidence img, #chat img[src='x']").count() == 0
        assert page.locator("a[href^='javascript']").count() == 0
        assert "<script>" in page.inner_text("#chat") or "&lt;script&gt;" not in page.inner_text("#chat")
        page.screenshot(path=str(SHOTS / "ui-hostile.png"), full_page=True)
        browser.close()

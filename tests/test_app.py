"""The Gradio app through the real server and a real browser (Debian Chromium driven by Playwright).

Two servers start side by side: the seeds plus a hostile cable, and a locked one (`--auth`, `--allow-upload`)
on an empty store. The browser asks, follows citations into the cable viewer, filters, exports, runs the hostile
cable through every panel, logs in, and adds a cable by upload.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import DATA, ROOT, SEEDS

pytestmark = pytest.mark.slow
GUARANTEES = "What guarantees did Kazakhstan refuse to give about Guantanamo detainees?"
AUTH = ("tester", "zebra-quota-42")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """`python app.py ...` in a subprocess, with its log."""

    def __init__(self, base: Path, *args: str) -> None:
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_file = open(base / "app.log", "w")  # noqa: SIM115 - stays open while the server runs
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("CABLES_AUTH", None)
        env.pop("GRADIO_TEMP_DIR", None)
        self.process = subprocess.Popen([sys.executable, "app.py", "--home", str(base / "home"), "--port",
                                         str(self.port), *args], cwd=ROOT, stdout=self.log_file,
                                        stderr=subprocess.STDOUT, env=env)

    def log(self) -> str:
        return (self.base / "app.log").read_text()

    def wait(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"app exited: {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"app did not start in time: {self.log()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log_file.close()


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    """Both servers, started together (each ingests its seed folder on first start, then serves)."""
    base = tmp_path_factory.mktemp("app")
    seeds = base / "seeds"
    shutil.copytree(SEEDS, seeds)
    shutil.copy(DATA / "hostile_cable.txt", seeds)
    (base / "locked").mkdir()
    (base / "locked" / "empty-seeds").mkdir()
    desk = App(base, "--seeds", str(seeds))
    locked = App(base / "locked", "--seeds", str(base / "locked" / "empty-seeds"), "--allow-upload",
                 "--auth", ":".join(AUTH))
    deadline = time.monotonic() + 300
    try:
        desk.wait(deadline)
        locked.wait(deadline)
        yield {"desk": desk, "locked": locked}
    finally:
        desk.stop()
        locked.stop()


@pytest.fixture(scope="module")
def server(apps):
    return apps["desk"].url, apps["desk"].base


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
    assert data["hits"][0]["citation"] in ("06ALMATY2399 ¶3", "06ALMATY2399 ¶1")  # the detail or the summary
    filtered = client.predict("refugee", 10, json.dumps({"year": 2005, "origin": "Almaty"}), "hybrid",
                              api_name="/search")
    assert filtered["hits"] and all(h["created"].startswith("2005") for h in filtered["hits"])
    answer = client.predict(GUARANTEES, "{}", api_name="/ask")
    assert answer["answered"] and "06ALMATY2399 ¶3" in {c["citation"] for c in answer["citations"]}
    assert "error" in client.predict("x", 10, json.dumps({"from": "soon"}), "hybrid", api_name="/search")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read(2000).decode(errors="replace")


def test_serves_no_files_from_disk(server):
    """Gradio's file routes refuse system files, the store, the app's own code, and fetching remote URLs."""
    url, base = server
    store = base / "home" / "cables.db"
    assert store.exists()
    files = ("/etc/passwd", str(store), str(ROOT / "app.py"), str(SEEDS / sorted(os.listdir(SEEDS))[0]))
    remote = ("https://example.com/x.txt", "http%3A%2F%2F127.0.0.1%3A1%2F")
    for target in files + remote:
        for route in ("gradio_api/file=", "file=", "gradio_api/file/"):
            status, body = _get(url + route + (target.lstrip("/") if route.endswith("/") else target))
            assert status in (403, 404), (route, target, status)
            assert "root:" not in body and "SQLite" not in body
            if target in remote and route.startswith("gradio_api"):
                assert "Remote files are not served" in body, (route, target, body)
    assert _get(url + "gradio_api/info")[0] == 200  # the app itself still answers


def _browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed (make test installs it when run as root)")
    return playwright_api


def _ask(page, question: str) -> None:
    page.fill("#question textarea", question)
    page.click("#ask")


def _wait_answer(page, count: int) -> str:
    """Wait until the chat holds `count` answers and the last one has finished streaming; its text."""
    page.wait_for_function("""n => { const bots = document.querySelectorAll('#chat .bot');
        if (bots.length < n) return false;
        const text = bots[bots.length - 1].innerText.trim();
        return text && !text.includes('Searching the cables') && !text.includes('Loading content')
            && !text.endsWith('…'); }""", arg=count, timeout=90000)
    return page.locator("#chat .bot").last.inner_text()


def _pick(page, dropdown: str, option: str) -> None:
    page.click(f"{dropdown} input")
    page.get_by_role("option", name=option).click()


FOCUS_VISIBLE = """() => {
  const box = document.querySelector('#viewer .cable-viewer'), focus = document.querySelector('#viewer .para.focus');
  if (!box || !focus) return false;
  const b = box.getBoundingClientRect(), f = focus.getBoundingClientRect();
  return f.top >= b.top - 1 && f.top < b.bottom;
}"""


def test_browser_research_desk(server, tmp_path):
    api = _browser()
    url, _ = server
    with api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1000}, accept_downloads=True,
                                      permissions=["clipboard-read", "clipboard-write"])
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#question textarea", timeout=60000)
        assert "6 cables" in page.inner_text("#desk-header") and "4 posts" in page.inner_text("#desk-header")
        # the answer streams: record every state of the chat while it arrives
        page.evaluate("""() => { window.__states = [];
            new MutationObserver(() => window.__states.push(document.querySelector('#chat').innerText))
              .observe(document.querySelector('#chat'), {subtree: true, childList: true, characterData: true}); }""")
        _ask(page, GUARANTEES)
        answer = _wait_answer(page, 1)
        states = page.evaluate("window.__states")
        assert any("Searching the cables" in s for s in states)
        assert any("[1]" in s and s.rstrip().endswith("…") for s in states), "no partial answer was shown"
        assert "[1]" in answer and "06ALMATY2399 ¶3" in answer
        cards = page.locator("#evidence .evidence-card")
        assert cards.count() >= 1
        assert cards.first.locator(".badge").inner_text() == "UNCLASSIFIED (SENSITIVE)"
        assert cards.first.locator("mark").count() >= 1  # the supporting sentence is highlighted
        assert page.locator("#timeline .year-bar").count() >= 1 and page.locator("#timeline .post-bar").count() >= 1

        # a citation in the answer text opens the whole cable with that paragraph highlighted and in view
        page.locator("#chat .bot a[href='#cite=06ALMATY2399%20%C2%B63']").first.click()
        page.wait_for_function("document.querySelector('#viewer .para.focus')?.innerText.startsWith('¶3.')",
                               timeout=30000)
        focus = page.locator("#viewer .para.focus")
        assert "cited" in focus.get_attribute("class") and focus.locator("mark").count() >= 1
        assert "can not give any guarantees" in focus.inner_text()
        assert "¶2." in page.inner_text("#viewer") and "¶6." in page.inner_text("#viewer")  # the whole cable
        page.wait_for_function(FOCUS_VISIBLE, timeout=10000)
        page.screenshot(path=str(tmp_path / "ui-answer.png"), full_page=True)

        # a card's citation opens its paragraph; its Copy button copies the citation
        last_card = cards.last
        citation = last_card.get_attribute("data-citation")
        last_card.locator(".card-cite").click()
        label = citation.split("¶")[1]
        page.wait_for_function(f"document.querySelector('#viewer .para.focus')?.dataset.label === '{label}'",
                               timeout=30000)
        last_card.locator(".copy-cite").click()
        page.wait_for_function("document.querySelector('#evidence .copy-cite.copied')", timeout=5000)
        assert page.evaluate("navigator.clipboard.readText()") == citation

        # export: the conversation with its citations as a Markdown download
        with page.expect_download() as download:
            page.click("#export")
        exported = Path(download.value.path()).read_text()
        assert exported.startswith("# cables-qa conversation") and f"## 1. {GUARANTEES}" in exported
        assert "[06ALMATY2399 ¶3]" in exported and "**06ALMATY2399 ¶3**" in exported

        # a filter is shown before the question, applied to it, and shown with the answer
        _pick(page, "#filter-origin", "US Office Almaty (3)")
        page.wait_for_function("document.querySelector('#active-filters').innerText.includes('origin=US Office')")
        _ask(page, "How did the authorities harass the opposition movement?")
        answer = _wait_answer(page, 2)
        assert "Filters: origin=US Office Almaty" in answer
        metas = page.locator("#evidence .card-meta").all_inner_texts()
        assert metas and all("US Office Almaty" in m for m in metas), metas
        assert "06ALMATY2399" not in page.inner_text("#evidence")
        page.click("#clear-filters")
        page.wait_for_function("document.querySelector('#active-filters').innerText.includes('all cables')")

        # clear messages, never a stack trace: bad filter, no hits, too long
        page.fill("#filter-from textarea", "soon")
        page.wait_for_function("document.querySelector('#active-filters').innerText.includes('Filter problem')")
        _ask(page, "Anything about refugees?")
        assert "is not a date; use YYYY-MM-DD" in _wait_answer(page, 3)
        page.fill("#filter-from textarea", "1990-01-01")
        page.fill("#filter-to textarea", "1990-12-31")
        _ask(page, "Anything about refugees?")
        assert "No cable in the store matches the filters" in _wait_answer(page, 4)
        page.click("#clear-filters")
        _ask(page, "refugee " * 200)
        page.wait_for_function("document.querySelector('#chat').innerText.includes('questions are capped at 1,000')",
                               timeout=30000)
        assert "Traceback" not in page.content()

        # a cable full of markup is shown as text everywhere and runs nothing
        page.evaluate("window.__pwned = undefined")
        _ask(page, "What did the minister say about zebra quotas?")
        _wait_answer(page, 6)
        assert "TESTPOST666" in page.inner_text("#evidence")
        page.locator("#evidence .evidence-card[data-citation^='TESTPOST666'] .card-cite").first.click()
        page.wait_for_function("document.querySelector('#viewer').innerText.includes('window.__pwned')",
                               timeout=30000)
        viewer = page.inner_text("#viewer")
        assert "<script>window.__pwned = 'script'</script>" in viewer
        assert '<img src=x onerror="window.__pwned=\'img\'">' in viewer
        assert "[the annex](javascript:" in viewer and "${window.__pwned='template'}" in viewer
        assert "{{constructor.constructor(" in viewer and "<iframe src=" in viewer
        page.hover("#viewer .para >> text=unresolved")
        for panel in ("#viewer", "#evidence", "#chat"):
            assert page.locator(f"{panel} img, {panel} iframe, {panel} script, {panel} b[onmouseover]").count() == 0
        assert page.locator("a[href^='javascript'], a[href^='JAVASCRIPT']").count() == 0
        assert page.evaluate("window.__pwned") is None
        page.screenshot(path=str(tmp_path / "ui-hostile.png"), full_page=True)

        # the Library tab counts the store; without --allow-upload it offers no upload
        page.get_by_role("tab", name="Library").click()
        counts = page.inner_text("#library-counts")
        assert "6 cables" in counts and "52 paragraphs" in counts and "4 posts" in counts, counts
        assert page.locator("#upload, #ingest, input[type=file]").count() == 0
        assert page.get_by_text("--allow-upload").count() >= 1
        page.get_by_role("tab", name="Desk").click()

        # a reference to a cable in the store is a link that opens it
        page.click("#viewer a.ref-link")
        page.wait_for_function("document.querySelector('#viewer .cable-title')?.innerText.includes('06ALMATY2399')",
                               timeout=30000)
        assert page.evaluate("window.__pwned") is None

        # a new conversation empties the chat and the panels
        page.click("#new-conversation")
        page.wait_for_function("document.querySelectorAll('#chat .bot').length === 0", timeout=30000)
        assert page.locator("#evidence .evidence-card").count() == 0 and page.locator("#viewer .para").count() == 0
        context.close()
        browser.close()


def test_browser_login_empty_store_and_upload(apps, tmp_path):
    """The locked server: login required (API too), an empty store says so, an upload fills it with progress."""
    api = _browser()
    url = apps["locked"].url
    request = urllib.request.Request(url + "gradio_api/call/search", data=b'{"data": ["x", 5, "{}", "hybrid"]}',
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code in (401, 403)
    with api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(url)
        page.fill("input[type=password]", "wrong")
        page.locator("input:not([type=password])").first.fill(AUTH[0])
        page.click("button:has-text('Login')")
        page.wait_for_selector("text=Incorrect Credentials", timeout=30000)
        assert page.locator("#question").count() == 0
        page.locator("input:not([type=password])").first.fill(AUTH[0])
        page.fill("input[type=password]", AUTH[1])
        page.click("button:has-text('Login')")
        page.wait_for_selector("#question textarea", timeout=60000)
        assert "0 cables" in page.inner_text("#desk-header")
        _ask(page, GUARANTEES)
        assert "The store is empty" in _wait_answer(page, 1)

        page.get_by_role("tab", name="Library").click()
        page.set_input_files("#upload input[type=file]", [str(path) for path in sorted(SEEDS.iterdir())])
        page.wait_for_function("document.querySelector('#upload').innerText.includes('.txt')", timeout=30000)
        page.evaluate("""() => { window.__progress = [];
            new MutationObserver(() => { const bar = document.querySelector('.progress-level');
              if (bar) window.__progress.push(bar.innerText); })
              .observe(document.body, {subtree: true, childList: true, characterData: true}); }""")
        page.click("#ingest")
        page.wait_for_function("document.querySelector('#ingest-status').innerText.includes('Added 5 cables')",
                               timeout=90000)
        progress = sorted(set(page.evaluate("window.__progress")))
        assert any("Ingesting" in text for text in progress), f"no progress bar during the ingest: {progress}"
        assert "5 cables" in page.inner_text("#library-counts") and "5 cables" in page.inner_text("#desk-header")
        page.screenshot(path=str(tmp_path / "ui-upload.png"), full_page=True)
        page.get_by_role("tab", name="Desk").click()
        _ask(page, GUARANTEES)
        assert "06ALMATY2399 ¶" in _wait_answer(page, 2)
        browser.close()

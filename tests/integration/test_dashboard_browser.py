"""The dashboard in a real headless Chromium (Debian's, driven by Selenium through Debian's
chromedriver) against a real waitress server in a thread, over a store filled through its API.

Run ``bash scripts/ensure-chromium.sh`` first; without the browser these tests fail
(FORGEBOT_ALLOW_SKIP=1 skips them instead), so a green run never silently left them out.
"""

from __future__ import annotations

import os
import shutil
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from waitress.server import create_server

from bot.store import Store, open_store
from bot.web import create_app
from bot.web.dashboard import dashboard_blueprint

pytestmark = pytest.mark.slow

BROWSER = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
TOKEN = "browser-test-token"
WIDTH, HEIGHT = 1280, 900
HOSTILE = "<script>alert('owned')</script> Add a farewell"
# Flags as this machine needs them: no sandbox as root, and no background network calls,
# which the closed network refuses by the dozen.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--window-size={WIDTH},{HEIGHT}",
         "--force-device-scale-factor=1", "--hide-scrollbars"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.engine.dispose()


@pytest.fixture
def base_url(store: Store) -> Iterator[str]:
    """The app with a token-protected dashboard, as if bound beyond localhost."""
    app = create_app(store, {})
    app.register_blueprint(dashboard_blueprint(TOKEN, None, bound_beyond_localhost=True))
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    yield f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    server.close()  # type: ignore[attr-defined]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if not (os.access(BROWSER, os.X_OK) and shutil.which(DRIVER)):
        problem = "Chromium is missing: run `bash scripts/ensure-chromium.sh` first"
        if os.environ.get("FORGEBOT_ALLOW_SKIP") == "1":
            pytest.skip(problem)
        pytest.fail(problem, pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    # Explicit paths: Selenium Manager is never asked to download a driver or a browser.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


def read_png(path: Path, max_rows: int) -> tuple[int, int, list[bytes]]:
    """Width, height and the first ``max_rows`` rows (RGB) of an 8-bit, non-interlaced PNG.

    Pure Python, to need no imaging library; only the top of the page is decoded because
    unfiltering costs seconds per full screenshot.
    """
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        header = body if kind == b"IHDR" else header
        chunks += [body] if kind == b"IDAT" else []
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0) and colour in (2, 6)
    bpp = 4 if colour == 6 else 3
    raw, stride = zlib.decompress(b"".join(chunks)), width * bpp
    rows, prev = [], bytes(stride)
    for y in range(min(height, max_rows)):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            line[i] = (line[i] + (0, a, b, (a + b) // 2, paeth(a, b, c))[kind]) & 0xFF
        rows.append(bytes(line))
        prev = bytes(line)
    return width, height, [bytes(r[i] for i in range(len(r)) if i % bpp < 3) for r in rows]


def paeth(a: int, b: int, c: int) -> int:
    """PNG's Paeth predictor, ties broken in the order the specification gives: a, b, c."""
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def pixel(rows: list[bytes], x: int, y: int) -> tuple[int, ...]:
    return tuple(rows[y][x * 3:x * 3 + 3])


def check_screenshot(driver: webdriver.Chrome, path: Path) -> None:
    """A real PNG of the viewport's size, with the dark header bar over the light page."""
    assert driver.save_screenshot(str(path))
    assert path.stat().st_size > 5000
    width, height, rows = read_png(path, max_rows=200)
    viewport = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    assert (width, height) == tuple(viewport)
    assert width == WIDTH
    assert pixel(rows, width - 5, 5) == (0x24, 0x29, 0x2F)  # the header: the stylesheet loaded
    assert pixel(rows, width - 5, 150) == (0xFA, 0xFA, 0xFA)  # the page, right of <main>
    assert len({pixel(rows, x, y) for x in range(0, width, 16) for y in range(0, 200, 8)}) > 3


def no_alert(driver: webdriver.Chrome) -> bool:
    try:
        driver.switch_to.alert  # noqa: B018 - the property raises when there is none
    except NoAlertPresentException:
        return True
    return False


def sign_in(driver: webdriver.Chrome, base_url: str, path: str) -> None:
    """The ``?token=`` exchange: the token becomes a cookie and leaves the address bar."""
    driver.get(f"{base_url}{path}{'&' if '?' in path else '?'}token={TOKEN}")
    assert driver.current_url == f"{base_url}{path}"
    cookie = driver.get_cookie("forgebot_dashboard")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert driver.execute_script("return document.cookie") == ""  # HttpOnly: not readable


def make_jobs(store: Store) -> tuple[int, int]:
    """A running job (with events) and two queued ones; returns (running id, hostile id)."""
    ids = []
    for n, title in [(1, "Add a farewell"), (2, HOSTILE), (3, "Document the API")]:
        job = store.create_job(trigger_key=f"local:acme/hello:issue:{n}", forge="local",
                               repo="acme/hello", default_branch="main", issue_number=n,
                               title=title, requested_by="ada", delivery_row=None)
        assert job is not None
        ids.append(job.id)
    claim = store.claim_next("browser-test:1", 300)
    assert claim is not None and claim.job.id == ids[0]
    store.add_event(claim.job.id, "stage.started", {"stage": "prepare"}, claim.attempt_id)
    store.add_event(claim.job.id, "stage.finished", {"stage": "prepare"}, claim.attempt_id)
    store.add_event(claim.job.id, "stage.started", {"stage": "implement"}, claim.attempt_id)
    return claim.job.id, ids[1]


def test_queue_page(browser, base_url, store, shots):
    make_jobs(store)
    sign_in(browser, base_url, "/dashboard/")
    table = browser.find_element(By.ID, "queue").text
    assert "1 #2 local:acme/hello 2 <script>alert('owned')</script> Add a farewell" in table
    assert "2 #3 local:acme/hello 3 Document the API" in table
    assert "2 queued, 1 running" in browser.find_element(By.TAG_NAME, "h1").text
    assert browser.find_elements(By.CSS_SELECTOR, "#queue script") == []  # text, not markup
    assert no_alert(browser)
    check_screenshot(browser, shots / "queue.png")


def test_job_page_updates_live(browser, base_url, store, shots):
    running, _ = make_jobs(store)
    sign_in(browser, base_url, f"/dashboard/jobs/{running}")
    assert "Job #1 Add a farewell" in browser.find_element(By.TAG_NAME, "h1").text
    stages = browser.find_element(By.CSS_SELECTOR, "table.stages").text
    assert "1 prepare" in stages and "finished" in stages
    assert "1 implement" in stages and stages.endswith("running")
    check_screenshot(browser, shots / "job-before.png")
    # Mark this very document: a reload would lose the mark.
    browser.execute_script("window.__sameDocument = true")
    attempt = store.events(running)[-1]["attempt_id"]
    store.add_event(running, "agent.reply", {"i": 1, "provider": "replay", "seconds": 0.5,
                                             "prompt_tokens": 321, "completion_tokens": 45},
                    attempt)
    store.add_event(running, "status.failed", {"error": "<b>forge said no</b>"}, attempt)
    # The live update swaps the list: an element found just before the swap goes stale.
    WebDriverWait(browser, 15, poll_frequency=0.25,
                  ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: "forge said no" in d.find_element(By.CSS_SELECTOR, "ol.events").text)
    assert browser.execute_script("return window.__sameDocument") is True
    events = browser.find_element(By.CSS_SELECTOR, "ol.events").text
    assert "status.failed error=<b>forge said no</b>" in events  # shown as text, escaped
    assert browser.find_elements(By.CSS_SELECTOR, "ol.events b") == []
    assert "321/45" in browser.find_element(By.CSS_SELECTOR, "table.iterations").text
    check_screenshot(browser, shots / "job-after.png")
    assert (shots / "job-after.png").read_bytes() != (shots / "job-before.png").read_bytes()


def test_hostile_job_page_runs_no_script(browser, base_url, store, shots):
    _, hostile = make_jobs(store)
    sign_in(browser, base_url, f"/dashboard/jobs/{hostile}")
    assert HOSTILE in browser.find_element(By.TAG_NAME, "h1").text
    assert HOSTILE in browser.title
    assert no_alert(browser)
    check_screenshot(browser, shots / "hostile.png")

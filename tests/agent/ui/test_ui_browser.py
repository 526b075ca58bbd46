"""`evoagent ui` in a real browser: Debian's chromium driven through chromium-driver
(Selenium), against the app served by uvicorn on 127.0.0.1. Each page is opened,
searched, curated through its preview, and a running stream is followed live.
Screenshots go to $EVOAGENT_SCREENSHOTS (default: build/screenshots), kept by CI."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import load_settings
from memory import HashEmbedder, Library
from memory.config import MemoryConfig
from tests.agent.ui.ui_kit import append_results, seed_home, write_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = Path(os.environ.get("EVOAGENT_SCREENSHOTS", "build/screenshots"))


@pytest.fixture
def server(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import uvicorn

    from agent.ui import create_app

    monkeypatch.setenv("EVOAGENT_MEMORY__EMBEDDER", "hash")
    seed_home(home)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(load_settings()), log_level="warning", access_log=False)
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not served.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert Path(CHROMIUM).exists() and Path(DRIVER).exists(), (
        "chromium and chromium-driver are missing: `make setup` installs them "
        "(apt-get install chromium chromium-driver)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage")
    for flag in (*flags, "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))  # type: ignore[attr-defined]


def test_browse_search_curate_diff_and_follow_a_run(
    server: str, browser: object, home: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d = browser  # type: ignore[assignment]
    wait = WebDriverWait(d, 15)
    d.get(f"{server}/tools")  # type: ignore[attr-defined]
    rows = d.find_elements(By.CSS_SELECTOR, "#tools tbody tr")  # type: ignore[attr-defined]
    assert len(rows) == 3
    shot(d, "library")
    # Search by meaning.
    box = d.find_element(By.ID, "q")  # type: ignore[attr-defined]
    box.send_keys("count the words")
    box.submit()
    wait.until(ec.url_contains("q=count"))
    first = d.find_element(By.CSS_SELECTOR, "#tools tbody tr td a")  # type: ignore[attr-defined]
    assert first.text == "count_items"
    # A tool's page.
    d.get(f"{server}/tools/sort_words")  # type: ignore[attr-defined]
    assert d.find_element(By.ID, "tool-name").text.startswith("sort_words")  # type: ignore[attr-defined]
    assert d.find_elements(By.CSS_SELECTOR, "#source .hl")  # type: ignore[attr-defined]
    shot(d, "tool")
    # Quarantine: the preview first, then the confirmation.
    d.find_element(By.ID, "do-quarantine").click()  # type: ignore[attr-defined]
    preview = d.find_element(By.ID, "preview").text  # type: ignore[attr-defined]
    assert "after: quarantined" in preview
    shot(d, "quarantine-preview")
    d.find_element(By.ID, "confirm").click()  # type: ignore[attr-defined]
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "quarantined"))
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        assert lib.get_tool("sort_words").status == "quarantined"  # the CLI sees it
    # Restore, then pin.
    d.find_element(By.ID, "do-restore").click()  # type: ignore[attr-defined]
    d.find_element(By.ID, "confirm").click()  # type: ignore[attr-defined]
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "active"))
    d.find_element(By.ID, "do-pin").click()  # type: ignore[attr-defined]
    d.find_element(By.ID, "confirm").click()  # type: ignore[attr-defined]
    wait.until(ec.presence_of_element_located((By.ID, "pinned")))
    # A version diff.
    d.find_element(By.CSS_SELECTOR, "a.diff").click()  # type: ignore[attr-defined]
    diff = d.find_element(By.ID, "diff")  # type: ignore[attr-defined]
    assert "key=str.lower" in diff.text
    shot(d, "diff")
    # A stream running in another process, followed live.
    folder = write_run(home, "live", 30, 5, status="running")
    d.get(f"{server}/runs/live")  # type: ignore[attr-defined]
    wait.until(ec.text_to_be_present_in_element((By.ID, "live-done"), "5 / 30"))
    append_results(folder, 5, 10)
    wait.until(ec.text_to_be_present_in_element((By.ID, "live-done"), "15 / 30"))
    shot(d, "run-live")
    # What does not exist says what does.
    d.get(f"{server}/tools/no_such_tool")  # type: ignore[attr-defined]
    assert d.find_element(By.ID, "missing")  # type: ignore[attr-defined]
    assert d.find_elements(By.CSS_SELECTOR, "a[href='/tools/count_items']")  # type: ignore[attr-defined]

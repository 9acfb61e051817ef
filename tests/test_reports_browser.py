"""The dashboard as a person sees it: ``streamlit run reports/app.py`` on the sample database,
loaded in headless Chromium through Selenium, a screenshot saved, seeded text asserted, and the
Sweeps page's charts drawn (Vega's SVG marks in the page).

Needs Debian's ``chromium`` and ``chromium-driver``: skipped without them on a developer
machine, failed in CI (env ``CI`` set), where it must run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from reports.sample import write_sample

pytestmark = pytest.mark.slow  # a real browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "apt-get install chromium chromium-driver"
START_TIMEOUT = 60.0


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser test: {INSTALL}")
    pytest.skip(f"{reason}; install them with `{INSTALL}` (and `pip install selenium`)")


@pytest.fixture
def driver_path() -> str:
    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not CHROMIUM.exists() or not Path(chromedriver).exists():
        _missing("chromium or chromedriver is missing")
    try:
        import selenium  # noqa: F401
    except ImportError:
        _missing("selenium is not installed")
    return chromedriver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit did not answer within {START_TIMEOUT:.0f} s:\n{log.read_text()}")


@pytest.fixture
def dashboard(tmp_path: Path):
    db = tmp_path / "sample.db"
    write_sample(db)
    port = _free_port()
    log = tmp_path / "streamlit.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "reports" / "app.py"),
             "--server.headless", "true", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--", "--db", str(db)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, url, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_leaderboard_decision_and_sweeps_in_chromium(dashboard: str, driver_path: str,
                                                     tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     "--window-size=1500,1200", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        def page_text() -> str:
            return driver.find_element(By.TAG_NAME, "body").text

        driver.get(dashboard)
        WebDriverWait(driver, 60).until(lambda _: "tied with best" in page_text()
                                        and "sorted by accuracy" in page_text())
        time.sleep(1.5)  # let the chart finish drawing before the screenshot
        shot = tmp_path / "leaderboard.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        text = page_text()
        assert "Leaderboard" in text and "sample.db" in text
        for seeded in ("few-shot", "full-ft", "qlora", "zero-shot"):
            assert seeded in text
        assert "7 candidates" in text

        driver.get(f"{dashboard}/decision")
        WebDriverWait(driver, 60).until(lambda _: "Recommendation" in page_text())
        text = page_text()
        assert "full-ft (full fine-tuning) is the best on accuracy" in text
        assert "few-shot (paired difference -0.075" in text  # beyond the default margin
        assert "fine-tune all weights, with full-ft" in text
        assert "Rule settings and requirements" in text
        # the requirement inputs render in their own expander, possibly a moment later
        WebDriverWait(driver, 30).until(
            lambda _: "knowledge must be updatable without retraining" in page_text())
        driver.save_screenshot(str(tmp_path / "decision.png"))

        driver.get(f"{dashboard}/sweeps")
        frontier = "judge_reward vs kl_to_base along each sweep"  # chart titles, drawn as SVG
        WebDriverWait(driver, 60).until(lambda _: frontier in page_text()
                                        and "judge_reward vs beta" in page_text())
        charts = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stVegaLiteChart']")
        assert len(charts) == 2
        for chart in charts:  # lines were drawn, not just the axes
            lines = chart.find_elements(By.CSS_SELECTOR, "svg .mark-line path")
            assert lines and all(line.get_attribute("d") for line in lines)
            assert chart.size["height"] > 300 and chart.size["width"] > 400
        labels = {t.text for t in charts[1].find_elements(By.CSS_SELECTOR, "svg .mark-text text")}
        assert {"0.01", "0.1", "0.5", "0.05", "0.2", "zero-shot"} <= labels  # points labelled
        legend = charts[0].text
        assert "dpo" in legend and "rlhf" in legend  # one line per approach sweep
        time.sleep(1.0)
        shot = tmp_path / "sweeps.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()

"""The workbench in a real headless Chromium: upload, overlay opacity, metadata, follow-up.

Needs Debian's ``chromium`` and ``chromium-driver`` (``scripts/browser.sh`` installs them);
without them the tests skip, or fail under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import pytest

from tests.ui.conftest import Running
from tests.ui.images import MAKE, MODEL, camera_jpeg

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

TRICKY_NAME = '<img src=x onerror="alert(1)">.jpg'
WAIT = 120


def chromium() -> tuple[str, str]:
    """Return Chromium's and its WebDriver's paths, or skip (fail under CI=true)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    reason = "chromium/chromedriver not installed; run scripts/browser.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing browser is a failure)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    binary, driver_path = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1000")
    service = webdriver.ChromeService(executable_path=driver_path)
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def case_page(browser, workbench: Running, tmp_path_factory) -> str:
    """Upload a photo with camera EXIF through the page; return its case page's URL."""
    folder = tmp_path_factory.mktemp("upload")
    image = folder / TRICKY_NAME
    image.write_bytes(camera_jpeg(5))
    browser.get(workbench.url + "/")
    browser.find_element(By.ID, "file").send_keys(str(image))
    WebDriverWait(browser, WAIT).until(ec.url_contains("/cases/"))
    WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.ID, "verdict-label")))
    return browser.current_url


def test_an_uploaded_image_gets_its_verdict(browser, case_page):
    label = browser.find_element(By.ID, "verdict-label").text
    assert label in {"ai_generated", "real", "uncertain"}
    assert 0.0 <= float(browser.find_element(By.ID, "p-ai").text) <= 1.0


def test_a_file_name_with_markup_is_shown_as_text(browser, case_page, workbench):
    assert browser.find_element(By.ID, "case-name").text == TRICKY_NAME
    assert not browser.find_elements(By.CSS_SELECTOR, "img[src='x']")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - no alert ran
    browser.get(workbench.url + "/")
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "a.case-link")]
    assert TRICKY_NAME in names
    browser.get(case_page)


def test_the_opacity_slider_changes_the_overlay(browser, case_page):
    browser.get(case_page)
    layer = Select(browser.find_element(By.ID, "layer"))
    assert len(layer.options) > 1, "no heatmap to overlay"
    layer.select_by_index(1)
    overlay = browser.find_element(By.ID, "overlay")
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", overlay
        )
    )
    assert overlay.is_displayed()
    before = float(overlay.value_of_css_property("opacity"))
    slider = browser.find_element(By.ID, "opacity")
    slider.send_keys(Keys.HOME)
    after = float(overlay.value_of_css_property("opacity"))
    slider.send_keys(Keys.END)
    full = float(overlay.value_of_css_property("opacity"))
    assert before == pytest.approx(0.65, abs=0.02)
    assert after == 0.0 and full == 1.0
    assert browser.find_element(By.ID, "legend").is_displayed()


def test_the_metadata_panel_shows_the_camera(browser, case_page):
    browser.get(case_page)
    browser.find_element(By.ID, "tab-metadata").click()
    table = browser.find_element(By.ID, "metadata-table")
    rows = [r.text for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert any("Make" in r and MAKE in r for r in rows), rows[:12]
    assert any("Model" in r and MODEL in r for r in rows), rows[:12]
    assert re.search(r"48\.8\d*", browser.find_element(By.ID, "gps").text)


def test_a_follow_up_is_answered_with_its_evidence_ids(browser, case_page):
    browser.get(case_page)
    browser.find_element(By.ID, "tab-thread").click()
    question = browser.find_element(By.ID, "question")
    question.send_keys("why?")
    question.submit()
    answer = WebDriverWait(browser, WAIT).until(
        ec.visibility_of_element_located((By.ID, "answer-1"))
    )
    assert "why?" in answer.text
    cites = [a.text for a in answer.find_elements(By.CSS_SELECTOR, "a.cite")]
    assert cites and all(re.fullmatch(r"\[?E\d+\]?", c) for c in cites), cites


def test_the_exported_report_works_from_a_file(browser, case_page, workbench, tmp_path):
    import httpx

    report = httpx.get(case_page + "/report", timeout=60)
    assert report.status_code == 200
    saved = tmp_path / "report.html"
    saved.write_bytes(report.content)
    browser.get(saved.as_uri())
    assert browser.find_element(By.ID, "case-name").text == TRICKY_NAME
    layer = Select(browser.find_element(By.ID, "layer"))
    assert len(layer.options) > 1
    layer.select_by_index(1)
    overlay = browser.find_element(By.ID, "overlay")
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return arguments[0].naturalWidth > 0", overlay)
    )
    browser.find_element(By.ID, "opacity").send_keys(Keys.HOME)
    assert float(overlay.value_of_css_property("opacity")) == 0.0
    assert not browser.find_elements(By.ID, "ask")

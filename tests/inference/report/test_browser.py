"""Each study's report rendered in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium): no console errors, every published table present,
every image decodes, the synthetic banner exactly on synthetic runs, one claims row per claim.

``.ci/run`` installs the browser; where it truly cannot be installed these tests skip and say
why."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from data.published import load_published
from inference.claims import load_claims

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install -e '.[test]')")
    if not CHROMIUM or not DRIVER:
        pytest.skip("Debian's chromium and chromium-driver are not installed and could not be "
                    "(run .ci/run as root on Debian: apt-get install -y chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="report-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _open(driver, page: Path) -> list[dict]:
    driver.get_log("browser")  # drop what an earlier page left
    driver.get(page.resolve().as_uri())
    driver.execute_script("return document.readyState")
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _published_tables(study: str) -> list[str]:
    frame = load_published(study)
    return list(dict.fromkeys(frame["table"].astype(str)))


@pytest.mark.parametrize("study", ["zhao2025", "zhu2025", "fu2021", "agglo2025", "hansen1999"])
def test_report_renders_in_chromium(browser, built_runs, study):
    errors = _open(browser, built_runs[study] / "index.html")
    assert errors == [], errors
    for table in _published_tables(study):
        section_id = "table-" + "".join(c if c.isalnum() else "-" for c in table.lower())
        found = browser.execute_script(
            "const s = document.getElementById(arguments[0]);"
            "return s ? s.querySelectorAll('table.paper').length : -1;", section_id)
        assert found >= 1, f"published table {table} missing from the {study} report"
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]);")
    assert images, "no image on the page"
    broken = [alt for alt, complete, width in images if not complete or width == 0]
    assert broken == [], broken
    has_banner = browser.execute_script("return !!document.getElementById('synthetic-banner')")
    assert has_banner is (study != "hansen1999")
    rows = browser.execute_script(
        "return document.querySelectorAll('#claims tr.claim').length;")
    assert rows == len(load_claims(study))


def test_banner_absent_on_a_run_with_user_data(browser, user_data_run):
    errors = _open(browser, user_data_run / "index.html")
    assert errors == [], errors
    assert browser.execute_script("return document.getElementById('synthetic-banner')") is None
    label = browser.execute_script("return document.getElementById('data-label').textContent")
    assert label == "user data: my_provinces.csv"
    rows = browser.execute_script("return document.querySelectorAll('#claims tr.claim').length")
    assert rows == len(load_claims("fu2021"))
    banner = browser.find_element("id", "summary").text
    assert "no posterior (a --frequentist-only run)" in browser.page_source and banner


def test_console_errors_are_caught(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>throw new Error('planted')</script></body></html>")
    errors = _open(browser, page)
    assert any("planted" in e["message"] for e in errors)

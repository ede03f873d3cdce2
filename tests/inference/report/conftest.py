"""Fixture runs shared by the report tests: built once per session, no sampling."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from inference.report import build_report
from tests.inference.report.fixture_runs import fixture_run

STUDIES = ("zhao2025", "zhu2025", "fu2021", "agglo2025", "hansen1999")


@pytest.fixture(scope="session")
def built_runs(tmp_path_factory) -> dict:
    """study -> folder of a fixture run with its report built."""
    folders = {}
    for study in STUDIES:
        folder = fixture_run(study, tmp_path_factory.mktemp(study))
        build_report(study, folder, progress=lambda _m: None)
        folders[study] = folder
    return folders


@pytest.fixture(scope="session")
def user_data_run(tmp_path_factory):
    """A real --frequentist-only run of fu2021 on a user file (a copy of the default panel):
    its report must carry no synthetic banner."""
    import pandas as pd

    from inference.datasets import default_data_path
    from inference.runner import RunOptions, run_study

    folder = tmp_path_factory.mktemp("fu2021_user")
    data = folder / "my_provinces.csv"
    pd.read_csv(default_data_path("fu2021")).to_csv(data, index=False)
    out = folder / "run"
    run_study("fu2021", RunOptions(data=data, out=out, frequentist_only=True, seed=3),
              progress=lambda _m: None)
    return out


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage")


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium driven by selenium, one per module; skips, saying why, where the
    browser or its driver is missing."""
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


def open_page(driver, page: Path) -> list[dict]:
    """Load ``page`` from disk; the console messages of level SEVERE it produced."""
    driver.get_log("browser")  # drop what an earlier page left
    driver.get(page.resolve().as_uri())
    driver.execute_script("return document.readyState")
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]

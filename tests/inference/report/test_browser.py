"""Each study's report rendered in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium): no console errors, every published table present,
every image decodes, the synthetic banner exactly on synthetic runs, one claims row per claim.

``.ci/run`` installs the browser; where it truly cannot be installed these tests skip and say
why."""

from __future__ import annotations

import pytest

from data.published import load_published
from inference.claims import load_claims
from tests.inference.report.conftest import open_page as _open


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

"""Slow tier: the report of a real sampled zhao2025 run rebuilt without sampling, and
``compare`` of two real runs with different slope priors."""

from __future__ import annotations

import time

import pytest

from inference.report import build_report
from inference.report.compare import compare_runs
from inference.runner import RunOptions, run_study

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("real")
    quiet = lambda _m: None  # noqa: E731
    run_study("zhao2025", RunOptions(out=base / "default", quick=True, seed=1), progress=quiet)
    run_study("zhao2025", RunOptions(out=base / "tight", quick=True, seed=1,
                                     priors=("slope=normal(0,0.05)",)), progress=quiet)
    return base / "default", base / "tight"


def test_rebuild_of_a_sampled_run_under_30_s_without_sampling(real_runs, tmp_path,
                                                              monkeypatch):
    import nutpie
    import pymc

    def refuse(*_a, **_k):
        raise AssertionError("the report must not sample")

    monkeypatch.setattr(pymc, "sample", refuse)
    monkeypatch.setattr(nutpie, "sample", refuse)
    started = time.perf_counter()
    page = build_report("zhao2025", real_runs[0], tmp_path, progress=lambda _m: None)
    assert time.perf_counter() - started < 30
    text = page.read_text(encoding="utf-8")
    assert "id='synthetic-banner'" in text and text.count("<tr class='claim'") == 10
    assert page.stat().st_size < 5_000_000


def test_the_sampled_report_renders_in_chromium(real_runs, browser):
    from tests.inference.report.conftest import open_page

    assert open_page(browser, real_runs[0] / "index.html") == []
    widths = browser.execute_script("return Array.from(document.images).map(i => i.naturalWidth)")
    assert len(widths) >= 5 and all(w > 0 for w in widths)
    assert browser.execute_script("return document.querySelectorAll('#claims tr.claim').length") \
        == 10
    assert browser.execute_script("return !!document.getElementById('synthetic-banner')")


def test_compare_two_priors_shows_the_ai_slope_shift(real_runs, tmp_path):
    table = compare_runs(*real_runs, tmp_path, progress=lambda _m: None)
    ai = table[(table["table"] == "2") & (table["column"] == "6") & (table["term"] == "AI")]
    # normal(0, 0.05) pulls a slope of about 0.25 (sd 0.05) towards 0 by well over one sd.
    assert ai["shift_sd"].iloc[0] < -1.0
    assert "id='key-shift'>-" in (tmp_path / "compare.html").read_text(encoding="utf-8")

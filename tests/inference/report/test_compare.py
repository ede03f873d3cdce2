"""``compare DIR_A DIR_B``: the shift of each shared posterior in sd units, the overlays and
which conclusions change."""

from __future__ import annotations

import pandas as pd
import pytest

from inference.cli import main
from inference.report.compare import compare_runs
from tests.inference.report.fixture_runs import fixture_run


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("compare")
    a = fixture_run("zhao2025", base / "a", unconverged=None, seed=1)
    b = fixture_run("zhao2025", base / "b", unconverged=None, seed=1, shift=-3.0)
    return a, b


def test_compare_shows_the_ai_slope_shift(two_runs, tmp_path):
    a, b = two_runs
    table = compare_runs(a, b, tmp_path, progress=lambda _m: None)
    ai = table[(table["table"] == "2") & (table["column"] == "6") & (table["term"] == "AI")]
    assert len(ai) == 1 and ai["shift_sd"].iloc[0] == pytest.approx(-3.0, abs=1e-6)
    written = pd.read_csv(tmp_path / "compare.csv", dtype={"table": str, "column": str})
    assert len(written) == len(table) > 20
    assert written["data_label_a"].str.startswith("SYNTHETIC").all()
    page = (tmp_path / "compare.html").read_text(encoding="utf-8")
    assert "id='key-shift'>-3.00<" in page
    assert page.count("<img src='data:image/png;base64,") >= 10
    assert "SYNTHETIC" in page


def test_conclusions_that_change_are_named(two_runs, tmp_path):
    a, b = two_runs
    table = compare_runs(a, b, tmp_path, progress=lambda _m: None)
    # Table 7 column 3 (west): 0.0392 with t 0.46 excludes 0 in neither run; a -3 sd shift
    # makes its HDI exclude 0 below it.
    west = table[(table["table"] == "7") & (table["column"] == "3") & (table["term"] == "AI")]
    assert bool(west["conclusion_changes"].iloc[0]) is True
    same = compare_runs(a, a, tmp_path / "same", progress=lambda _m: None)
    assert not same["conclusion_changes"].any() and (same["shift_sd"] == 0).all()


def test_compare_command_line_and_bad_input(two_runs, tmp_path, capsys):
    a, b = two_runs
    assert main(["compare", str(a), str(b), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "compare.html").exists()
    assert main(["compare", str(a), str(tmp_path / "nowhere")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err
    other = fixture_run("fu2021", tmp_path / "fu")
    assert main(["compare", str(a), str(other)]) == 2
    assert "only runs of one study can be compared" in capsys.readouterr().err

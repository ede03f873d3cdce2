"""The sensitivity section of the report, built from a sensitivity folder's files."""

from __future__ import annotations

import json

import pandas as pd

from inference.report.sensitivity_section import sensitivity_section, write_page
from inference.sensitivity.tables import grid_frame, grid_row

LABEL = "SYNTHETIC (calibrated to the published tables; not evidence about China)"


def result(mean, sd, problems=(), claim=0.99):
    return {"rows": [{"term": "AI", "estimate": mean, "std_error": sd, "ci_low": mean - 2 * sd,
                      "ci_high": mean + 2 * sd, "prob_positive": 0.999, "r_hat": 1.0,
                      "ess_bulk": 900.0}],
            "problems": list(problems), "claims": {"ai_raises_innovation": claim}}


def folder_with_grid(tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    default = result(0.25, 0.05)
    rows = [grid_row("zhao2025", "2/6", "twfe", "default", "default", "slope.AI=normal(0, 18)",
                     default, "AI", default, ["ai_raises_innovation"]),
            grid_row("zhao2025", "2/6", "twfe", "slope.AI", "sceptical",
                     "slope.AI=normal(0, 0.15)", result(0.20, 0.05, ["r_hat of AI is 1.02"],
                                                        0.97),
                     "AI", default, ["ai_raises_innovation"]),
            grid_row("zhao2025", "2/6", "twfe", "group_sd", "wide", "", None, "AI", default,
                     ["ai_raises_innovation"], why="the default fit has no prior 'group_sd'")]
    grid = grid_frame(rows, LABEL)
    grid.to_csv(tmp_path / "prior_grid.csv", index=False)
    (tmp_path / "sensitivity.json").write_text(json.dumps(
        {"study": "zhao2025", "data_label": LABEL, "synthetic": True, "seed": 1,
         "sampling": {"draws": 300}}))
    return grid


def test_grid_rows_shift_and_verdicts(tmp_path):
    grid = folder_with_grid(tmp_path)
    # (0.20 - 0.25) / 0.05: one default posterior sd towards 0.
    assert grid["shift_sd"].iloc[0] == 0.0
    assert abs(grid["shift_sd"].iloc[1] + 1.0) < 1e-12
    assert pd.isna(grid["shift_sd"].iloc[2]) and pd.isna(grid["mean"].iloc[2])
    assert grid["convergence"].iloc[1].startswith("NOT converged: r_hat of AI")
    assert grid["convergence"].iloc[2] == "not fitted: the default fit has no prior 'group_sd'"
    assert list(grid["claim_ai_raises_innovation"].iloc[:2]) == [0.99, 0.97]
    assert (grid["data_label"] == LABEL).all()


def test_section_shows_every_alternative_next_to_the_default(tmp_path):
    folder_with_grid(tmp_path)
    text = sensitivity_section(tmp_path)
    assert "Table 2 column 6: AI under each prior (SYNTHETIC data)" in text
    assert "0.2500 (0.0500) [0.1500, 0.3500]" in text       # default
    assert "0.2000 (0.0500) [0.1000, 0.3000]" in text       # sceptical
    assert "line-through'>0.2000 (0.0500)" in text          # struck through: not converged
    assert "NOT converged: r_hat of AI is 1.02" in text
    assert "not fitted: the default fit has no prior &#x27;group_sd&#x27;" in text
    assert "P(ai_raises_innovation)" in text and "0.970" in text
    assert LABEL in text
    page = write_page(tmp_path).read_text()
    assert "id='synthetic-banner'" in page


def test_no_section_without_a_grid(tmp_path):
    assert sensitivity_section(tmp_path) == ""


def test_the_study_report_shows_the_sensitivity_folder(tmp_path):
    from inference.report import build_report
    from tests.inference.report.fixture_runs import fixture_run

    run = fixture_run("zhao2025", tmp_path / "run")
    folder_with_grid(run / "sensitivity")
    page = build_report("zhao2025", run, progress=lambda _m: None).read_text(encoding="utf-8")
    start = page.index("<section id='prior-grid'>")
    section = page[start:page.index("</section>", start)]
    assert "Prior grid and power-scaling sequence" in section
    assert "0.2000 (0.0500) [0.1000, 0.3000]" in section


def test_section_lists_every_claim_and_the_base_of_the_grid(tmp_path):
    from inference.registry import load_study
    from inference.sensitivity.claims import claims_frame
    from inference.sensitivity.tasks import find_spec

    grid = folder_with_grid(tmp_path)
    study = load_study("zhao2025")
    claims_frame(study, [find_spec(study, "2/6")], grid, LABEL).to_csv(
        tmp_path / "claims.csv", index=False)
    meta = json.loads((tmp_path / "sensitivity.json").read_text())
    meta["prior_base"] = "--priors mine.toml: slope.AI=normal(0, 1)"
    (tmp_path / "sensitivity.json").write_text(json.dumps(meta))
    text = sensitivity_section(tmp_path)
    assert "Base of the grid: --priors mine.toml: slope.AI=normal(0, 1)." in text
    assert ("assessed on 2/6: 0.99 under the default prior, 0.97 to 0.99 over it and the 1 "
            "fitted alternatives") in text
    assert "<td>0.970 &ndash; 0.990</td>" in text
    assert "not assessed: rests on 6/1, which this run did not refit (add --spec 6/1)" in text
    assert text.count("not assessed") == 9

"""The Python API: ``from inference import run_study, compare_runs, fit_panel``."""

from __future__ import annotations

import arviz as az

import inference
from inference import compare_runs, load_study_run, run_study
from tests.inference.report.fixture_runs import fixture_run


def test_run_study_returns_results_and_writes_the_folder(tmp_path):
    run = run_study("fu2021", out=tmp_path / "fu", frequentist_only=True, seed=2,
                    progress=lambda _m: None)
    assert set(run.results["source"]) == {"published", "frequentist"}
    assert run.report.exists() and (run.folder / "claims.csv").exists()
    assert run.posteriors == {} and run.bayesian().empty


def test_a_saved_run_reads_back_with_posteriors_by_specification(tmp_path):
    folder = fixture_run("zhao2025", tmp_path / "zhao")
    run = load_study_run(folder)
    assert isinstance(run.posteriors["2/6"], az.InferenceData)
    assert "AI" in run.posteriors["2/6"].posterior["slope"].coords["coef"].values
    shifted = fixture_run("zhao2025", tmp_path / "zhao_b", shift=1.0)
    table = compare_runs(folder, shifted, tmp_path / "cmp", progress=lambda _m: None)
    assert (table["shift_sd"].round(6) == 1.0).all()


def test_the_api_is_named_at_the_top():
    assert {"run_study", "compare_runs", "fit_panel"} <= set(inference.__all__)
    assert all(callable(getattr(inference, name)) and getattr(inference, name).__doc__
               for name in inference.__all__)

"""The sensitivity command end to end on a threshold, an event-study and a mediation
specification (tiny draws): each grid row holds the numbers of a direct fit of the same
specification under the same priors, options, sampler settings and seed, the alternative's
prior moves the estimate the way it must, and the claims the spec carries have the same
probabilities as in the direct fit."""

from __future__ import annotations

import pandas as pd
import pytest

from inference.sensitivity import SensitivityOptions, run_sensitivity
from inference.sensitivity.tables import key_row
from inference.sensitivity.tasks import refit

pytestmark = pytest.mark.slow
DRAWS, TUNE, CHAINS, SEED = 80, 80, 2, 7
SAMPLING = {"draws": DRAWS, "tune": TUNE, "chains": CHAINS}
NUMBERS = {"mean": "estimate", "sd": "std_error", "hdi_low": "ci_low", "hdi_high": "ci_high",
           "prob_positive": "prob_positive", "r_hat": "r_hat"}


def _run(tmp_path, study, spec, grid_text) -> pd.DataFrame:
    grid = tmp_path / "grid.toml"
    grid.write_text("[defaults]\nreplace = true\n" + grid_text, encoding="utf-8")
    outcome = run_sensitivity(SensitivityOptions(
        study=study, specs=(spec,), grid=grid, out=tmp_path / "out", workers=1, seed=SEED,
        draws=DRAWS, tune=TUNE, chains=CHAINS), progress=lambda _line: None)
    return outcome


def _same(row: pd.Series, study, spec, term, priors=None, options=None) -> dict:
    """Assert that a grid row holds the numbers of a direct fit; returns that fit."""
    direct = refit(study, spec, priors=priors, options=options, sampling=SAMPLING, seed=SEED,
                   key_term=term)
    expected = key_row(direct, term)
    assert expected["term"] == term == row["term"]
    for column, name in NUMBERS.items():
        assert row[column] == pytest.approx(expected[name], rel=1e-12, abs=1e-14), column
    for claim, probability in direct["claims"].items():
        assert row[f"claim_{claim}"] == pytest.approx(probability, abs=1e-12), claim
    return direct


def test_threshold_spec(tmp_path):
    outcome = _run(tmp_path, "zhao2025", "5/2",
                   '[slope.AI_regime1]\nfixed = "normal(0, 0.02)"\n'
                   '[threshold_prior]\nvalue = "uniform_value"\n')
    grid = outcome.grid.set_index("alternative")
    assert list(grid.index) == ["default", "fixed", "value"]
    assert grid["converged"].notna().all() and grid["mean"].notna().all()
    _same(grid.loc["default"], "zhao2025", "5/2", "AI_regime1")
    _same(grid.loc["fixed"], "zhao2025", "5/2", "AI_regime1",
          priors={"slope.AI_regime1": "normal(0, 0.02)"})
    _same(grid.loc["value"], "zhao2025", "5/2", "AI_regime1",
          options={"threshold_prior": "uniform_value"})
    # A prior sd of 0.02 around 0 pulls a slope of about 0.25 (posterior sd about 0.04) in.
    assert grid.loc["fixed", "mean"] < grid.loc["default", "mean"] - grid.loc["default", "sd"]
    assert "claim_va_weakens" in grid
    claims = outcome.claims.set_index("claim_id")
    assert claims.loc["va_weakens", "status"].startswith("assessed on 5/2")
    assert claims.loc["ai_raises_innovation", "status"] == (
        "not assessed: rests on 2/6, which this run did not refit (add --spec 2/6)")


def test_event_study_spec(tmp_path):
    """The path prior and the likelihood: the default row is the normal fit of the default
    (which fits negbin too), the rw1 row a normal fit under rw1, the negbin row the count
    likelihood alone under the normal model's term names."""
    outcome = _run(tmp_path, "zhu2025", "5/1",
                   '[event_path]\nrw1 = "rw1"\n[likelihood]\nnegbin = "negbin"\n')
    grid = outcome.grid.set_index("alternative")
    assert list(grid.index) == ["default", "rw1", "negbin"]
    normal = {"likelihoods": ["normal"]}
    _same(grid.loc["default"], "zhu2025", "5/1", "post_average", options=normal)
    _same(grid.loc["rw1"], "zhu2025", "5/1", "post_average", priors={"event_path": "rw1"},
          options=normal)
    _same(grid.loc["negbin"], "zhu2025", "5/1", "post_average",
          options={"likelihoods": ["negbin"]})
    assert grid.loc["negbin", "prior"] == "likelihoods=['negbin']"
    assert grid["claim_plan_moved_entry"].notna().all()


def test_mediation_spec(tmp_path):
    """The confounding rho: the indirect effect through Va (column 3) and both mediation
    claims (columns 3 and 5 of the spec 6/1) under each prior."""
    outcome = _run(tmp_path, "zhao2025", "6/1",
                   '[confounding_rho]\nnarrow = "normal(0, 0.1)"\n')
    grid = outcome.grid.set_index("alternative")
    assert list(grid.index) == ["default", "narrow"]
    _same(grid.loc["default"], "zhao2025", "6/1", "indirect_Va")
    direct = _same(grid.loc["narrow"], "zhao2025", "6/1", "indirect_Va",
                   priors={"confounding_rho": "normal(0, 0.1)"})
    assert set(direct["claims"]) == {"va_mediates", "ind_mediates"}
    claims = outcome.claims.set_index("claim_id")
    assert claims.loc["va_mediates", "alternatives"] == 1
    assert claims.loc["ind_mediates", "status"].startswith("assessed on 6/1")

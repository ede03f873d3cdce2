"""Posterior predictive draws of the partial-pooling model: replicates of the outcome from
the TWFE likelihood with group-varying slopes (:mod:`models.panel.predictive`)."""

from __future__ import annotations

import numpy as np
import pytest

from models.heterogeneity.bayes import fit_bayes_heterogeneity
from models.heterogeneity.model import prepare_heterogeneity
from models.panel.marginal import add_observed_data
from models.panel.predictive import add_posterior_predictive
from tests.models.heterogeneity.test_bayes import TRUE_CONTROL, TRUE_SLOPES, simulate_panel
from tests.models.panel.test_predictive import _additive_truth
from tests.models.predictive_checks import (
    assert_flagged,
    assert_replicates_match,
    point_posterior,
)


def _at_truth(frame, sigma: float):
    design = prepare_heterogeneity(frame, "y", ["x", "w"], "region", "unit", "year",
                                   groups=list(TRUE_SLOPES)).panel
    group_slope = frame["region"].map(TRUE_SLOPES).to_numpy()
    mean = group_slope * frame["x"].to_numpy() + TRUE_CONTROL * frame["w"].to_numpy()
    # The effects: what is left of the data once the regressors and the noise are gone,
    # as the unit and year means of y - mean (noise averages out to within sampling error).
    truth = _additive_truth(design, mean + _effects(frame, mean))
    idata = point_posterior({**truth, "sigma": sigma},
                            coords={"coef": list(design.regressors)},
                            dims={"slope": ["coef"], "unit_effect": ["unit"],
                                  "year_effect": ["year"]})
    add_posterior_predictive(idata, design, seed=8)
    add_observed_data(idata, design)
    return idata, truth, design


def _effects(frame, mean):
    rest = frame["y"].to_numpy() - mean
    unit = frame.groupby("unit")["y"].transform("size").to_numpy()
    unit_mean = (frame.assign(r=rest).groupby("unit")["r"].transform("mean")).to_numpy()
    year_mean = (frame.assign(r=rest).groupby("year")["r"].transform("mean")).to_numpy()
    assert unit.min() == unit.max()  # balanced: two-way means add up
    return unit_mean + year_mean - rest.mean()


def test_replicates_match_the_data_with_group_slopes():
    frame = simulate_panel(seed=21)
    idata, truth, design = _at_truth(frame, sigma=0.5)
    # The interacted slopes the replicates use are the true group slopes.
    slopes = dict(zip(design.regressors, truth["slope"], strict=True))
    assert np.allclose([slopes[f"x[{g}]"] for g in TRUE_SLOPES], list(TRUE_SLOPES.values()))
    assert idata.posterior_predictive["y"].dtype == np.float32
    assert_replicates_match(idata, "y", ("mean", "sd", "skewness", "kurtosis"))


def test_errors_whose_spread_differs_by_group_are_flagged_by_their_tails():
    frame = simulate_panel(seed=22, noise_sd=0.0)
    rng = np.random.default_rng(23)
    scale = frame["region"].map({"east": 0.2, "central": 0.5, "west": 3.0}).to_numpy()
    frame["y"] += scale * rng.standard_normal(len(frame))
    idata, _, _ = _at_truth(frame, sigma=float(np.sqrt(np.mean(scale**2))))
    # One sigma for all groups: a normal with the pooled variance has light tails.
    assert assert_flagged(idata, "y", "kurtosis") == 0.0
    assert_replicates_match(idata, "y", ("mean", "sd"))


@pytest.mark.slow
def test_fit_saves_replicates(tmp_path):
    import arviz as az

    frame = simulate_panel(seed=24)
    fit = fit_bayes_heterogeneity(frame, "y", ["x", "w"], "region", "unit", "year",
                                  groups=list(TRUE_SLOPES), draws=200, tune=200, chains=2,
                                  seed=2)
    saved = az.from_netcdf(fit.save_netcdf(tmp_path / "pooled.nc"))
    assert saved.posterior_predictive["y"].dtype == np.float32
    assert saved.posterior_predictive.sizes["chain"] * saved.posterior_predictive.sizes[
        "draw"] == 100
    assert_replicates_match(saved, "y", ("mean", "sd", "skewness"))

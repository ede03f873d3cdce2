"""Posterior predictive draws of the panel threshold and smooth transition models: replicates
of the outcome in levels, unit effects drawn back, from each model's likelihood."""

from __future__ import annotations

import numpy as np
import pytest

from models.threshold.bayes import fit_bayes_threshold
from models.threshold.data import prepare_threshold_data
from models.threshold.predictive import (
    add_smooth_transition_predictive,
    add_threshold_predictive,
)
from models.threshold.smooth_transition import transition
from tests.models.predictive_checks import (
    assert_flagged,
    assert_replicates_match,
    flat_effects_excess,
    point_posterior,
)
from tests.models.threshold.test_bayes import simulate_panel

SIGMA = 0.5


def _stats(frame):
    return prepare_threshold_data(frame, y="y", regime="x", threshold="q", fixed=["f"],
                                  unit="unit", period="year", grid_size=40, trim=0.05)


def _sharp(frame, thresholds=(0.0,), deltas=(1.0, 2.0), sigma=SIGMA):
    stats = _stats(frame)
    values = {"slope": [0.5, *deltas], "sigma": sigma}
    dims = {"slope": ["coef"]}
    if thresholds:
        values["gamma"] = list(thresholds)
        dims["gamma"] = ["threshold"]
    idata = point_posterior(values, coords={"coef": stats.term_names(len(thresholds)),
                                            "threshold": [f"gamma_{r + 1}" for r in
                                                          range(len(thresholds))]},
                            dims=dims)
    add_threshold_predictive(idata, stats, seed=2)
    return idata, stats


def test_replicates_match_the_data_at_the_true_thresholds():
    frame = simulate_panel(n_units=120, n_periods=8, gammas=(-0.5, 0.6),
                           deltas=(1.0, 2.0, -1.0), seed=3)
    idata, stats = _sharp(frame, thresholds=(-0.5, 0.6), deltas=(1.0, 2.0, -1.0))
    replicates = idata.posterior_predictive["y"]
    assert replicates.dtype == np.float32 and replicates.sizes["obs"] == len(frame)
    # observed_data is the outcome in levels, units and periods in sorted order.
    expected = frame.sort_values(["unit", "year"])["y"].to_numpy()
    np.testing.assert_allclose(idata.observed_data["y"].values, expected)
    excess = flat_effects_excess(SIGMA**2, stats.n_units, len(frame))
    assert_replicates_match(idata, "y", ("mean", "sd", "skewness", "kurtosis"),
                            excess_variance=excess)
    # About the true regression, a replicate is its unit's drawn effect plus a new error, so
    # its deviations from its unit mean have sd sigma sqrt((T - 1) / T): the regimes are right.
    frame = frame.sort_values(["unit", "year"])
    slope = np.array([1.0, 2.0, -1.0])[np.searchsorted([-0.5, 0.6], frame["q"], side="right")]
    regression = 0.5 * frame["f"].to_numpy() + slope * frame["x"].to_numpy()
    resid = replicates.values.reshape(-1, len(frame)) - regression
    resid = resid.reshape(resid.shape[0], stats.n_units, stats.n_periods)
    within = resid - resid.mean(axis=-1, keepdims=True)
    ratio = within.std() / (SIGMA * np.sqrt((stats.n_periods - 1) / stats.n_periods))
    assert abs(ratio - 1) < 0.02


def test_linear_model_replicates_and_skewed_errors_are_flagged():
    rng = np.random.default_rng(4)
    frame = simulate_panel(n_units=120, n_periods=8, gammas=(), deltas=(1.5,), sigma=0.0,
                           seed=4)
    frame["y"] += 2.0 * (rng.exponential(size=len(frame)) - 1.0)
    idata, stats = _sharp(frame, thresholds=(), deltas=(1.5,), sigma=2.0)
    assert assert_flagged(idata, "y", "skewness") == 0.0
    assert_replicates_match(idata, "y", ("mean",))


def test_smooth_transition_replicates_mix_the_regime_slopes():
    frame = simulate_panel(n_units=120, n_periods=8, seed=5)
    stats = _stats(frame)
    scale = float(np.std(stats.levels.q, ddof=1))

    def weight(q, gamma, location):
        return transition(q, gamma, location, scale)
    # A very sharp transition at 0 is the single-threshold model of the data.
    idata = point_posterior({"slope": [0.5, 1.0, 2.0], "sigma": SIGMA, "gamma": 1e4,
                             "location": 0.0},
                            coords={"coef": stats.term_names(1)}, dims={"slope": ["coef"]})
    add_smooth_transition_predictive(idata, stats, weight, seed=6)
    excess = flat_effects_excess(SIGMA**2, stats.n_units, len(frame))
    assert_replicates_match(idata, "y", ("mean", "sd", "skewness"), excess_variance=excess)
    # A nearly linear transition (gamma small) averages the slopes: the replicates lose the
    # regime structure and their spread falls short of the data's.
    flat = point_posterior({"slope": [0.5, 1.5, 1.5], "sigma": SIGMA, "gamma": 1e-3,
                            "location": 0.0},
                           coords={"coef": stats.term_names(1)}, dims={"slope": ["coef"]})
    add_smooth_transition_predictive(flat, stats, weight, seed=6)
    sharp_sd = float(idata.posterior_predictive["y"].std())
    assert float(flat.posterior_predictive["y"].std()) < sharp_sd


@pytest.mark.slow
def test_fit_saves_replicates_in_levels(tmp_path):
    import arviz as az

    frame = simulate_panel(n_units=60, n_periods=8, seed=7)
    fit = fit_bayes_threshold(frame, y="y", regime="x", threshold="q", fixed=["f"],
                              unit="unit", period="year", grid_size=40, trim=(0.05,),
                              draws=150, tune=150, chains=2, seed=1)
    saved = az.from_netcdf(fit.save_netcdf(tmp_path / "threshold.nc"))
    assert saved.posterior_predictive["y"].sizes["obs"] == len(frame)
    assert saved.observed_data["y"].sizes["obs"] == len(frame)
    assert_replicates_match(saved, "y", ("mean", "skewness"))

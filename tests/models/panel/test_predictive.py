"""Posterior predictive draws of the normal Bayesian TWFE: replicates of the outcome from the
model's own linear predictor and noise, thinned, and drawable by ``arviz.plot_ppc``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from models.panel.bayes import fit_bayes_twfe
from models.panel.design import prepare_panel
from models.panel.predictive import PREDICTIVE_DRAWS
from tests.models.panel.test_bayes import FAST, simulate_panel


def test_replicates_are_the_model_prediction_plus_its_noise():
    panel = simulate_panel(seed=11)
    fit = fit_bayes_twfe(panel, "y", ["x1", "x2"], "city", "year", seed=4, **FAST)
    idata = fit.idata
    replicates = idata.posterior_predictive["y"]
    assert replicates.dtype == np.float32
    assert replicates.sizes["chain"] == FAST["chains"]
    assert PREDICTIVE_DRAWS <= replicates.sizes["chain"] * replicates.sizes["draw"] < 2 * (
        PREDICTIVE_DRAWS)
    # Standardised by the same draws' linear predictor and sigma, the replicates are N(0, 1).
    design = prepare_panel(panel, "y", ["x1", "x2"], "city", "year")
    post = idata.posterior.sel(draw=replicates.draw)
    eta = (post["intercept"].values[..., None] + post["slope"].values @ design.x_within.T
           + post["unit_effect"].values[..., design.unit_idx]
           + post["year_effect"].values[..., design.time_idx])
    z = (replicates.values - eta) / post["sigma"].values[..., None]
    assert stats.kstest(z.reshape(-1)[:20000], "norm").pvalue > 1e-3
    # The model fits its own simulated data: replicates spread like the outcome.
    assert abs(np.std(replicates.values) / panel["y"].std() - 1) < 0.05


def test_plot_ppc_draws_it():
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    panel = simulate_panel(seed=12)
    fit = fit_bayes_twfe(panel, "y", ["x1", "x2"], "city", "year", seed=5, **FAST)
    axes = az.plot_ppc(fit.idata, num_pp_samples=20)
    assert np.size(axes) >= 1


def _additive_truth(design, eta):
    """Posterior values (intercept, slope, unit_effect, year_effect) whose linear predictor
    is ``eta`` on a balanced panel: the slopes from the within part, the rest split into
    the grand mean, unit and sum-to-zero year deviations."""
    slope = np.linalg.lstsq(design.x_within, eta, rcond=None)[0]
    rest = eta - design.x_within @ slope
    intercept = rest.mean()
    unit = np.bincount(design.unit_idx, rest) / np.bincount(design.unit_idx) - intercept
    year = np.bincount(design.time_idx, rest) / np.bincount(design.time_idx) - intercept
    return {"intercept": intercept, "slope": slope, "unit_effect": unit, "year_effect": year}


def _count_panel(seed, n_units=150, n_years=8, alpha=3.0, zero_share=0.0):
    """counts ~ NegBin(exp(0.8 + 0.4 x + a_i + l_t), alpha), a share ``zero_share`` of them
    set to 0 (zero inflation: a model the negative binomial does not contain)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_years)
    year = np.tile(np.arange(n_years), n_units)
    a = rng.normal(0, 0.6, n_units)
    x = rng.normal(size=unit.size) + 0.5 * a[unit]
    eta = 0.8 + 0.4 * x + a[unit] + 0.1 * year
    counts = rng.negative_binomial(alpha, alpha / (alpha + np.exp(eta)))
    counts[rng.random(unit.size) < zero_share] = 0
    frame = pd.DataFrame({"city": unit, "year": year, "x": x, "n": counts})
    design = prepare_panel(frame, "n", ["x"], "city", "year")
    return design, eta


def _point_fit(design, values):
    from tests.models.predictive_checks import point_posterior

    return point_posterior(values, coords={"coef": ["x"]},
                           dims={"slope": ["coef"], "unit_effect": ["unit"],
                                 "year_effect": ["year"]})


@pytest.mark.parametrize("zero_share", [0.0, 0.3])
def test_negative_binomial_replicates_are_counts_and_flag_zero_inflation(zero_share):
    from models.bayes.predictive import ppc_table
    from models.panel.marginal import add_observed_data
    from models.panel.predictive import add_posterior_predictive
    from tests.models.predictive_checks import assert_flagged, assert_replicates_match

    design, eta = _count_panel(3, zero_share=zero_share)
    idata = _point_fit(design, {**_additive_truth(design, eta), "alpha": 3.0})
    add_posterior_predictive(idata, design, seed=1, likelihood="negbin")
    add_observed_data(idata, design)
    replicates = idata.posterior_predictive["n"]
    assert replicates.dtype == np.int32 and int(replicates.min()) >= 0
    if zero_share == 0:
        # The right model: counts spread, zeros and dispersion like the data's.
        assert_replicates_match(idata, "n", ("mean", "sd", "share_zero", "variance/mean"))
    else:
        # 30% extra zeros: the replicates have far fewer (p-value 0: none reaches the data).
        assert assert_flagged(idata, "n", "share_zero") < 0.025
        row = ppc_table(idata).set_index("statistic").loc["share_zero"]
        assert row["observed"] > row["replicated_mean"] + 0.2


def test_student_t_replicates_have_the_model_tails():
    from models.panel.marginal import add_observed_data
    from models.panel.predictive import add_posterior_predictive
    from tests.models.predictive_checks import assert_flagged, assert_replicates_match

    design, eta = _count_panel(4)
    rng = np.random.default_rng(5)
    y = eta + 0.5 * rng.standard_t(3.0, eta.size)
    design = dataclasses.replace(design, y=y)
    truth = {**_additive_truth(design, eta), "sigma": 0.5, "nu": 3.0}
    idata = _point_fit(design, truth)
    add_posterior_predictive(idata, design, seed=2, likelihood="student_t")
    add_observed_data(idata, design)
    assert_replicates_match(idata, "n", ("mean", "sd"))
    # The same data against a normal likelihood of the same sd: tails far too light.
    normal = _point_fit(design, {**truth, "sigma": float(np.std(y - eta))})
    add_posterior_predictive(normal, design, seed=2)
    add_observed_data(normal, design)
    assert assert_flagged(normal, "n", "kurtosis") == 0.0

"""Posterior predictive draws of the normal Bayesian TWFE: replicates of the outcome from the
model's own linear predictor and noise, thinned, and drawable by ``arviz.plot_ppc``."""

from __future__ import annotations

import numpy as np
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

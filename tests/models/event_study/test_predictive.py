"""Posterior predictive draws of the negative-binomial event study: replicates of the raw
counts from the fit's own likelihood, checked on the counts (share of zeros, dispersion)."""

from __future__ import annotations

import numpy as np
import pytest

from models.bayes.predictive import ppc_table
from models.event_study.bayes import fit_bayes_event_study
from tests.models.event_study.dgp import REFERENCE, simulate_event_panel
from tests.models.predictive_checks import assert_flagged, assert_replicates_match


def _fit(panel):
    return fit_bayes_event_study(panel, "y", "v", reference=REFERENCE, likelihood="negbin",
                                 path_prior="independent(scale=10)", draws=200, tune=300,
                                 chains=2, seed=3)


@pytest.mark.slow
def test_negative_binomial_fit_replicates_the_counts(tmp_path):
    import arviz as az

    panel = simulate_event_panel(6, n_units=100, likelihood="negbin")
    saved = az.from_netcdf(_fit(panel).save_netcdf(tmp_path / "negbin.nc"))
    replicates = saved.posterior_predictive["y"]
    assert replicates.dtype == np.int32 and int(replicates.min()) >= 0
    assert replicates.sizes["chain"] * replicates.sizes["draw"] == 100
    np.testing.assert_array_equal(np.sort(saved.observed_data["y"].values),
                                  np.sort(panel["y"].to_numpy()))
    assert_replicates_match(saved, "y", ("mean", "sd", "share_zero", "variance/mean"))


@pytest.mark.slow
def test_underdispersed_counts_are_flagged():
    # Binomial(30, 0.3) counts around small unit effects: variance 0.7 of the mean, below
    # the Poisson limit (alpha -> infinity) of every negative binomial.
    panel = simulate_event_panel(7, n_units=100, likelihood="negbin")
    rng = np.random.default_rng(8)
    effect = rng.normal(0.0, 0.1, panel["city"].nunique())[panel["city"].to_numpy()]
    panel["y"] = rng.binomial(30, np.clip(0.3 * np.exp(effect), 0, 1))
    fit = _fit(panel)
    row = ppc_table(fit.idata).set_index("statistic").loc["variance/mean"]
    assert assert_flagged(fit.idata, "y", "variance/mean") > 0.975
    assert row["observed"] < 0.85 < row["replicated_mean"]

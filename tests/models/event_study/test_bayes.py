"""The Bayesian event study against the frequentist event study (normal likelihood, weak
priors) and pyfixest's Poisson fixed-effects event study (negative binomial)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from data.errors import DataError
from models.event_study.bayes import fit_bayes_event_study
from models.event_study.twfe import fit_event_study
from tests.models.event_study.dgp import REFERENCE, TRUE_PATH, simulate_event_panel

TERMS = [f"Treat_x_{y}" for y in (2010, 2011, 2012, 2013, 2015, 2016, 2017)]


@pytest.fixture(scope="module")
def normal_panel() -> pd.DataFrame:
    return simulate_event_panel(11, n_units=100)


@pytest.fixture(scope="module")
def weak_fit(normal_panel):
    return fit_bayes_event_study(
        normal_panel, "y", "v", ["x"], reference=REFERENCE, path_prior="independent(scale=100)",
        transform="none", draws=1000, tune=500, chains=2, seed=5)


def test_weak_prior_normal_path_equals_the_frequentist_event_study(normal_panel, weak_fit):
    frequentist = fit_event_study(normal_panel, "y", "v", ["x"], reference=REFERENCE,
                                  vcov="iid", transform="none").tidy().set_index("term")
    bayes = weak_fit.tidy().set_index("term")
    assert weak_fit.divergences == 0
    for term in TERMS:
        mc_error = bayes.loc[term, "std_error"] / np.sqrt(bayes.loc[term, "ess_bulk"])
        gap = abs(bayes.loc[term, "estimate"] - frequentist.loc[term, "estimate"])
        # Monte Carlo error: 4 MC standard errors; the flat-prior posterior mean is the
        # TWFE estimate exactly (orthogonal within split).
        assert gap < 4 * mc_error, (term, gap, mc_error)
        # Posterior sd is the iid standard error up to the sd's own Monte Carlo error.
        assert bayes.loc[term, "std_error"] == pytest.approx(
            frequentist.loc[term, "std_error"], rel=0.1)


def test_fit_records_priors_log_prior_and_log_likelihood(weak_fit, normal_panel):
    assert weak_fit.priors["event_path"]["prior"].startswith("independent")
    assert "slope.x" in weak_fit.priors and "slope.Treat_x_2016" not in weak_fit.priors
    assert {"event_path", "slope_controls"} <= set(weak_fit.idata.log_prior.data_vars)
    assert weak_fit.idata.log_likelihood["y"].shape[-1] == len(normal_panel)
    assert weak_fit.event_years == [2010, 2011, 2012, 2013, 2015, 2016, 2017]


@pytest.mark.parametrize("kind", ["hierarchical", "rw2"])
def test_pooling_priors_fit_and_stay_near_the_truth(normal_panel, kind):
    fit = fit_bayes_event_study(normal_panel, "y", "v", ["x"], reference=REFERENCE,
                                path_prior=kind, transform="none", draws=400, tune=400,
                                chains=2, seed=2)
    frequentist = fit_event_study(normal_panel, "y", "v", ["x"], reference=REFERENCE,
                                  vcov="iid", transform="none").tidy().set_index("term")
    bayes = fit.tidy().set_index("term")
    truth = np.array([TRUE_PATH[int(term[-4:])] for term in TERMS])
    # The true path is smooth and the data informative: pooled or smoothed, every coefficient
    # stays within two standard errors of the truth, and the path is no further from it than
    # the unpooled estimate. (Measured from the frequentist estimate instead, the gap reaches
    # two standard errors where that estimate's own noise is large, as at 2013.)
    error = bayes.loc[TERMS, "estimate"].to_numpy() - truth
    assert (np.abs(error) < 2 * frequentist.loc[TERMS, "std_error"].to_numpy()).all(), error
    unpooled = frequentist.loc[TERMS, "estimate"].to_numpy() - truth
    assert np.sqrt(np.mean(error**2)) <= np.sqrt(np.mean(unpooled**2)), (error, unpooled)
    assert fit.priors["event_path"]["prior"].startswith(kind)
    hyper = "path_sd" if kind == "hierarchical" else "path_tau"
    assert hyper in fit.idata.log_prior


def test_negative_binomial_against_pyfixest_poisson():
    panel = simulate_event_panel(4, n_units=150, likelihood="negbin")
    fit = fit_bayes_event_study(panel, "y", "v", reference=REFERENCE, likelihood="negbin",
                                path_prior="independent(scale=10)", draws=400, tune=400,
                                chains=2, seed=1)
    data = panel.copy()
    data["treat"] = (data["v"] > data.groupby("city")["v"].first().median()).astype(int)
    poisson = pf.fepois(f"y ~ i(year, treat, ref={REFERENCE}) | city + year", data=data,
                        vcov={"CRV1": "city"})
    reference = poisson.tidy()
    bayes = fit.tidy().set_index("term")
    for term, year in zip(TERMS, [2010, 2011, 2012, 2013, 2015, 2016, 2017]):
        row = reference[reference.index.str.contains(f"{year}")].iloc[0]
        # Both estimate the same log rate ratio consistently, with different weights (the
        # negative binomial downweights large counts, Poisson does not): they agree to a
        # fraction of the standard error, not to Monte Carlo error. Tolerance: 0.5 SE.
        assert abs(bayes.loc[term, "estimate"] - row["Estimate"]) < 0.5 * row["Std. Error"], (
            term, bayes.loc[term, "estimate"], row["Estimate"])
    ratio = bayes.loc["rate_ratio_Treat_x_2017"]
    assert ratio["estimate"] == pytest.approx(np.exp(bayes.loc["Treat_x_2017", "estimate"]),
                                              rel=0.05)


def test_bad_input_names_the_column(normal_panel):
    with pytest.raises(DataError, match="non-negative integer counts"):
        fit_bayes_event_study(normal_panel, "y", "v", reference=REFERENCE, likelihood="negbin")
    with pytest.raises(DataError, match="reference year 2030"):
        fit_bayes_event_study(normal_panel, "y", "v", reference=2030)
    with pytest.raises(DataError, match="needs column"):
        fit_bayes_event_study(normal_panel, "missing", "v", reference=REFERENCE)

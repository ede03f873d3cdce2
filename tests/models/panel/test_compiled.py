"""The compile-once model equals the model built for each design, and its log prior is right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from inference.datasets import default_data_path
from models.panel.bayes import resolve_priors
from models.panel.design import prepare_panel
from models.panel.model import build_twfe_model, marginal_model_data

REGRESSORS = ["AI", "Eco", "Huc", "Edu", "Fis", "Gov"]


@pytest.fixture(scope="module")
def designs():
    panel = pd.read_csv(default_data_path("zhao2025"))
    full = prepare_panel(panel, "Inn", REGRESSORS, "city", "year")
    east = prepare_panel(panel[panel["region"] == "east"], "Inn", REGRESSORS, "city", "year")
    return full, east


@pytest.mark.parametrize("mode", ["collapsed", "marginalised"])
def test_data_container_model_equals_fresh_model_on_another_design(designs, mode):
    full, east = designs
    priors_full = resolve_priors(None, full, "identity")
    priors_east = resolve_priors(None, east, "identity")
    template = build_twfe_model(full, priors_full, unit_effects=mode, data_containers=True)
    for name, value in marginal_model_data(east, priors_east, mode).items():
        template[name].set_value(value)
    fresh = build_twfe_model(east, priors_east, unit_effects=mode)
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in fresh.initial_point().items()}
    assert set(point) == set(template.initial_point())
    fresh_logp = fresh.compile_logp(mode="FAST_COMPILE")(point)
    template_logp = template.compile_logp(mode="FAST_COMPILE")(point)
    assert template_logp == pytest.approx(fresh_logp, rel=1e-10, abs=1e-8)
    # The template really reads the new data: with the old values its density differs.
    for name, value in marginal_model_data(full, priors_full, mode).items():
        template[name].set_value(value)
    assert abs(template.compile_logp(mode="FAST_COMPILE")(point) - fresh_logp) > 1.0


def test_reused_model_log_prior_matches_scipy(designs):
    from models.panel.bayes import fit_bayes_twfe

    _, east = designs
    panel = pd.read_csv(default_data_path("zhao2025"))
    fit = fit_bayes_twfe(panel[panel["region"] == "east"], "Inn", REGRESSORS, "city", "year",
                         draws=100, tune=100, chains=2, seed=3)
    resolved = resolve_priors(None, east, "identity")
    assert resolved.intercept.family == "normal"
    mu, sigma = (dict(resolved.intercept.params)[k] for k in ("mu", "sigma"))
    draws = fit.idata.posterior["intercept"].values
    expected = stats.norm(mu, sigma).logpdf(draws)
    np.testing.assert_allclose(fit.idata.log_prior["intercept"].values, expected, rtol=1e-8)
    slope_prior = [resolved.term_prior("slope", t) for t in REGRESSORS]
    slopes = fit.idata.posterior["slope"].values
    expected = np.stack([stats.norm(*(dict(p.params)[k] for k in ("mu", "sigma"))).logpdf(
        slopes[..., j]) for j, p in enumerate(slope_prior)], axis=-1)
    np.testing.assert_allclose(fit.idata.log_prior["slope"].values, expected, rtol=1e-8)
    assert list(fit.idata.posterior["coef"].values) == REGRESSORS
    # The collapsed model draws the Mundlak terms after sampling; their log prior is there too.
    assert fit.spec["unit_effects"] == "collapsed"
    between_prior = [resolved.term_prior("between", t) for t in REGRESSORS]
    between = fit.idata.posterior["between"].values
    expected = np.stack([stats.norm(*(dict(p.params)[k] for k in ("mu", "sigma"))).logpdf(
        between[..., j]) for j, p in enumerate(between_prior)], axis=-1)
    np.testing.assert_allclose(fit.idata.log_prior["between"].values, expected, rtol=1e-8)
    sigma_prior = dict(resolved.sigma.params)["sigma"]
    np.testing.assert_allclose(fit.idata.log_prior["sigma"].values, stats.halfnorm(
        scale=sigma_prior).logpdf(fit.idata.posterior["sigma"].values), rtol=1e-8)


@pytest.mark.slow
def test_divergent_run_is_repeated_at_a_higher_target_accept():
    from models.panel.bayes import RETRY_TARGET_ACCEPT, SCALES_TARGET_ACCEPT, fit_bayes_twfe

    panel = pd.read_csv(default_data_path("zhao2025"))
    # Five years leave year_sd's posterior skewed: the default target diverges at this seed.
    early = panel[panel["year"] < 2016]
    given = fit_bayes_twfe(early, "Inn", REGRESSORS, "city", "year", seed=3,
                           target_accept=SCALES_TARGET_ACCEPT)
    assert given.spec["divergences_before_retry"] is None
    assert given.divergences > 0 and given.convergence_problems()
    default = fit_bayes_twfe(early, "Inn", REGRESSORS, "city", "year", seed=3)
    assert default.spec["unit_effects"] == "collapsed"
    assert default.spec["divergences_before_retry"] == given.divergences
    assert default.spec["target_accept"] == RETRY_TARGET_ACCEPT
    assert default.divergences == 0

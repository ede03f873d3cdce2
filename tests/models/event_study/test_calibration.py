"""Simulation-based calibration of the Bayesian event study: the simulator draws from the
model's own priors and likelihood, and the fitted posterior ranks the truth uniformly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.event_study.calibration import (
    YEARS,
    EventStudyCalibration,
    EventStudyNegbinCalibration,
)
from tests.models.bayes.sbc_loop import assert_calibrated, run_sbc

N_SIMULATIONS = 100


@pytest.fixture(scope="module")
def family():
    return EventStudyCalibration(quick=True)


def outcome_covariance(family, sigma, unit_sd, year_sd):
    """Cov(y) of the generative model once alpha ~ N(0, 1), lambda ~ N(0, I), the unit
    offsets and the zero-sum year effects are integrated out."""
    n_years = len(YEARS)
    to_unit = np.eye(family.n_units)[family.unit_idx]
    to_year = np.eye(n_years)[family.time_idx]
    mundlak = to_unit @ family.unit_means
    zero_sum = np.eye(n_years) - 1.0 / n_years
    n = family.unit_idx.size
    return (np.ones((n, n)) + mundlak @ mundlak.T + unit_sd**2 * to_unit @ to_unit.T
            + year_sd**2 * to_year @ zero_sum @ to_year.T + sigma**2 * np.eye(n))


def path(family, truth):
    return np.array([truth[t] for t in family.terms])


def test_one_simulation_fits(family):
    simulation = family.simulate(np.random.default_rng(3))
    assert set(simulation.truth) == set(family.parameters)
    assert len(family.terms) == len(YEARS) - 1
    assert all(np.isfinite(v) for v in simulation.truth.values())
    fit = family.fit(simulation, seed=1, sampling={"draws": 150, "tune": 150, "chains": 2})
    assert set(fit.draws) == set(family.parameters)
    assert all(d.shape == (300,) and np.isfinite(d).all() for d in fit.draws.values())
    assert isinstance(fit.problems, list)
    name = family.terms[-1]
    assert abs(fit.draws[name].mean() - simulation.truth[name]) < 5 * fit.draws[name].std()


def test_model_log_density_at_the_truth_is_the_marginal_normal_density(family):
    """The collapsed model's log density at the true (b, sigma, unit_sd, year_sd) equals the
    priors' densities plus the multivariate normal density of y with the intercept, Mundlak
    term, unit and year effects integrated out, written here as a dense covariance."""
    import pymc as pm

    simulation = family.simulate(np.random.default_rng(11))
    truth = simulation.truth
    pm.set_data(family.data_values(simulation), model=family.model)
    logp = family.model.compile_logp(jacobian=False)(family.unconstrained_truth(simulation))
    b = path(family, truth)
    cov = outcome_covariance(family, truth["sigma"], truth["unit_sd"], truth["year_sd"])
    likelihood = stats.multivariate_normal(family.x_within @ b, cov).logpdf(
        simulation.data["y"])
    prior = (stats.norm(0, 1).logpdf(b).sum()
             + stats.halfnorm(scale=1).logpdf([truth["sigma"], truth["unit_sd"],
                                               truth["year_sd"]]).sum())
    assert np.isfinite(logp)
    assert logp == pytest.approx(likelihood + prior, rel=1e-8)


def test_simulated_outcome_has_the_marginal_covariance(family):
    """Given its own truth, the simulator's y - D~ b whitened by the marginal covariance has
    squared norm chi-square(n): the simulator draws from the density the model integrates."""
    rng = np.random.default_rng(8)
    quadratic = []
    for _ in range(200):
        simulation = family.simulate(rng)
        truth = simulation.truth
        cov = outcome_covariance(family, truth["sigma"], truth["unit_sd"], truth["year_sd"])
        residual = simulation.data["y"] - family.x_within @ path(family, truth)
        quadratic.append(residual @ np.linalg.solve(cov, residual))
    n = family.unit_idx.size
    assert stats.kstest(quadratic, stats.chi2(n).cdf).pvalue > 0.001


def test_simulator_draws_the_model_priors(family):
    """Each calibrated parameter of the simulator has the distribution of the PyMC model's
    prior (two-sample Kolmogorov-Smirnov test against prior draws of the model)."""
    import pymc as pm

    rng = np.random.default_rng(5)
    truths = [family.simulate(rng).truth for _ in range(1000)]
    names = ["event_path", "sigma", "unit_sd", "year_sd"]
    prior = dict(zip(names, pm.draw([family.model[n] for n in names], draws=1000,
                                    random_seed=6), strict=True))
    for j, term in enumerate(family.terms):
        assert stats.ks_2samp([t[term] for t in truths], prior["event_path"][:, j]).pvalue > 0.001
    for name in names[1:]:
        assert stats.ks_2samp([t[name] for t in truths], prior[name]).pvalue > 0.001, name


@pytest.fixture(scope="module")
def negbin():
    return EventStudyNegbinCalibration(quick=True)


def negbin_mean(family, simulation):
    """exp(eta) of the simulated counts, rebuilt from the simulation's latent terms."""
    truth, data = simulation.truth, simulation.data
    unit_effect = family.unit_means @ data["between"] + truth["unit_sd"] * data["unit_offset"]
    return np.exp(data["intercept"] + family.x_within @ path(family, truth)
                  + unit_effect[family.unit_idx] + data["year_effect"][family.time_idx])


def test_negbin_simulation_fits(negbin):
    simulation = negbin.simulate(np.random.default_rng(3))
    counts = simulation.data["y"]
    assert set(simulation.truth) == set(negbin.parameters)
    assert np.all(counts >= 0) and np.all(counts == np.round(counts))
    assert abs(simulation.data["year_effect"].sum()) < 1e-12
    fit = negbin.fit(simulation, seed=1, sampling={"draws": 150, "tune": 150, "chains": 2})
    assert set(fit.draws) == set(negbin.parameters)
    assert all(d.shape == (300,) and np.isfinite(d).all() for d in fit.draws.values())
    assert isinstance(fit.problems, list)


def test_negbin_log_density_moves_as_the_negative_binomial(negbin):
    """Moving the intercept, the event path and alpha away from the truth changes the model's
    log density by the change in the negative binomial log pmf (mean exp(eta), dispersion
    alpha, scipy's parametrisation) plus the change in those priors' densities."""
    import pymc as pm

    simulation = negbin.simulate(np.random.default_rng(11))
    truth, data = simulation.truth, simulation.data
    pm.set_data(negbin.data_values(simulation), model=negbin.model)
    logp = negbin.model.compile_logp(jacobian=False)
    point = negbin.unconstrained_truth(simulation)
    assert np.isfinite(logp(point))
    shift = np.linspace(-0.2, 0.3, len(negbin.terms))
    moved = dict(point, intercept=point["intercept"] + 0.1,
                 event_path=point["event_path"] + shift,
                 alpha_log__=np.log(truth["alpha"] * 1.5))
    mu0 = negbin_mean(negbin, simulation)
    mu1 = mu0 * np.exp(0.1 + negbin.x_within @ shift)

    def density(mu, alpha, intercept, b):
        counts = stats.nbinom(alpha, alpha / (alpha + mu)).logpmf(data["y"]).sum()
        return (counts + stats.gamma(4, scale=1 / 0.4).logpdf(alpha)
                + stats.norm(1.5, 0.5).logpdf(intercept) + stats.norm(0, 0.5).logpdf(b).sum())

    b = path(negbin, truth)
    expected = (density(mu1, 1.5 * truth["alpha"], data["intercept"] + 0.1, b + shift)
                - density(mu0, truth["alpha"], data["intercept"], b))
    assert logp(moved) - logp(point) == pytest.approx(expected, rel=1e-8)


def test_negbin_counts_have_the_negative_binomial_moments(negbin):
    """Pearson residuals of the simulated counts against the mean and the variance
    mu + mu^2 / alpha the model's likelihood assumes have mean 0 and variance 1."""
    rng = np.random.default_rng(8)
    residuals = []
    for _ in range(300):
        simulation = negbin.simulate(rng)
        mu, alpha = negbin_mean(negbin, simulation), simulation.truth["alpha"]
        residuals.append((simulation.data["y"] - mu) / np.sqrt(mu + mu**2 / alpha))
    residuals = np.concatenate(residuals)
    assert residuals.mean() == pytest.approx(0.0, abs=0.02)
    assert residuals.var() == pytest.approx(1.0, abs=0.05)


def test_negbin_simulator_draws_the_model_priors(negbin):
    import pymc as pm

    rng = np.random.default_rng(5)
    truths = [negbin.simulate(rng).truth for _ in range(1000)]
    names = ["event_path", "alpha", "unit_sd", "year_sd"]
    prior = dict(zip(names, pm.draw([negbin.model[n] for n in names], draws=1000,
                                    random_seed=6), strict=True))
    for j, term in enumerate(negbin.terms):
        assert stats.ks_2samp([t[term] for t in truths], prior["event_path"][:, j]).pvalue > 0.001
    for name in names[1:]:
        assert stats.ks_2samp([t[name] for t in truths], prior[name]).pvalue > 0.001, name


@pytest.mark.slow
def test_event_study_negbin_sbc():
    family = EventStudyNegbinCalibration(quick=False)
    result = run_sbc(family, N_SIMULATIONS, seed=2028)
    print("Negative-binomial event study SBC\n" + result.report())
    assert_calibrated(result, N_SIMULATIONS)


@pytest.mark.slow
def test_event_study_sbc():
    family = EventStudyCalibration(quick=False)
    result = run_sbc(family, N_SIMULATIONS, seed=2027)
    print("Event study SBC\n" + result.report())
    assert_calibrated(result, N_SIMULATIONS)

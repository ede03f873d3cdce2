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


def test_model_log_density_is_the_marginal_normal_density(family):
    """The collapsed model's log density, at the truth and at points where every sampled
    variable (b, sigma, unit_sd, year_sd) has moved, equals the priors' densities plus the
    multivariate normal density of y with the intercept, Mundlak term, unit and year effects
    integrated out, written here as a dense covariance: the same function of all four, not
    only the same value at one point."""
    import pymc as pm

    simulation = family.simulate(np.random.default_rng(11))
    truth = simulation.truth
    pm.set_data(family.data_values(simulation), model=family.model)
    logp = family.model.compile_logp(jacobian=False)
    rng = np.random.default_rng(3)
    for factor in (0.0, 1.0, 1.0):
        b = path(family, truth) + factor * rng.normal(0.0, 0.2, len(family.terms))
        scales = {name: truth[name] * np.exp(factor * rng.normal(0.0, 0.3))
                  for name in ("sigma", "unit_sd", "year_sd")}
        point = {"event_path": b, **{f"{name}_log__": np.log(value)
                                     for name, value in scales.items()}}
        cov = outcome_covariance(family, scales["sigma"], scales["unit_sd"], scales["year_sd"])
        likelihood = stats.multivariate_normal(family.x_within @ b, cov).logpdf(
            simulation.data["y"])
        prior = (stats.norm(0, 1).logpdf(b).sum()
                 + stats.halfnorm(scale=1).logpdf(list(scales.values())).sum())
        value = logp(point)
        assert np.isfinite(value)
        assert value == pytest.approx(likelihood + prior, rel=1e-8)


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


def negbin_joint_density(family, counts, values):
    """log p(counts, every latent term) of the simulator, written out by hand: the negative
    binomial pmf (mean exp(eta), dispersion alpha, scipy's parametrisation), the priors of
    NEGBIN_PRIORS and NEGBIN_PATH_PRIOR, z ~ N(0, 1) and the zero-sum year effects as
    N(0, year_sd^2) in the T - 1 coordinates of an orthonormal basis of the zero-sum vectors
    (iid normals minus their mean, as the simulator draws them)."""
    n_free = len(YEARS) - 1
    unit_effect = family.unit_means @ values["between"] + values["unit_sd"] * values["unit_offset"]
    mu = np.exp(values["intercept"] + family.x_within @ values["event_path"]
                + unit_effect[family.unit_idx] + values["year_effect"][family.time_idx])
    alpha, year_sd = values["alpha"], values["year_sd"]
    year_effect = values["year_effect"]
    return (stats.nbinom(alpha, alpha / (alpha + mu)).logpmf(counts).sum()
            + stats.norm(1.5, 0.5).logpdf(values["intercept"])
            + stats.norm(0, 0.5).logpdf(values["event_path"]).sum()
            + stats.norm(0, 0.5).logpdf(values["between"]).sum()
            + stats.norm(0, 1).logpdf(values["unit_offset"]).sum()
            + stats.halfnorm(scale=0.5).logpdf(values["unit_sd"])
            + stats.gamma(4, scale=1 / 10).logpdf(year_sd)
            + stats.gamma(4, scale=1 / 0.4).logpdf(alpha)
            - 0.5 * year_effect @ year_effect / year_sd**2
            - n_free * np.log(year_sd) - 0.5 * n_free * np.log(2 * np.pi))


def test_negbin_log_density_is_the_simulators_in_every_variable(negbin):
    """Moving every free variable away from the truth (the intercept, event path, Mundlak
    terms, unit offsets, zero-sum year effects and the three scales) changes the model's log
    density by exactly the change in the simulator's joint density: the simulator draws the
    year effects and year_sd (and everything else) from the model the fit samples."""
    import pymc as pm

    simulation = negbin.simulate(np.random.default_rng(11))
    truth, data = simulation.truth, simulation.data
    pm.set_data(negbin.data_values(simulation), model=negbin.model)
    logp = negbin.model.compile_logp(jacobian=False)
    at_truth = {"intercept": data["intercept"], "event_path": path(negbin, truth),
                "between": data["between"], "unit_offset": data["unit_offset"],
                "year_effect": data["year_effect"], "unit_sd": truth["unit_sd"],
                "year_sd": truth["year_sd"], "alpha": truth["alpha"]}
    rng = np.random.default_rng(2)
    moved = {name: np.asarray(value) + rng.normal(0.0, 0.1, np.shape(value))
             for name, value in at_truth.items()}
    moved["year_effect"] = moved["year_effect"] - moved["year_effect"].mean()
    moved.update(unit_sd=1.3 * truth["unit_sd"], year_sd=0.6 * truth["year_sd"],
                 alpha=1.5 * truth["alpha"])
    fake = type(simulation)(dict(truth, unit_sd=moved["unit_sd"], year_sd=moved["year_sd"],
                                 alpha=moved["alpha"],
                                 **dict(zip(negbin.terms, moved["event_path"], strict=True))),
                            dict(data, **{k: moved[k] for k in
                                          ("intercept", "between", "unit_offset", "year_effect")}))
    points = [negbin.unconstrained_truth(simulation), negbin.unconstrained_truth(fake)]
    assert np.isfinite(logp(points[0]))
    expected = (negbin_joint_density(negbin, data["y"], moved)
                - negbin_joint_density(negbin, data["y"], at_truth))
    assert logp(points[1]) - logp(points[0]) == pytest.approx(expected, rel=1e-8)


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

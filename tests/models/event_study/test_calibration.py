"""Simulation-based calibration of the Bayesian event study: the simulator draws from the
model's own priors and likelihood, and the fitted posterior ranks the truth uniformly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.event_study.calibration import YEARS, EventStudyCalibration
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


@pytest.mark.slow
def test_event_study_sbc():
    family = EventStudyCalibration(quick=False)
    result = run_sbc(family, N_SIMULATIONS, seed=2027)
    print("Event study SBC\n" + result.report())
    assert_calibrated(result, N_SIMULATIONS)

"""The partial-pooling calibration family: the simulator draws from the density of the model
it fits, the data-container model is the same model as one built on the simulated data, and
one simulate -> fit round trip gives draws of every calibrated parameter."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.heterogeneity.calibration import GROUPS, N_UNITS, N_YEARS, HeterogeneityCalibration


@pytest.fixture(scope="module")
def family():
    return HeterogeneityCalibration(quick=True)


def point(model, **values):
    """A point of ``model``'s value variables: the initial point with ``values`` (in the
    constrained space; positive variables are log-transformed)."""
    start = model.initial_point()
    for name, value in values.items():
        key = f"{name}_log__" if f"{name}_log__" in start else name
        start[key] = np.log(value) if key.endswith("_log__") else np.asarray(value, float)
    return start


def generative_logp(family, y, alpha, between, sigma, unit_sd, tau) -> float:
    """log p(y | alpha, lambda, sigma, unit_sd, tau, year effects = 0) of the simulator, the
    slopes (mu, z, gamma) and unit offsets integrated out by hand, plus the log priors of the
    quantities that differ between the points compared."""
    panel = family.design.panel
    x = panel.x_within
    n_groups = len(GROUPS)
    slope_cov = np.zeros((n_groups + 1, n_groups + 1))
    slope_cov[:n_groups, :n_groups] = tau**2 * np.eye(n_groups) + 1.0
    slope_cov[n_groups, n_groups] = 1.0
    units = np.eye(N_UNITS)[panel.unit_idx]
    covariance = (x @ slope_cov @ x.T + unit_sd**2 * units @ units.T
                  + sigma**2 * np.eye(panel.n_obs))
    mean = alpha + (panel.unit_means @ between)[panel.unit_idx]
    priors = (stats.norm.logpdf(alpha) + stats.norm.logpdf(between).sum()
              + stats.halfnorm.logpdf(sigma) + stats.halfnorm.logpdf(unit_sd)
              + stats.halfnorm.logpdf(tau, scale=0.5))
    return float(stats.multivariate_normal.logpdf(y, mean, covariance) + priors)


def test_simulation_is_reproducible_and_finite(family):
    simulation = family.simulate(np.random.default_rng(5))
    assert set(simulation.truth) == set(family.parameters)
    assert all(np.isfinite(v) for v in simulation.truth.values())
    assert simulation.truth["x_tau"] > 0 and simulation.truth["sigma"] > 0
    assert simulation.data.shape[0] == N_UNITS * N_YEARS
    again = family.simulate(np.random.default_rng(5))
    np.testing.assert_array_equal(simulation.data["y"], again.data["y"])


def test_model_density_is_the_simulators(family):
    """Same data, two parameter points: the fitted model's log density changes exactly as the
    simulator's Gaussian density does, and the data-container model with the simulated
    statistics swapped in equals the model built on the simulated data."""
    from models.heterogeneity.model import build_heterogeneity_model, outcome_data

    simulation = family.simulate(np.random.default_rng(6))
    design = family.prepare(simulation.data)
    fresh = build_heterogeneity_model(design, family.resolved, family.between, family.tau,
                                      "collapsed")
    reused = family.model()
    with reused:
        import pymc as pm

        pm.set_data(outcome_data(design))
    y = simulation.data["y"].to_numpy()
    points = [(0.2, np.array([0.3, -0.1, 0.2, 0.5]), 0.9, 0.6, 0.4),
              (-0.4, np.array([0.0, 0.4, -0.3, 0.1]), 1.3, 0.3, 0.8)]
    fresh_logp = fresh.compile_logp(jacobian=False, mode="FAST_COMPILE")
    reused_logp = reused.compile_logp(jacobian=False, mode="FAST_COMPILE")
    model_values, exact_values = [], []
    for alpha, between, sigma, unit_sd, tau in points:
        values = point(fresh, intercept=alpha, between=between, sigma=sigma, unit_sd=unit_sd,
                       group_sd=np.array([tau]), year_sd=0.5)
        if "group_sd_log__" in values:
            values["group_sd_log__"] = np.log(np.array([tau]))
        model_values.append(float(fresh_logp(values)))
        assert float(reused_logp(values)) == pytest.approx(model_values[-1], rel=1e-10)
        exact_values.append(generative_logp(family, y, alpha, between, sigma, unit_sd, tau))
    assert np.isfinite(model_values).all()
    assert model_values[0] - model_values[1] == pytest.approx(
        exact_values[0] - exact_values[1], abs=1e-6)


def test_fit_returns_draws_of_every_parameter(family):
    simulation = family.simulate(np.random.default_rng(7))
    fit = family.fit(simulation, seed=8, sampling={"draws": 100, "tune": 150, "chains": 2})
    assert set(fit.draws) == set(family.parameters)
    for name, draws in fit.draws.items():
        assert draws.shape == (200,) and np.isfinite(draws).all(), name
    assert (fit.draws["x_tau"] > 0).all()
    assert any("ESS" in p or "r_hat" in p for p in fit.problems)

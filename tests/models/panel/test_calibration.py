"""The TWFE calibration family: its simulator draws from exactly the density of the model it
fits, and one simulate -> fit round trip gives draws of every calibrated parameter."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.panel.calibration import N_UNITS, N_YEARS, PRIORS, TwfeCalibration


@pytest.fixture(scope="module")
def family():
    return TwfeCalibration(quick=True)


def generative_logp(family, y, slope, sigma, unit_sd, year_sd) -> float:
    """log p(y | slope and scales) of the simulator with alpha, lambda, z and tau integrated
    out by hand: y is Gaussian with the covariance below, plus the log priors of the four
    sampled quantities."""
    design = family.design
    n = design.n_obs
    units = np.eye(N_UNITS)[design.unit_idx]
    years = np.eye(N_YEARS)[design.time_idx]
    means = design.unit_means[design.unit_idx]
    centring = np.eye(N_YEARS) - 1.0 / N_YEARS
    covariance = (np.ones((n, n)) + means @ means.T + unit_sd**2 * units @ units.T
                  + year_sd**2 * years @ centring @ years.T + sigma**2 * np.eye(n))
    likelihood = stats.multivariate_normal.logpdf(y, design.x_within @ slope, covariance)
    priors = (stats.norm.logpdf(slope).sum() + stats.halfnorm.logpdf(sigma)
              + stats.halfnorm.logpdf(unit_sd) + stats.halfnorm.logpdf(year_sd, scale=0.5))
    return float(likelihood + priors)


def test_priors_are_fixed_and_proper():
    assert PRIORS["slope"] == "normal(0, 1)" and PRIORS["year_sd"] == "halfnormal(0.5)"
    family = TwfeCalibration(quick=True)
    assert family.priors.sigma.family == "halfnormal"
    assert all(getattr(family.priors, role) is not None
               for role in ("intercept", "slope", "between", "sigma", "unit_sd", "year_sd"))


def test_simulation_is_reproducible_and_finite(family):
    first = family.simulate(np.random.default_rng(7))
    again = family.simulate(np.random.default_rng(7))
    assert set(first.truth) == set(family.parameters)
    assert all(np.isfinite(v) for v in first.truth.values())
    assert first.truth["sigma"] > 0 and first.truth["year_sd"] > 0
    np.testing.assert_array_equal(first.data["y"], again.data["y"])
    assert first.data.shape == (N_UNITS * N_YEARS, 5)
    # The regressors are correlated with the unit effects through their unit means.
    means = family.design.unit_means
    assert np.abs(means).std() > 0.3


def test_model_density_is_the_simulators(family):
    """The fitted (collapsed) model's log density at two parameter points differs by exactly
    what the simulator's Gaussian density says: same model, up to a constant."""
    from models.panel.design import prepare_panel
    from models.panel.model import build_twfe_model

    simulation = family.simulate(np.random.default_rng(11))
    design = prepare_panel(simulation.data, "y", ["x1", "x2"], "unit", "year")
    priors = family.priors.resolve(design.scales("identity"))
    model = build_twfe_model(design, priors, "normal", "mundlak", "collapsed")
    logp = model.compile_logp(jacobian=False, mode="FAST_COMPILE")
    y = simulation.data["y"].to_numpy()
    t = simulation.truth
    points = [(np.array([t["slope_x1"], t["slope_x2"]]), t["sigma"], t["unit_sd"], t["year_sd"]),
              (np.array([0.3, -0.2]), 0.8, 0.5, 0.2)]
    model_values, exact_values = [], []
    for slope, sigma, unit_sd, year_sd in points:
        value = logp({"slope": slope, "sigma_log__": np.log(sigma),
                      "unit_sd_log__": np.log(unit_sd), "year_sd_log__": np.log(year_sd)})
        model_values.append(float(value))
        exact_values.append(generative_logp(family, y, slope, sigma, unit_sd, year_sd))
    assert np.isfinite(model_values).all()
    assert model_values[0] - model_values[1] == pytest.approx(
        exact_values[0] - exact_values[1], abs=1e-6)


def test_fit_returns_draws_of_every_parameter(family):
    simulation = family.simulate(np.random.default_rng(3))
    fit = family.fit(simulation, seed=5, sampling={"draws": 100, "tune": 100, "chains": 2})
    assert set(fit.draws) == set(family.parameters)
    for name, draws in fit.draws.items():
        assert draws.shape == (200,), name
        assert np.isfinite(draws).all()
    assert all(isinstance(p, str) for p in fit.problems)
    # 200 draws are too few for the bulk-ESS check on every term: the fit says so.
    assert any("ESS" in p or "r_hat" in p for p in fit.problems)
    assert fit.draws["slope_x1"].mean() == pytest.approx(simulation.truth["slope_x1"], abs=0.5)

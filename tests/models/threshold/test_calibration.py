"""The threshold calibration family: simulations on the fixed grid, a finite model density
at the truth, and one simulate -> fit round trip that recovers the regimes."""

from __future__ import annotations

import numpy as np
import pytest

from models.threshold.calibration import N_PERIODS, N_UNITS, ThresholdCalibration


@pytest.fixture(scope="module")
def family():
    return ThresholdCalibration(quick=True)


def test_simulation_draws_the_threshold_from_the_grid(family):
    simulation = family.simulate(np.random.default_rng(1))
    assert set(simulation.truth) == set(family.parameters)
    assert simulation.truth["gamma_1"] in family.grid
    assert simulation.data.shape == (N_UNITS * N_PERIODS,)
    assert np.isfinite(simulation.data).all()
    again = family.simulate(np.random.default_rng(1))
    np.testing.assert_array_equal(simulation.data, again.data)


def test_model_density_at_the_truth_is_finite(family):
    simulation = family.simulate(np.random.default_rng(2))
    data = family.prepare(simulation.data)
    model = family.model(data)
    from models.threshold.likelihood import profile_fit
    from models.threshold.model import whitening

    centre, chol = whitening(profile_fit(data, 1, family.log_prior))
    theta = np.array([simulation.truth[t] for t in family.terms])
    point = {"slope_white": np.linalg.solve(chol, theta - centre),
             "sigma_log__": np.log(simulation.truth["sigma"])}
    logp = model.compile_logp(jacobian=False, mode="FAST_COMPILE")
    at_truth = float(logp(point))
    assert np.isfinite(at_truth)
    # The truth is far more likely than slopes two units away from it.
    far = {**point, "slope_white": np.linalg.solve(chol, theta + 2.0 - centre)}
    assert at_truth > float(logp(far)) + 10


def test_fit_recovers_the_slopes(family):
    simulation = family.simulate(np.random.default_rng(3))
    fit = family.fit(simulation, seed=4, sampling={"draws": 150, "tune": 200, "chains": 2})
    assert set(fit.draws) == set(family.parameters)
    for name, draws in fit.draws.items():
        assert draws.shape == (300,) and np.isfinite(draws).all(), name
    assert np.isin(fit.draws["gamma_1"], family.grid).all()
    for name in ("f", "x_regime1", "x_regime2"):
        spread = fit.draws[name].std()
        assert abs(fit.draws[name].mean() - simulation.truth[name]) < 4 * spread + 0.05, name
    # 300 draws are fewer than the 400 effective draws every slope must have.
    assert any("ESS" in p for p in fit.problems)

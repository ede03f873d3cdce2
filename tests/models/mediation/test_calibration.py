"""Simulation-based calibration of the Bayesian mediation model: the simulator draws from the
model's own priors and likelihood, and the fitted posterior ranks the truth uniformly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.mediation.calibration import MediationCalibration
from tests.models.bayes.sbc_loop import assert_calibrated, run_sbc

N_SIMULATIONS = 100


@pytest.fixture(scope="module")
def family():
    return MediationCalibration(quick=True)


def test_one_simulation_fits(family):
    simulation = family.simulate(np.random.default_rng(3))
    assert set(simulation.truth) == set(family.parameters)
    assert all(np.isfinite(v) for v in simulation.truth.values())
    assert simulation.truth["indirect"] == pytest.approx(simulation.truth["a"]
                                                         * simulation.truth["b"])
    fit = family.fit(simulation, seed=1, sampling={"draws": 150, "tune": 150, "chains": 2})
    assert set(fit.draws) == set(family.parameters)
    assert all(d.shape == (300,) and np.isfinite(d).all() for d in fit.draws.values())
    assert isinstance(fit.problems, list)
    np.testing.assert_allclose(fit.draws["indirect"], fit.draws["a"] * fit.draws["b"])
    draws = fit.draws["a"]
    assert abs(draws.mean() - simulation.truth["a"]) < 5 * draws.std()


def test_model_log_density_at_the_truth_is_the_normal_density_of_the_rotated_data(family):
    """The model's log density at the true parameters equals the priors' densities plus the
    normal densities of both equations' errors rotated onto an orthonormal basis of the
    within space, computed here independently of the model's cross-product formula."""
    import pymc as pm

    simulation = family.simulate(np.random.default_rng(11))
    truth, data = simulation.truth, simulation.data
    frame = family.frame
    pm.set_data(family.data_values(simulation), model=family.model)
    logp = family.model.compile_logp(jacobian=False)(family.unconstrained_truth(simulation))

    n = len(frame)
    dummies = np.column_stack([np.eye(family.n_units)[frame["unit"]],
                               np.eye(family.n_years)[frame["year"]]])
    q, _ = np.linalg.qr(np.column_stack([dummies, np.random.default_rng(0).normal(size=(n, n))]))
    within = q[:, family.n_units + family.n_years - 1:]
    x, w = frame["x"].to_numpy(), frame["w"].to_numpy()
    e = within.T @ (data["m"] - truth["a"] * x - data["delta"] * w)
    u = within.T @ (data["y"] - truth["direct"] * x - truth["b"] * data["m"] - data["gamma"] * w)
    likelihood = (stats.norm(0, truth["sigma_mediator"]).logpdf(e).sum()
                  + stats.norm(0, truth["sigma_outcome"]).logpdf(u).sum())
    prior = (stats.norm(0, 1).logpdf([truth["a"], truth["b"], truth["direct"], data["delta"],
                                      data["gamma"]]).sum()
             + stats.halfnorm(scale=1).logpdf([truth["sigma_outcome"],
                                               truth["sigma_mediator"]]).sum())
    assert np.isfinite(logp)
    assert logp == pytest.approx(likelihood + prior, rel=1e-8)


def test_simulator_draws_the_model_priors(family):
    """Each calibrated quantity of the simulator, the indirect effect a b included, has the
    distribution of the PyMC model's prior (two-sample Kolmogorov-Smirnov test)."""
    import pymc as pm

    rng = np.random.default_rng(5)
    truths = [family.simulate(rng).truth for _ in range(1000)]
    prior = pm.draw([family.model[name] for name in family.parameters], draws=1000,
                    random_seed=6)
    for name, draws in zip(family.parameters, prior, strict=True):
        simulated = [t[name] for t in truths]
        assert stats.ks_2samp(simulated, np.ravel(draws)).pvalue > 0.001, name


def test_simulator_errors_have_the_model_variances(family):
    """The within residuals at the truth have sums of squares n_eff s^2 on average and
    uncorrelated equations, the second moments the model's likelihood assumes."""
    rng = np.random.default_rng(8)
    ratios = []
    for _ in range(300):
        simulation = family.simulate(rng)
        truth, data = simulation.truth, simulation.data
        values = family.data_values(simulation)
        gram, n_eff = values["gram"], values["n_effective"]
        # Columns of the cross-products: [y, m, x, w].
        a_e = np.array([0.0, 1.0, -truth["a"], -data["delta"]])
        a_u = np.array([1.0, -truth["b"], -truth["direct"], -data["gamma"]])
        s_e, s_u = truth["sigma_mediator"], truth["sigma_outcome"]
        ratios.append([a_e @ gram @ a_e / (n_eff * s_e**2), a_u @ gram @ a_u / (n_eff * s_u**2),
                       a_e @ gram @ a_u / (n_eff * s_e * s_u)])
    assert np.mean(ratios, axis=0) == pytest.approx([1.0, 1.0, 0.0], abs=0.03)


@pytest.mark.slow
def test_mediation_sbc():
    family = MediationCalibration(quick=False)
    result = run_sbc(family, N_SIMULATIONS, seed=2026)
    print("Mediation SBC\n" + result.report())
    assert_calibrated(result, N_SIMULATIONS)

"""Simulation-based calibration of the Bayesian IV model: the simulator draws from the model's
own priors and likelihood, and the fitted posterior ranks the truth uniformly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.iv.calibration import IvCalibration
from tests.models.bayes.sbc_loop import assert_calibrated, run_sbc

N_SIMULATIONS = 100


@pytest.fixture(scope="module")
def family():
    return IvCalibration(quick=True)


def test_one_simulation_fits(family):
    simulation = family.simulate(np.random.default_rng(3))
    assert set(simulation.truth) == set(family.parameters)
    assert all(np.isfinite(v) for v in simulation.truth.values())
    fit = family.fit(simulation, seed=1, sampling={"draws": 150, "tune": 150, "chains": 2})
    assert set(fit.draws) == set(family.parameters)
    assert all(d.shape == (300,) and np.isfinite(d).all() for d in fit.draws.values())
    assert isinstance(fit.problems, list)
    # A few hundred observations pin beta well inside its prior: the posterior is near the truth.
    draws = fit.draws["beta"]
    assert abs(draws.mean() - simulation.truth["beta"]) < 5 * draws.std()


def test_model_log_density_at_the_truth_is_the_bivariate_normal_of_the_rotated_data(family):
    """The model's log density at the true parameters equals the priors' densities plus the
    bivariate normal density of the errors rotated onto an orthonormal basis of the within
    space, computed here independently of the model's cross-product formula."""
    import pymc as pm

    simulation = family.simulate(np.random.default_rng(11))
    truth, data = simulation.truth, simulation.data
    frame = family.frame
    design = family._design(data["y"], data["x"])
    pm.set_data(family.data_values(simulation), model=family.model)
    logp = family.model.compile_logp(jacobian=False)(family.unconstrained_truth(simulation))

    n = len(frame)
    dummies = np.column_stack([np.eye(family.n_units)[frame["unit"]],
                               np.eye(family.n_years)[frame["year"]]])
    q, _ = np.linalg.qr(np.column_stack([dummies, np.random.default_rng(0).normal(size=(n, n))]))
    rank = family.n_units + family.n_years - 1
    assert design.n_effective == n - rank
    within = q[:, rank:]
    z, w = frame["z"].to_numpy(), frame["w"].to_numpy()
    u = data["y"] - truth["beta"] * data["x"] - data["gamma"] * w
    v = data["x"] - truth["first_stage"] * z - data["delta"] * w
    errors = within.T @ np.column_stack([u, v])
    s_u, s_v, rho = truth["sigma_outcome"], truth["sigma_first"], truth["rho"]
    cov = [[s_u**2, rho * s_u * s_v], [rho * s_u * s_v, s_v**2]]
    likelihood = stats.multivariate_normal(np.zeros(2), cov).logpdf(errors).sum()
    prior = (stats.norm(0, 1).logpdf([truth["beta"], data["gamma"], data["delta"]]).sum()
             + stats.norm(1, 0.5).logpdf(truth["first_stage"])
             + stats.halfnorm(scale=1).logpdf([s_u, s_v]).sum()
             + stats.beta(2, 2).logpdf((rho + 1) / 2))
    assert np.isfinite(logp)
    assert logp == pytest.approx(likelihood + prior, rel=1e-8)


def test_simulator_draws_the_model_priors(family):
    """Each calibrated parameter of the simulator has the distribution of the PyMC model's
    prior (two-sample Kolmogorov-Smirnov test against prior draws of the model)."""
    import pymc as pm

    rng = np.random.default_rng(5)
    truths = [family.simulate(rng).truth for _ in range(1000)]
    prior = pm.draw([family.model[name] for name in family.parameters], draws=1000,
                    random_seed=6)
    for name, draws in zip(family.parameters, prior, strict=True):
        simulated = [t[name] for t in truths]
        assert stats.ks_2samp(simulated, np.ravel(draws)).pvalue > 0.001, name


def test_simulator_errors_have_the_model_covariance(family):
    """The within residuals at the truth have cross-products n_eff Sigma on average, the
    second moments the model's likelihood assumes (and the one-instrument first stage gives
    the instrument's coefficient back)."""
    rng = np.random.default_rng(8)
    ratios = []
    for _ in range(300):
        simulation = family.simulate(rng)
        truth, data = simulation.truth, simulation.data
        gram = family.data_values(simulation)["gram"]
        n_eff = family.data_values(simulation)["n_effective"]
        a_u = np.array([1.0, -truth["beta"], 0.0, -data["gamma"]])
        a_v = np.array([0.0, 1.0, -truth["first_stage"], -data["delta"]])
        s_u, s_v = truth["sigma_outcome"], truth["sigma_first"]
        ratios.append([a_u @ gram @ a_u / (n_eff * s_u**2), a_v @ gram @ a_v / (n_eff * s_v**2),
                       a_u @ gram @ a_v / (n_eff * s_u * s_v) - truth["rho"]])
    mean = np.mean(ratios, axis=0)
    assert mean == pytest.approx([1.0, 1.0, 0.0], abs=0.03)


@pytest.mark.slow
def test_iv_sbc():
    family = IvCalibration(quick=False)
    result = run_sbc(family, N_SIMULATIONS, seed=2025)
    print("IV SBC\n" + result.report())
    assert_calibrated(result, N_SIMULATIONS)

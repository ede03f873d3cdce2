"""The disk-cached nutpie route: same density as PyMC, right posterior, same fit as nutpie's
own numba route."""

from __future__ import annotations

import numpy as np
import pytest

from models.bayes.nutpie_compile import compile_model, logp_function
from models.bayes.sampler import run_nutpie


def _point(model, x):
    """The value-variable point of a flat unconstrained vector (free variables in order)."""
    point, start = {}, 0
    for value_var, initial in zip(model.value_vars, model.initial_point().values(),
                                  strict=True):
        size = int(np.size(initial))
        point[value_var.name] = x[start:start + size].reshape(np.shape(initial))
        start += size
    assert start == x.size
    return point


def _assert_same_density(model, n_points=4):
    compiled = compile_model(model)
    ours = logp_function(compiled)
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    rng = np.random.default_rng(7)
    start = compiled.initial_point_func(3)
    for _ in range(n_points):
        x = start + 0.3 * rng.normal(size=start.size)
        value, gradient = ours(x)
        point = _point(model, x)
        np.testing.assert_allclose(value, logp(point), rtol=1e-9, atol=1e-8)
        np.testing.assert_allclose(gradient, dlogp(point), rtol=1e-7, atol=1e-7)
    return compiled


def test_threshold_density_equals_pymc():
    from models.threshold.calibration import ThresholdCalibration

    family = ThresholdCalibration(quick=True)
    model = family.model(family.prepare(family.frame["y"].to_numpy()))
    compiled = _assert_same_density(model)
    assert compiled.cached


def test_event_study_density_equals_pymc():
    from models.event_study.calibration import EventStudyCalibration

    _assert_same_density(EventStudyCalibration(quick=True).model)


def test_mediation_density_equals_pymc():
    from models.mediation.calibration import MediationCalibration

    compiled = _assert_same_density(MediationCalibration(quick=True).model)
    assert compiled.cached


def _normal_model(y):
    """y_i ~ N(mu, 1), mu ~ N(0, 10): mu | y ~ N(n ybar / (n + 1/100), 1 / (n + 1/100))."""
    import pymc as pm

    with pm.Model() as model:
        data = pm.Data("y", y)
        mu = pm.Normal("mu", 0.0, 10.0)
        pm.Deterministic("twice", 2.0 * mu)
        pm.Normal("obs", mu, 1.0, observed=data)
    return model


def _check_conjugate(idata, y):
    import arviz as az

    precision = y.size + 1.0 / 100.0
    mean, sd = y.sum() / precision, precision**-0.5
    draws = idata.posterior["mu"]
    mcse = float(az.mcse(idata, var_names=["mu"])["mu"])
    assert abs(float(draws.mean()) - mean) < 4.0 * mcse
    assert abs(float(draws.std()) / sd - 1.0) < 0.08
    np.testing.assert_array_equal(idata.posterior["twice"].values, 2.0 * draws.values)


def test_conjugate_normal_posterior_and_swapped_data():
    rng = np.random.default_rng(3)
    y = rng.normal(1.5, 1.0, size=25)
    compiled = compile_model(_normal_model(y))
    idata, _ = run_nutpie(compiled, 1000, 500, 4, 11, False)
    _check_conjugate(idata, y)
    other = rng.normal(-4.0, 1.0, size=25)
    idata, _ = run_nutpie(compiled.with_data(y=other), 1000, 500, 4, 12, False)
    _check_conjugate(idata, other)


def test_with_data_refuses_unknown_names_and_ranks():
    compiled = compile_model(_normal_model(np.zeros(5)))
    with pytest.raises(KeyError, match="z"):
        compiled.with_data(z=np.zeros(5))
    with pytest.raises(ValueError, match="rank 1"):
        compiled.with_data(y=np.zeros((5, 2)))


def test_fit_equals_nutpie_numba_route():
    """sigma and mu of a normal sample with both priors: the two routes' posterior means
    agree within their Monte Carlo errors, and their sds within 8%."""
    import arviz as az
    import nutpie
    import pymc as pm

    rng = np.random.default_rng(5)
    y = rng.normal(0.7, 2.0, size=40)
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 5.0)
        sigma = pm.HalfNormal("sigma", 3.0)
        pm.Normal("obs", mu, sigma, observed=y)
    ours, _ = run_nutpie(compile_model(model), 1000, 500, 4, 1, False)
    theirs, _ = run_nutpie(nutpie.compile_pymc_model(model, backend="numba"), 1000, 500, 4, 2,
                           False)
    for name in ("mu", "sigma"):
        a, b = ours.posterior[name], theirs.posterior[name]
        mcse = np.hypot(float(az.mcse(ours, var_names=[name])[name]),
                        float(az.mcse(theirs, var_names=[name])[name]))
        assert abs(float(a.mean()) - float(b.mean())) < 4.0 * mcse, name
        assert abs(float(a.std()) / float(b.std()) - 1.0) < 0.08, name



def _scaled_model(y):
    """y_i ~ N(mu, sigma) plus a term folded from the data, -1/2 (log det + log sigma^2)."""
    import pymc as pm

    log_det = float(np.log(1.0 + np.sum(y**2)))
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 10.0)
        sigma = pm.HalfNormal("sigma", 2.0)
        pm.Potential("folded", -0.5 * (log_det + pm.math.log(sigma**2)))
        pm.Normal("obs", mu, sigma, observed=y)
    return model, log_det


def test_data_scalars_become_inputs_and_round_ones_stay():
    """A float the data decide (here a log determinant) is an input, so models of the same
    shapes on other data share one cache entry; round numbers stay for the rewrites."""
    import pytensor.tensor as pt

    from models.bayes.nutpie_compile import compile_graph

    rng = np.random.default_rng(5)
    keys = []
    for y in (rng.normal(size=30), rng.normal(2.0, 3.0, size=30)):
        model, log_det = _scaled_model(y)
        compiled = _assert_same_density(model)
        assert any(v.ndim == 0 and float(v) == log_det for v in compiled.shared_data.values())
        x = pt.dvector("x")
        graph, values, _ = compile_graph([x], [x.sum() * pt.constant(log_det) + 0.5 * x.sum()],
                                      model, prefix="t")
        assert sorted(float(v) for v in values.values()) == [log_det]
        keys.append(graph.key)
    assert keys[0] is not None and keys[0] == keys[1]

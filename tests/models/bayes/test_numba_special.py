"""The cacheable digamma: SciPy's values, and the log densities that need it compile to
code numba's disk cache can hold."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

from models.bayes.numba_special import digamma


def test_digamma_equals_scipy():
    rng = np.random.default_rng(0)
    positive = np.concatenate([rng.uniform(1e-8, 1, 2000), rng.uniform(0, 30, 2000),
                               np.exp(rng.uniform(-30, 30, 2000)), [1e-300, 1e300]])
    ours = np.array([digamma(x) for x in positive])
    reference = scipy.special.psi(positive)
    far = np.abs(reference) > 1e-2  # relative error is meaningless beside the root
    np.testing.assert_allclose(ours[far], reference[far], rtol=1e-13)
    np.testing.assert_allclose(ours[~far], reference[~far], atol=1e-15)
    negative = -np.exp(rng.uniform(-5, 5, 2000))
    negative = negative[np.abs(negative - np.round(negative)) > 1e-6]
    np.testing.assert_allclose([digamma(x) for x in negative], scipy.special.psi(negative),
                               rtol=1e-11)


@pytest.mark.parametrize("x", [0.0, -0.0, -1.0, -7.0, np.inf, -np.inf, np.nan])
def test_digamma_special_values_equal_scipy(x):
    np.testing.assert_equal(digamma(x), scipy.special.psi(x))


def test_negative_binomial_density_is_cacheable_and_equals_nutpie_route():
    """The negative binomial's gradient in its dispersion holds psi: without the cacheable
    digamma the compiled log density had no cache key. Its gradient equals that of nutpie's
    own numba route (SciPy's psi) to rounding, and PyMC's C route to 1e-7 (the NUMBA graphs
    differ from the C graph in fused, fastmath arithmetic, in both routes alike)."""
    import ctypes

    import nutpie
    import pymc as pm

    from models.bayes.nutpie_compile import compile_model, logp_function

    rng = np.random.default_rng(3)
    counts = rng.negative_binomial(2.0, 0.3, size=200)
    with pm.Model() as model:
        mu = pm.Normal("log_mu", 1.0, 1.0)
        alpha = pm.Gamma("alpha", 2.0, 1.0)
        pm.NegativeBinomial("y", mu=pm.math.exp(mu), alpha=alpha, observed=counts)
    compiled = compile_model(model)
    assert compiled.cached
    ours = logp_function(compiled)
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    theirs = nutpie.compile_pymc_model(model, backend="numba")
    pointer = ctypes.POINTER(ctypes.c_double)
    for x in ([1.2, 0.5], [0.3, -1.0], [2.0, 1.5]):
        x = np.array(x)
        value, gradient = ours(x)
        point = {"log_mu": x[0], "alpha_log__": x[1]}
        np.testing.assert_allclose(value, logp(point), rtol=1e-10)
        np.testing.assert_allclose(gradient, dlogp(point), rtol=1e-7)
        their_gradient, their_value = np.empty(2), np.empty(())
        status = theirs.compiled_logp_func.ctypes(
            2, x.ctypes.data_as(pointer), their_gradient.ctypes.data_as(pointer),
            their_value.ctypes.data_as(pointer), ctypes.c_void_p(theirs.user_data.ctypes.data))
        assert status == 0
        np.testing.assert_allclose(gradient, their_gradient, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(value, float(their_value), rtol=1e-13)

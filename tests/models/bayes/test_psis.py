"""The compiled PSIS and PSIS-LOO against ArviZ's on the same draws."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from models.bayes import psis


def _log_likelihood(seed, n_points=40, chains=4, draws=500):
    """Pointwise normal log likelihoods of a posterior for mu, with outliers whose tails are
    heavy (large Pareto k) and a few rows whose tail is too short to fit."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n_points)
    y[:3] = [6.0, -7.0, 9.0]
    mu = rng.normal(y.mean(), 1 / np.sqrt(n_points), size=(chains, draws))
    sigma = np.exp(rng.normal(0.0, 0.1, size=(chains, draws)))
    log_lik = (-0.5 * ((y[None, None, :] - mu[..., None]) / sigma[..., None]) ** 2
               - np.log(sigma[..., None]) - 0.5 * np.log(2 * np.pi))
    return mu, log_lik


@pytest.mark.parametrize("reff", [1.0, 0.6])
def test_psislw_equals_arviz(reff):
    import arviz as az

    _, log_lik = _log_likelihood(1)
    weights = -log_lik.reshape(-1, log_lik.shape[-1]).T
    ours, k_ours = psis.psislw(weights, reff)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, k_theirs = az.psislw(weights, reff)
    np.testing.assert_allclose(k_ours, k_theirs, rtol=1e-10)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    assert np.max(k_theirs) > 0.5  # the outliers' tails were fitted and smoothed


def test_short_tail_gives_infinite_k_as_arviz():
    import arviz as az

    weights = np.zeros((2, 20))
    weights[0, -2:] = [3.0, 5.0]
    weights[1] = np.linspace(0, 1, 20)
    ours, k_ours = psis.psislw(weights, 1.0)
    theirs, k_theirs = az.psislw(weights, 1.0)
    np.testing.assert_array_equal(k_ours, k_theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_loo_equals_arviz_and_compares():
    import arviz as az

    fits = {}
    for seed in (2, 3):
        mu, log_lik = _log_likelihood(seed)
        fits[seed] = az.from_dict(posterior={"mu": mu}, log_likelihood={"y": log_lik})
    for idata in fits.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = az.loo(idata, pointwise=True)
            ours = psis.loo(idata)
        for field in ("elpd_loo", "se", "p_loo", "good_k"):
            np.testing.assert_allclose(ours[field], theirs[field], rtol=1e-10)
        for field in ("n_samples", "n_data_points", "warning", "scale"):
            assert ours[field] == theirs[field]
        np.testing.assert_allclose(ours.loo_i.values, theirs.loo_i.values, rtol=1e-10)
        np.testing.assert_allclose(ours.pareto_k.values, theirs.pareto_k.values, rtol=1e-10)
        assert ours.loo_i.dims == theirs.loo_i.dims
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.compare({f"m{s}": psis.loo(d) for s, d in fits.items()}, ic="loo")
        reference = az.compare({f"m{s}": az.loo(d, pointwise=True) for s, d in fits.items()},
                               ic="loo")
    np.testing.assert_allclose(table["elpd_diff"].astype(float),
                               reference["elpd_diff"].astype(float), rtol=1e-9, atol=1e-9)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="observations x samples"):
        psis.psislw(np.zeros(10))

"""The pieces every family's posterior predictive check shares: thinning, the exact draw of
flat-prior effects, storage, and the p-values read off the replicates."""

from __future__ import annotations

import numpy as np

from models.bayes.predictive import (
    PREDICTIVE_DRAWS,
    flat_effects,
    ppc_table,
    store_replicates,
    thinned_posterior,
)
from tests.models.predictive_checks import point_posterior


def _panel_codes(n_units=12, n_years=5):
    unit = np.repeat(np.arange(n_units), n_years)
    year = np.tile(np.arange(n_years), n_units)
    dummies = np.column_stack([unit[:, None] == np.arange(n_units),
                               (year[:, None] == np.arange(1, n_years))]).astype(float)
    return unit, year, dummies


def test_flat_effects_are_the_projection_on_the_indicators_plus_its_noise():
    unit, year, dummies = _panel_codes()
    rng = np.random.default_rng(0)
    residual = rng.normal(size=(2, 3, unit.size, 2))
    projection = dummies @ np.linalg.pinv(dummies)
    # Without noise: P_D r, equation by equation.
    exact = flat_effects(residual, np.zeros_like(residual), unit, year)
    expected = np.einsum("mn,...nq->...mq", projection, residual)
    np.testing.assert_allclose(exact, expected, atol=1e-10)
    # With unit-variance noise the draws scatter around P_D r with covariance P_D:
    # E ||effect - P_D r||^2 = rank(D) per equation.
    noise = rng.standard_normal((4000, unit.size, 1))
    draws = flat_effects(np.zeros_like(noise), noise, unit, year)[..., 0]
    spread = (draws**2).sum(axis=1).mean()
    rank = np.linalg.matrix_rank(dummies)
    assert abs(spread - rank) < 5 * np.sqrt(2 * rank / 4000)
    np.testing.assert_allclose(np.cov(draws.T), projection, atol=0.08)


def test_thinning_keeps_about_the_requested_number_of_draws_in_every_chain():
    idata = point_posterior({"sigma": 1.0})
    subset = thinned_posterior(idata.posterior, 60)
    assert subset.sizes["chain"] == 4 and subset.sizes["draw"] == 15
    assert thinned_posterior(idata.posterior).sizes["draw"] == 25  # fewer draws than asked
    assert PREDICTIVE_DRAWS == 100


def test_p_values_count_the_replicates_above_the_data():
    idata = point_posterior({"sigma": 1.0})
    subset = thinned_posterior(idata.posterior, 8)
    rng = np.random.default_rng(1)
    # Replicate r has mean r / 8 - 0.5; the data's mean is 0.
    reps = rng.standard_normal((4, 2, 500)) * 1e-3 + (np.arange(8).reshape(4, 2, 1) / 8 - 0.5)
    observed = rng.standard_normal(500) * 1e-3
    observed -= observed.mean()
    store_replicates(idata, subset, {"y": reps}, observed={"y": observed})
    assert idata.posterior_predictive["y"].dtype == np.float32
    table = ppc_table(idata).set_index("statistic")
    assert table.loc["mean", "p_value"] == 3 / 8  # 0.125, 0.25, 0.375 exceed 0
    assert not table.loc["mean", "extreme"]
    assert set(table.index) == {"mean", "sd", "skewness", "kurtosis"}


def test_counts_get_the_share_of_zeros_and_the_dispersion_index():
    idata = point_posterior({"alpha": 1.0})
    subset = thinned_posterior(idata.posterior, 40)
    rng = np.random.default_rng(2)
    poisson = rng.poisson(3.0, (4, 10, 800))
    # Observed counts with many more zeros than Poisson(3) gives (e^-3 = 5%).
    observed = np.where(rng.random(800) < 0.4, 0, rng.poisson(5.0, 800))
    store_replicates(idata, subset, {"n": poisson}, observed={"n": observed}, counts=True)
    assert idata.posterior_predictive["n"].dtype == np.int32
    table = ppc_table(idata).set_index("statistic")
    assert table.loc["share_zero", "p_value"] == 0.0 and table.loc["share_zero", "extreme"]
    assert abs(table.loc["variance/mean", "replicated_mean"] - 1.0) < 0.05
    assert table.loc["variance/mean", "p_value"] == 0.0  # observed overdispersed


def test_ppc_statistics_equal_scipy_moments():
    """The replicated statistics are scipy's (population) skewness and excess kurtosis, the
    share of zeros and the variance-to-mean ratio, row by row."""
    from scipy import stats

    from models.bayes.predictive import ppc_statistics

    values = np.random.default_rng(2).poisson(3.0, size=(7, 500)).astype(float)
    got = ppc_statistics(values, counts=True)
    np.testing.assert_allclose(got["skewness"], stats.skew(values, axis=1), rtol=1e-12)
    np.testing.assert_allclose(got["kurtosis"], stats.kurtosis(values, axis=1), rtol=1e-12)
    np.testing.assert_allclose(got["mean"], values.mean(axis=1), rtol=1e-14)
    np.testing.assert_allclose(got["sd"], values.std(axis=1), rtol=1e-14)
    np.testing.assert_allclose(got["share_zero"], (values == 0).mean(axis=1))
    np.testing.assert_allclose(got["variance/mean"], values.var(axis=1) / values.mean(axis=1),
                               rtol=1e-14)

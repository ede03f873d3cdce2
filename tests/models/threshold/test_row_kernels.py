"""The vectorised two-threshold log-sum-exp: its exponential against numpy's, the row layout of
the configurations, and the whole kernel against the per-configuration path and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from models.threshold.data import admissible_configs
from models.threshold.kernels import NEGLIGIBLE, conditional_draws, config_logsumexp
from models.threshold.row_kernels import (
    config_rows,
    largest,
    live_span,
    row_values,
    row_weights,
    shifted_exp,
)

NO_ROWS = np.zeros((0, 3), dtype=np.int64)


def test_shifted_exp_is_within_one_ulp_of_numpy_and_zero_below_the_cut():
    rng = np.random.default_rng(3)
    values = rng.uniform(-60.0, 5.0, 100_003)
    values[:4] = [5.0, np.nan, 5.0 - NEGLIGIBLE + 1e-9, 5.0 - NEGLIGIBLE]
    out = shifted_exp(values, 5.0, NEGLIGIBLE, np.empty_like(values), np.empty_like(values))
    kept = values > 5.0 - NEGLIGIBLE
    expected = np.exp(values[kept] - 5.0)
    assert np.max(np.abs(out[kept] - expected) / expected) <= 2.3e-16
    assert np.all(out[~kept] == 0.0)  # below the cut, and the NaN
    assert out[0] == 1.0 and out[2] > 0.0


def test_largest_ignores_nan_and_matches_numpy_on_any_length():
    rng = np.random.default_rng(4)
    for n in (1, 7, 8, 9, 1001):
        values = rng.normal(size=n)
        assert largest(values) == values.max()
        values[n // 2] = np.nan
        assert largest(values) == np.nanmax(values) if n > 1 else np.isinf(largest(values))


def _uniform_log_prior(n_grid: int, gap: int) -> np.ndarray:
    j0, j1 = np.meshgrid(np.arange(n_grid), np.arange(n_grid), indexing="ij")
    return np.where(j1 - j0 >= gap, 0.0, -np.inf).astype(float)


def test_rows_rebuild_the_configurations_of_a_gap_prior():
    configs = admissible_configs(np.where(np.isinf(_uniform_log_prior(30, 4)), -1e300, 0.0))
    rows = config_rows(configs)
    rebuilt = [(rows[r, 0], rows[r, 2] + m - rows[r, 1])
               for r in range(len(rows) - 1) for m in range(rows[r, 1], rows[r + 1, 1])]
    assert np.array_equal(np.array(rebuilt), configs)
    assert rows[-1, 1] == len(configs)


def test_configurations_without_consecutive_rows_have_no_layout():
    configs = admissible_configs(np.where(np.isinf(_uniform_log_prior(12, 2)), -1e300, 0.0))
    assert config_rows(np.delete(configs, 5, axis=0)).shape == (0, 3)  # a hole in a row
    assert config_rows(np.vstack([configs, configs[:1]])).shape == (0, 3)  # j_0 split
    assert config_rows(np.zeros((4, 3), dtype=np.int64)).shape == (0, 3)  # three thresholds


def _terms(seed: int, n_grid: int, scale: float = 3.0):
    rng = np.random.default_rng(seed)
    u = rng.normal(scale=scale, size=(2, n_grid))
    w = np.zeros((2, 2, 1))
    w[0, 1, 0] = rng.normal(scale=0.05)
    gram = rng.uniform(1.0, 20.0, size=(1, n_grid, n_grid))
    return u, w, gram


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_row_path_equals_the_per_configuration_path_and_brute_force(seed):
    n_grid = 60
    log_prior = np.where(np.isinf(_uniform_log_prior(n_grid, 5)), -1e300, 0.0)
    configs = np.ascontiguousarray(admissible_configs(log_prior), dtype=np.int64)
    prior = np.random.default_rng(seed).normal(scale=0.5, size=len(configs))
    u, w, gram = _terms(seed, n_grid)
    rows = config_rows(configs)
    assert rows.shape[0] > 0
    fast = config_logsumexp(u, w, gram, configs, prior, rows)
    slow = config_logsumexp(u, w, gram, configs, prior, NO_ROWS)
    values = (prior + u[0, configs[:, 0]] + u[1, configs[:, 1]]
              + w[0, 1, 0] * gram[0, configs[:, 0], configs[:, 1]])
    assert fast[0] == pytest.approx(logsumexp(values), rel=1e-14)
    assert fast[0] == pytest.approx(slow[0], rel=1e-14)
    np.testing.assert_allclose(fast[1], slow[1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fast[2], slow[2], rtol=1e-12)
    weights = np.exp(values - logsumexp(values))
    expected_u1 = np.bincount(configs[:, 1], weights, minlength=n_grid)
    np.testing.assert_allclose(fast[1][1], expected_u1, rtol=1e-10, atol=1e-15)


def test_live_span_runs_from_the_first_to_the_last_value_above_the_cut():
    values = np.array([-50.0, 1.0, np.nan, -50.0, 2.0, -50.0, -50.0])
    assert live_span(values, 0, 7, -10.0) == (1, 5)
    assert live_span(values, 2, 4, -10.0) == (2, 2)  # only NaN and a value below the cut
    assert live_span(values, 4, 5, -10.0) == (4, 5)
    assert live_span(values, 5, 5, -10.0) == (5, 5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_peaked_posterior_gives_the_same_sums_when_only_live_spans_are_exponentiated(seed):
    # u on the scale of a log likelihood near its mode: most configurations lie more than
    # NEGLIGIBLE below the largest, and rows are partly live, partly dead, or all dead
    n_grid = 80
    log_prior = np.where(np.isinf(_uniform_log_prior(n_grid, 3)), -1e300, 0.0)
    configs = np.ascontiguousarray(admissible_configs(log_prior), dtype=np.int64)
    prior = np.zeros(len(configs))
    u, w, gram = _terms(seed, n_grid, scale=15.0)
    rows = config_rows(configs)
    values = (prior + u[0, configs[:, 0]] + u[1, configs[:, 1]]
              + w[0, 1, 0] * gram[0, configs[:, 0], configs[:, 1]])
    live = values > values.max() - NEGLIGIBLE
    assert 0.002 < live.mean() < 0.5
    fast = config_logsumexp(u, w, gram, configs, prior, rows)
    slow = config_logsumexp(u, w, gram, configs, prior, NO_ROWS)
    assert fast[0] == pytest.approx(logsumexp(values[live]), rel=1e-14)
    assert fast[0] == pytest.approx(slow[0], rel=1e-14)
    np.testing.assert_allclose(fast[1], slow[1], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(fast[2], slow[2], rtol=1e-12)
    # the weights of the conditional draws: zero off the live spans, exp elsewhere
    by_rows = np.empty(len(configs))
    top = row_values(u[0], u[1], w[0, 1, 0], gram[0], rows, prior, by_rows)
    weights = row_weights(by_rows, rows, top, np.full(len(configs), np.nan),
                          np.empty(len(configs)))
    np.testing.assert_array_equal(by_rows, values)
    full = shifted_exp(values, top, NEGLIGIBLE, np.empty_like(values), np.empty_like(values))
    np.testing.assert_array_equal(weights, full)
    # and the draws from them equal the per-configuration path's
    uniforms = np.random.default_rng(seed).uniform(size=5)
    draws_rows = conditional_draws(u[None].repeat(5, 0), w[None].repeat(5, 0), gram, configs,
                                   prior, uniforms, 4, rows)
    draws_plain = conditional_draws(u[None].repeat(5, 0), w[None].repeat(5, 0), gram,
                                    configs, prior, uniforms, 4, NO_ROWS)
    np.testing.assert_array_equal(draws_rows[0], draws_plain[0])
    np.testing.assert_allclose(draws_rows[1], draws_plain[1], rtol=1e-12, atol=1e-300)

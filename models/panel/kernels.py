"""numba pieces shared by the fused Gaussian TWFE kernels (:mod:`models.panel.marginal_op`,
:mod:`models.panel.collapsed_op`) and the pointwise log-likelihood of the Gaussian TWFE."""

from __future__ import annotations

import math

import numba
import numpy as np

from models.bayes.kernel_cache import install as _install_kernel_cache

_install_kernel_cache()

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@numba.njit(cache=True)
def quadratic_part(coef, constant, gram, cross, sigma2):
    """A part of the within sum of squares, W = constant - 2 coef'cross + coef'gram coef (for
    the slopes: ||P y||^2 - 2 beta'X~'y + beta'X~'X~ beta), and the gradient of
    -W / (2 sigma^2) in ``coef``."""
    grad = np.empty(coef.shape[0])
    value = constant
    for a in range(coef.shape[0]):
        row = 0.0
        for b in range(coef.shape[0]):
            row += gram[a, b] * coef[b]
        value += coef[a] * (row - 2.0 * cross[a])
        grad[a] = -(row - cross[a]) / sigma2
    return value, grad


@numba.njit(cache=True)
def normal_pointwise_loglik(intercept, slope, unit_effect, year_effect, sigma, x_columns, y,
                            unit_idx, time_idx):
    """log N(y_it | alpha + x~_it' beta + u_i + tau_t, sigma) for every draw s and row:
    ``intercept`` and ``sigma`` are (S,), ``slope`` (S, k), ``unit_effect`` (S, N),
    ``year_effect`` (S, T), or (S, 0) without period effects; ``x_columns`` is x~
    transposed, (k, n), so that the inner loops run over contiguous rows. No temporaries of
    the (S, n) size but the result."""
    n_draws = intercept.shape[0]
    n_obs = y.shape[0]
    k = x_columns.shape[0]
    with_years = year_effect.shape[1] > 0
    out = np.empty((n_draws, n_obs))
    for s in range(n_draws):
        row = out[s]
        for i in range(n_obs):
            row[i] = y[i] - intercept[s] - unit_effect[s, unit_idx[i]]
        if with_years:
            for i in range(n_obs):
                row[i] -= year_effect[s, time_idx[i]]
        for j in range(k):
            coef = slope[s, j]
            column = x_columns[j]
            for i in range(n_obs):
                row[i] -= column[i] * coef
        inv_sigma = 1.0 / sigma[s]
        constant = -math.log(sigma[s]) - _HALF_LOG_2PI
        for i in range(n_obs):
            z = row[i] * inv_sigma
            row[i] = constant - 0.5 * z * z
    return out


@numba.njit(cache=True)
def unit_effect_draws(intercept, between, year_effect, sigma, unit_sd, unit_means, unit_ybar,
                      unit_counts, year_share, noise):
    """(unit_effect, unit_offset), (S, N) each: u_i ~ N(mean, 1 / precision) given draw s,

        precision = 1 / unit_sd^2 + T_i / sigma^2,
        mean = (m_i / unit_sd^2 + T_i rhat_i / sigma^2) / precision,

    m_i = unit_means_i' lambda, rhat_i = ybar_i - alpha - share_i' tau, from the standard
    normal ``noise``; ``year_effect`` and ``year_share`` have no columns without period
    effects."""
    n_draws, n_units = noise.shape
    k = between.shape[1]
    n_years = year_effect.shape[1]
    effect = np.empty((n_draws, n_units))
    offset = np.empty((n_draws, n_units))
    for s in range(n_draws):
        prior_precision = 1.0 / (unit_sd[s] * unit_sd[s])
        data_precision = 1.0 / (sigma[s] * sigma[s])
        for i in range(n_units):
            prior_mean = 0.0
            for j in range(k):
                prior_mean += unit_means[i, j] * between[s, j]
            residual = unit_ybar[i] - intercept[s]
            for t in range(n_years):
                residual -= year_share[i, t] * year_effect[s, t]
            precision = prior_precision + unit_counts[i] * data_precision
            mean = (prior_mean * prior_precision
                    + unit_counts[i] * residual * data_precision) / precision
            value = mean + noise[s, i] / math.sqrt(precision)
            effect[s, i] = value
            offset[s, i] = (value - prior_mean) / unit_sd[s]
    return effect, offset

"""numba kernels of the scales-only Gaussian TWFE: log density, gradient, exact slope draws.

With normal slope priors beta ~ N(m, diag(s^2)) the slopes integrate out of the collapsed
density (:mod:`models.panel.collapsed`) in closed form. beta enters that density only through
the within sum of squares W(beta) = ||P y||^2 - 2 beta'X~'y + beta'X~'X~ beta (X~ is
orthogonal to every other term), so with A = X~'X~ / sigma^2 + diag(1 / s^2) and
b = X~'y / sigma^2 + m / s^2,

    log p(y | sigma, unit_sd, year_sd) = collapsed(beta = 0) + 1/2 b'A^-1 b - 1/2 log|A|
                                         - sum_j log s_j - 1/2 sum_j m_j^2 / s_j^2,
    beta | sigma, y ~ N(A^-1 b, A^-1)          (independent of unit_sd and year_sd).

The sampler sees theta = (log sigma, log unit_sd[, log year_sd]) and the density
log p(y | scales) + sum log p(scale) + sum theta (the log transform's Jacobian), the same
unconstrained density PyMC builds for the collapsed model with the slopes integrated out.

Every kernel is compiled with ``cache=True``: the first process on a machine compiles it
(a few seconds) and writes it beside this file (``__pycache__``, or under
``NUMBA_CACHE_DIR`` when set); later processes load it. The C callbacks nutpie calls are
in :mod:`models.panel.scales_callbacks`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from models.bayes.kernel_cache import install as _install_kernel_cache
from models.panel.collapsed_op import collapsed_logp

_install_kernel_cache()

# Prior families of the scales, by code in the packed vector; parameters in PyMC's order.
SCALE_FAMILIES = {"halfnormal": 0, "halfstudentt": 1, "halfcauchy": 2, "exponential": 3,
                  "gamma": 4, "inversegamma": 5, "lognormal": 6, "halfflat": 7}
# Header of the packed vector: length, number of scales, (family, p1, p2) per scale, k, and
# 1 for the balanced form of the collapsed density (0: the general one).
HEADER = 13
_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)


@numba.njit(cache=True)
def scale_prior(code, a, b, value):
    """(log density, value * d log density / d value) of a positive prior at ``value``."""
    log_value = math.log(value)
    if code == 0:  # halfnormal(sigma=a)
        z = value / a
        return _LOG_2 - _HALF_LOG_2PI - math.log(a) - 0.5 * z * z, -z * z
    if code == 1:  # halfstudentt(nu=a, sigma=b)
        ratio = value * value / (a * b * b)
        density = (_LOG_2 + math.lgamma(0.5 * (a + 1.0)) - math.lgamma(0.5 * a)
                   - 0.5 * (_LOG_PI + math.log(a)) - math.log(b)
                   - 0.5 * (a + 1.0) * math.log1p(ratio))
        return density, -(a + 1.0) * ratio / (1.0 + ratio)
    if code == 2:  # halfcauchy(beta=a)
        ratio = (value / a) ** 2
        return _LOG_2 - _LOG_PI - math.log(a) - math.log1p(ratio), -2.0 * ratio / (1.0 + ratio)
    if code == 3:  # exponential(lam=a)
        return math.log(a) - a * value, -a * value
    if code == 4:  # gamma(alpha=a, beta=b), b the rate
        return (a * math.log(b) - math.lgamma(a) + (a - 1.0) * log_value - b * value,
                a - 1.0 - b * value)
    if code == 5:  # inversegamma(alpha=a, beta=b), b the scale
        return (a * math.log(b) - math.lgamma(a) - (a + 1.0) * log_value - b / value,
                -(a + 1.0) + b / value)
    if code == 6:  # lognormal(mu=a, sigma=b)
        z = (log_value - a) / b
        return -log_value - math.log(b) - _HALF_LOG_2PI - 0.5 * z * z, -1.0 - z / b
    return 0.0, 0.0  # halfflat


@numba.njit(cache=True)
def scale_log_priors(packed, values):
    """Log prior density of each scale at each draw: ``values`` is (draws, n_scales)."""
    out = np.empty(values.shape)
    for n in range(values.shape[0]):
        for j in range(values.shape[1]):
            head = 2 + 3 * j
            out[n, j] = scale_prior(int(packed[head]), packed[head + 1], packed[head + 2],
                                    values[n, j])[0]
    return out


@numba.njit(cache=True)
def gaussian_block(u, lam, p, q):
    """(value, d value / du) of 0.5 sum_j (p_j + u q_j)^2 / (u (lam_j + u))
    - 0.5 sum_j log(1 + lam_j / u): the terms 1/2 b'A^-1 b - 1/2 log|A / prior precision|
    of a normal block whose precision is A = D^1/2 U diag(lam / u + 1) U' D^1/2 with D the
    prior precision (:func:`models.panel.scales.spectral_block`)."""
    value = 0.0
    grad = 0.0
    for j in range(lam.shape[0]):
        top = p[j] + u * q[j]
        bottom = u * (lam[j] + u)
        value += 0.5 * top * top / bottom - 0.5 * math.log1p(lam[j] / u)
        grad += (0.5 * (2.0 * q[j] * top * bottom - top * top * (lam[j] + 2.0 * u))
                 / (bottom * bottom) + 0.5 * lam[j] / bottom)
    return value, grad


@numba.njit(cache=True)
def _slope_block(packed):
    """The slope block (eigenvalues, p, q, prior sds, eigenvectors) and where the collapsed
    density's data start."""
    k = int(packed[11])
    start = HEADER + 1
    return (k, packed[start:start + k], packed[start + k:start + 2 * k],
            packed[start + 2 * k:start + 3 * k], packed[start + 3 * k:start + 4 * k],
            packed[start + 4 * k:start + 4 * k + k * k].reshape((k, k)),
            start + 4 * k + k * k)


@numba.njit(cache=True)
def _balanced_logp(sigma2, omega2, tau2, rest):
    """The collapsed density at beta = 0 less its constant, and its derivatives in sigma^2,
    unit_sd^2 and year_sd^2, for one group of units and decoupled year effects."""
    n_units, rows, n_obs, between_ss, within_ss = rest[0], rest[1], rest[2], rest[3], rest[4]
    n_fixed = int(rest[5])
    n_eta = int(rest[6])
    lam = rest[7:7 + n_fixed]
    p = rest[7 + n_fixed:7 + 2 * n_fixed]
    q = rest[7 + 2 * n_fixed:7 + 3 * n_fixed]
    gram = rest[7 + 3 * n_fixed:7 + 3 * n_fixed + n_eta]
    cross = rest[7 + 3 * n_fixed + n_eta:7 + 3 * n_fixed + 2 * n_eta]
    var = sigma2 + rows * omega2
    fixed, d_var = gaussian_block(var, lam, p, q)
    value = (-0.5 * n_units * math.log(var) - 0.5 * between_ss / var
             - 0.5 * (n_obs - n_units) * math.log(sigma2) - 0.5 * within_ss / sigma2 + fixed)
    d_var += -0.5 * n_units / var + 0.5 * between_ss / (var * var)
    d_sigma2 = d_var - 0.5 * (n_obs - n_units) / sigma2 + 0.5 * within_ss / (sigma2 * sigma2)
    d_tau2 = 0.0
    for a in range(n_eta):
        # Year coordinate a: precision gram/sigma^2 + 1/tau^2, shift cross/sigma^2 and its
        # prior's -log tau, written with w = gram tau^2 + sigma^2.
        w = gram[a] * tau2 + sigma2
        c2 = cross[a] * cross[a]
        value += 0.5 * c2 * tau2 / (sigma2 * w) - 0.5 * math.log(w / sigma2)
        d_sigma2 += (-0.5 * c2 * tau2 * (w + sigma2) / (sigma2 * w) ** 2 - 0.5 / w
                     + 0.5 / sigma2)
        d_tau2 += 0.5 * c2 / (w * w) - 0.5 * gram[a] / w
    return value, d_sigma2, rows * d_var, d_tau2


@numba.njit(cache=True)
def _scales(theta, packed):
    n_scales = int(packed[1])
    sigma = math.exp(theta[0])
    unit_sd = math.exp(theta[1])
    year_sd = math.exp(theta[2]) if n_scales == 3 else 1.0
    return n_scales, sigma, unit_sd, year_sd


@numba.njit(cache=True)
def _add_scale_priors(theta, packed, value, grad, sigma, unit_sd, year_sd):
    """The scale priors' log densities and the log transform's Jacobian, added in place to
    ``grad``; returns the value."""
    scale_values = (sigma, unit_sd, year_sd)
    for j in range(grad.shape[0]):
        head = 2 + 3 * j
        density, d_log = scale_prior(int(packed[head]), packed[head + 1], packed[head + 2],
                                     scale_values[j])
        value += density + theta[j]
        grad[j] += d_log + 1.0
    return value


@numba.njit(cache=True)
def balanced_scales_logp(theta, packed):
    """:func:`scales_logp` for a packed vector of the balanced form (``packed[12] == 1``),
    without the general kernel: a sum over eigenvalues and years, no factorisation."""
    n_scales, sigma, unit_sd, year_sd = _scales(theta, packed)
    sigma2 = sigma * sigma
    grad = np.zeros(n_scales)
    _, mu, p, q, _, _, end = _slope_block(packed)
    value, d_sigma2 = gaussian_block(sigma2, mu, p, q)
    rest, d_s2, d_u2, d_t2 = _balanced_logp(sigma2, unit_sd * unit_sd, year_sd * year_sd,
                                            packed[end:])
    value += packed[HEADER] + rest
    grad[0] = 2.0 * sigma2 * (d_sigma2 + d_s2)
    grad[1] = 2.0 * unit_sd * unit_sd * d_u2
    if n_scales == 3:
        grad[2] = 2.0 * year_sd * year_sd * d_t2
    return _add_scale_priors(theta, packed, value, grad, sigma, unit_sd, year_sd), grad


@numba.njit(cache=True)
def general_scales_logp(theta, packed):
    """:func:`scales_logp` for a packed vector of the general form (``packed[12] == 0``):
    the collapsed kernel at beta = 0 plus the slope block."""
    n_scales, sigma, unit_sd, year_sd = _scales(theta, packed)
    sigma2 = sigma * sigma
    grad = np.zeros(n_scales)
    k, mu, p, q, _, _, end = _slope_block(packed)
    value, d_sigma2 = gaussian_block(sigma2, mu, p, q)
    rest, _, d_sigma, d_unit, d_year = collapsed_logp(np.zeros(k), sigma, unit_sd, year_sd,
                                                      packed[end:])
    if not np.isfinite(rest.item()):
        return -np.inf, grad
    value += packed[HEADER] + rest.item()
    grad[0] = d_sigma.item() * sigma + 2.0 * sigma2 * d_sigma2
    grad[1] = d_unit.item() * unit_sd
    if n_scales == 3:
        grad[2] = d_year.item() * year_sd
    return _add_scale_priors(theta, packed, value, grad, sigma, unit_sd, year_sd), grad


@numba.njit(cache=True)
def scales_logp(theta, packed):
    """(value, gradient) of the unconstrained log density of theta = log scales (see the
    module docstring), in either form; value -inf where a factor is not positive definite."""
    if packed[12] == 1.0:
        return balanced_scales_logp(theta, packed)
    return general_scales_logp(theta, packed)


@numba.njit(cache=True)
def draw_slopes(sigma, packed, noise):
    """beta ~ N(A^-1 b, A^-1) at each draw's sigma; ``noise`` is (draws, k) standard normal.

    In the block's eigenbasis A^-1 = diag(s) U diag(1 / (mu / u + 1)) U' diag(s) and
    A^-1 b = diag(s) U ((p / u + q) / (mu / u + 1)), u = sigma^2, s the prior sds."""
    k, mu, p, q, sd, basis, _ = _slope_block(packed)
    out = np.empty(noise.shape)
    coordinate = np.empty(k)
    for n in range(noise.shape[0]):
        u = sigma[n] * sigma[n]
        for j in range(k):
            scale = 1.0 / (mu[j] / u + 1.0)
            coordinate[j] = (p[j] / u + q[j]) * scale + math.sqrt(scale) * noise[n, j]
        for a in range(k):
            entry = 0.0
            for j in range(k):
                entry += basis[a, j] * coordinate[j]
            out[n, a] = sd[a] * entry
    return out

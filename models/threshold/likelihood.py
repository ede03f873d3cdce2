"""Log likelihood of every threshold configuration given the slopes, and least squares at each.

Write the regime-split slopes cumulatively, x' delta_{k+1} + sum_r x' d_r 1[q < g_r] with
d_r = delta_r - delta_{r+1}. With theta_0 = (beta, delta_{k+1}) and the statistics of
:class:`models.threshold.data.ThresholdData`,

    S = R_0 - 2 sum_r d_r' a(g_r) + sum_{r,s} d_r' G(g_r, g_s) d_s,
    R_0 = y'y - 2 theta_0' B'y + theta_0' B'B theta_0,   a(g) = C(g)'y - C(g)'B theta_0,

    log p(y~ | theta, gamma, sigma) = -(dof/2) log(2 pi sigma^2) - S / (2 sigma^2),

for every configuration gamma at once (:func:`config_loglik`), or split into the per-threshold
terms u and pair coefficients w that the numba kernels sum over the configurations
(:func:`config_terms`). :func:`profile_fit` solves least squares at every configuration.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from models.threshold.data import ThresholdData, admissible_configs

LOG_2PI = math.log(2.0 * math.pi)


def regime_blocks(theta, stats: ThresholdData, k: int):
    """Split regime-form slopes theta = (beta, delta_1, ..., delta_{k+1}) into beta and the
    list [delta_1, ..., delta_{k+1}] (last axis; works on numpy arrays and tensors)."""
    n_fixed, n_regime = stats.n_fixed, stats.n_regime
    deltas = [theta[..., n_fixed + r * n_regime:n_fixed + (r + 1) * n_regime]
              for r in range(k + 1)]
    return theta[..., :n_fixed], deltas


def config_loglik(theta: np.ndarray, sigma: np.ndarray, stats: ThresholdData, k: int
                  ) -> np.ndarray:
    """log p(y~ | theta, gamma, sigma) for every configuration, vectorised over draws.

    Parameters
    ----------
    theta
        (S, P) regime-form slopes (fixed slopes, then delta_1 .. delta_{k+1}).
    sigma
        (S,) residual sd.

    Returns
    -------
    numpy.ndarray
        (S,) + (K,)*k.
    """
    theta = np.atleast_2d(theta)
    sigma = np.atleast_1d(sigma)
    beta, deltas = regime_blocks(theta, stats, k)
    theta0 = np.concatenate([beta, deltas[-1]], axis=1)
    r0 = (stats.yy - 2.0 * theta0 @ stats.base_y
          + np.einsum("sp,pq,sq->s", theta0, stats.base_gram, theta0))
    neg_rss = np.broadcast_to(-r0.reshape((-1,) + (1,) * k), (theta.shape[0],) + (
        stats.n_candidates,) * k).copy()
    if k:
        a = stats.split_y[None] - np.einsum("kcp,sp->skc", stats.split_base, theta0)
        diagonal = np.einsum("kkcd->kcd", stats.split_gram)
        d = [deltas[r] - deltas[r + 1] for r in range(k)]
        for r in range(k):
            u = 2.0 * np.einsum("skc,sc->sk", a, d[r]) - np.einsum(
                "kcd,sc,sd->sk", diagonal, d[r], d[r])
            neg_rss += u[(slice(None),) + tuple(slice(None) if j == r else None
                                                 for j in range(k))]
            for s in range(r + 1, k):
                cross = np.einsum("jkcd,sc,sd->sjk", stats.split_gram, d[r], d[s])
                index = (slice(None),) + tuple(slice(None) if j in (r, s) else None
                                               for j in range(k))
                neg_rss -= 2.0 * cross[index]
    scale = sigma.reshape((-1,) + (1,) * k)
    return -0.5 * stats.dof * (LOG_2PI + 2.0 * np.log(scale)) + neg_rss / (2.0 * scale**2)


def config_terms(theta: np.ndarray, sigma: np.ndarray, stats: ThresholdData, k: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-draw inputs of the configuration sum: u (S, k, K), w (S, k, k, E) and the
    configuration-free part of the log likelihood (S,); numpy twin of the terms that
    :func:`models.threshold.kernels.marginal_loglik` builds for one draw."""
    theta = np.atleast_2d(theta)
    sigma = np.atleast_1d(sigma)
    beta, deltas = regime_blocks(theta, stats, k)
    theta0 = np.concatenate([beta, deltas[-1]], axis=1)
    residual_ss = (stats.yy - 2.0 * theta0 @ stats.base_y
                   + np.einsum("sp,pq,sq->s", theta0, stats.base_gram, theta0))
    scale = 2.0 * sigma**2
    constant = -0.5 * stats.dof * (LOG_2PI + 2.0 * np.log(sigma)) - residual_ss / scale
    n_regime = stats.n_regime
    u = np.zeros((theta.shape[0], k, stats.n_candidates))
    w = np.zeros((theta.shape[0], k, k, n_regime * n_regime))
    if k:
        a = stats.split_y[None] - np.einsum("kcp,sp->skc", stats.split_base, theta0)
        diagonal = np.einsum("kkcd->kcd", stats.split_gram)
        d = [deltas[r] - deltas[r + 1] for r in range(k)]
        for r in range(k):
            u[:, r] = (2.0 * np.einsum("skc,sc->sk", a, d[r])
                       - np.einsum("kcd,sc,sd->sk", diagonal, d[r], d[r])) / scale[:, None]
            for s in range(r + 1, k):
                w[:, r, s] = (-2.0 * d[r][:, :, None] * d[s][:, None, :]).reshape(
                    theta.shape[0], -1) / scale[:, None]
    return u, w, constant


def pair_gram_by_entry(stats: ThresholdData) -> np.ndarray:
    """G(g, h) = C(g)'C(h) rearranged as (kr * kr, K, K), entry e = (c, d) of the kr x kr
    blocks, C-contiguous (the layout of the numba kernels)."""
    n_regime, n_candidates = stats.n_regime, stats.n_candidates
    return np.ascontiguousarray(stats.split_gram.transpose(2, 3, 0, 1).reshape(
        n_regime * n_regime, n_candidates, n_candidates))


def regime_to_cumulative(stats: ThresholdData, k: int) -> np.ndarray:
    """Matrix M with theta_cum = M theta_reg.

    theta_reg = (beta, delta_1, ..., delta_{k+1}); theta_cum = (beta, delta_{k+1}, d_1..d_k),
    d_r = delta_r - delta_{r+1}: the coefficients of the columns [B, C(g_1), ..., C(g_k)].
    """
    n_fixed, n_regime = stats.n_fixed, stats.n_regime
    size = n_fixed + (k + 1) * n_regime
    matrix = np.zeros((size, size))
    matrix[:n_fixed, :n_fixed] = np.eye(n_fixed)
    eye = np.eye(n_regime)
    top = n_fixed + k * n_regime
    matrix[n_fixed:n_fixed + n_regime, top:top + n_regime] = eye
    for r in range(k):
        row = n_fixed + (r + 1) * n_regime
        col = n_fixed + r * n_regime
        matrix[row:row + n_regime, col:col + n_regime] = eye
        matrix[row:row + n_regime, col + n_regime:col + 2 * n_regime] = -eye
    return matrix


def config_normal_equations(stats: ThresholdData, configs: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Z'Z (M, P, P) and Z'y (M, P) in the regime form for each configuration."""
    k = configs.shape[1]
    n_regime, p0 = stats.n_regime, stats.base.shape[1]
    size = p0 + k * n_regime
    n_configs = configs.shape[0]
    gram = np.zeros((n_configs, size, size))
    rhs = np.zeros((n_configs, size))
    gram[:, :p0, :p0] = stats.base_gram
    rhs[:, :p0] = stats.base_y
    for r in range(k):
        rows = slice(p0 + r * n_regime, p0 + (r + 1) * n_regime)
        rhs[:, rows] = stats.split_y[configs[:, r]]
        cross = stats.split_base[configs[:, r]]                          # (M, kr, p0)
        gram[:, rows, :p0] = cross
        gram[:, :p0, rows] = cross.transpose(0, 2, 1)
        for s in range(k):
            cols = slice(p0 + s * n_regime, p0 + (s + 1) * n_regime)
            gram[:, rows, cols] = stats.split_gram[configs[:, r], configs[:, s]]
    mapping = regime_to_cumulative(stats, k)
    return mapping.T @ gram @ mapping, rhs @ mapping


def profile_fit(stats: ThresholdData, k: int, log_prior_cfg: np.ndarray) -> dict[str, Any]:
    """Least squares at every admissible configuration.

    Returns the configurations, their RSS and the best one by log prior + concentrated
    log likelihood -dof/2 log RSS, with its slopes and their covariance s^2 (Z'Z)^{-1}.
    """
    configs = admissible_configs(log_prior_cfg)
    gram, rhs = config_normal_equations(stats, configs)
    scale = np.sqrt(np.einsum("mii->mi", gram))
    scaled = gram / scale[:, :, None] / scale[:, None, :]
    try:
        solution = np.linalg.solve(scaled, (rhs / scale)[..., None])[..., 0] / scale
    except np.linalg.LinAlgError:
        solution = np.einsum("mij,mj->mi", np.linalg.pinv(scaled), rhs / scale) / scale
    rss = stats.yy - np.einsum("mp,mp->m", rhs, solution)
    rss = np.maximum(rss, 1e-300)
    prior = log_prior_cfg[tuple(configs.T)] if k else np.zeros(1)
    score = prior - 0.5 * stats.dof * np.log(rss)
    best = int(np.argmax(score))
    sigma2 = rss[best] / stats.dof
    covariance = sigma2 * np.linalg.inv(gram[best])
    return dict(configs=configs, rss=rss, score=score, gram=gram, rhs=rhs, best=best,
                theta=solution[best], covariance=covariance, sigma=math.sqrt(sigma2))


def split_diagonal(stats: ThresholdData) -> np.ndarray:
    """G(g, g) = C(g)'C(g) for every candidate: (K, kr, kr), C-contiguous."""
    return np.ascontiguousarray(np.einsum("kkcd->kcd", stats.split_gram))


def config_arrays(log_prior_cfg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The admissible configurations (M, k) as int64 and their log prior (M,), C-contiguous.

    Without thresholds (k = 0): one empty configuration with log prior 0.
    """
    configs = np.ascontiguousarray(admissible_configs(log_prior_cfg), dtype=np.int64)
    if log_prior_cfg.ndim == 0:
        return configs, np.zeros(1)
    return configs, np.ascontiguousarray(log_prior_cfg[tuple(configs.T)], dtype=float)

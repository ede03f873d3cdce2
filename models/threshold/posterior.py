"""After sampling: the thresholds draw by draw, the pointwise log likelihood, the log marginal
likelihood and the log prior of every draw.

* :func:`recover_thresholds`: one exact draw of gamma from p(gamma | theta, sigma, y) per draw
  of the slopes, and the Rao-Blackwellised posterior of each threshold over the grid.
  Configurations below 1e-20 of the most probable one get conditional probability zero, as in
  the model's own log-sum-exp (:data:`models.threshold.kernels.NEGLIGIBLE`): together
  they hold less than the rounding error of the normalising sum.
* :func:`pointwise_loglik`: the log likelihood of every transformed row with the thresholds
  averaged out, l_i = -log sum_gamma p(gamma | theta, sigma, y) / p(y_i | theta, gamma, sigma),
  summed over the most probable configurations of each draw (the only approximation after
  sampling; its retained mass is returned).
* :func:`log_marginal_likelihood`: log p(y~ | k) in closed form in the slopes, by quadrature in
  sigma and by the sum over the grid in gamma.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from scipy.special import logsumexp

from models.bayes.panel_priors import PanelPriors
from models.threshold.data import ThresholdData
from models.threshold.kernels import conditional_draws, pointwise_loglik_draws
from models.threshold.likelihood import (
    LOG_2PI,
    config_arrays,
    config_terms,
    pair_gram_by_entry,
    profile_fit,
    regime_blocks,
)
from models.threshold.priors import prior_logp_numpy
from models.threshold.row_kernels import config_rows

POINTWISE_MASS = 1.0 - 1e-6
POINTWISE_MAX_CONFIGS = 32


def recover_thresholds(theta: np.ndarray, sigma: np.ndarray, stats: ThresholdData, k: int,
                       log_prior_cfg: np.ndarray, rng: np.random.Generator, chunk: int = 250
                       ) -> dict[str, np.ndarray]:
    """Draw gamma | theta, sigma, y for every draw and average the conditionals.

    p(gamma = j | theta, sigma, y) ∝ p(j) p(y~ | theta, j, sigma) over the admissible
    configurations j; the draw is the inverse CDF of one uniform per draw (in the order of the
    configurations), and the Rao-Blackwellised posterior of threshold r is
    P(g_r = grid[c]) = mean over draws of sum_{j: j_r = c} p(j | theta, sigma, y).

    Returns
    -------
    dict
        ``index`` (S, k) sampled grid indices, ``probability`` (k, K) the Rao-Blackwellised
        marginal posterior of each threshold over the grid, ``top`` (S, L) indices into
        ``configs`` (the admissible configurations, (M, k)) and ``top_weight`` (S, L) their
        conditional probabilities: the smallest set holding ``POINTWISE_MASS`` of the
        conditional, at most ``POINTWISE_MAX_CONFIGS`` (-1 / 0 pad the rest).
    """
    n_draws = theta.shape[0]
    n_candidates = stats.n_candidates
    configs, config_prior = config_arrays(log_prior_cfg)
    index = np.zeros((n_draws, k), dtype=int)
    probability = np.zeros((k, n_candidates))
    limit = min(POINTWISE_MAX_CONFIGS, configs.shape[0])
    top = np.full((n_draws, limit), -1, dtype=np.int64)
    top_weight = np.zeros((n_draws, limit))
    if k == 0:
        return dict(index=index, probability=probability, top=top, top_weight=top_weight,
                    configs=configs)
    gram = pair_gram_by_entry(stats)
    rows = config_rows(configs) if k == 2 else np.zeros((0, 3), dtype=np.int64)
    uniforms = rng.random(n_draws)

    def draw_chunk(start: int):
        stop = min(start + chunk, n_draws)
        u, w, _ = config_terms(theta[start:stop], sigma[start:stop], stats, k)
        return start, stop, conditional_draws(u, w, gram, configs, config_prior,
                                              uniforms[start:stop], limit, rows)

    summed = np.zeros(configs.shape[0])
    with ThreadPoolExecutor(max_workers=_n_workers()) as pool:
        for start, stop, (picked, chunk_sum, best, best_weight) in pool.map(
                draw_chunk, range(0, n_draws, chunk)):
            index[start:stop] = configs[picked]
            summed += chunk_sum
            # keep the most probable configurations until POINTWISE_MASS is reached
            needed = (np.cumsum(best_weight, axis=1) - best_weight) < POINTWISE_MASS
            top[start:stop] = np.where(needed, best, -1)
            top_weight[start:stop] = np.where(needed, best_weight, 0.0)
    for r in range(k):
        probability[r] = np.bincount(configs[:, r], weights=summed, minlength=n_candidates)
    probability /= n_draws
    return dict(index=index, probability=probability, top=top, top_weight=top_weight,
                configs=configs)


def pointwise_loglik(theta: np.ndarray, sigma: np.ndarray, stats: ThresholdData, k: int,
                     recovered: dict[str, np.ndarray]) -> tuple[np.ndarray, float]:
    """l_i = -log sum_gamma w(gamma) / p(y_i | theta, gamma, sigma) per draw and row.

    w are the conditional probabilities of the configurations retained by
    :func:`recover_thresholds`, renormalised; p(y_i | ...) = N(y~_i; fitted, sigma^2) raised to
    n(T-1)/m, so that the rows sum to the likelihood. Returns (S, m) and the mean retained
    conditional mass.
    """
    theta = np.asarray(theta, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    beta, deltas = regime_blocks(theta, stats, k)
    theta0 = np.ascontiguousarray(np.concatenate([beta, deltas[-1]], axis=1))
    weight_row = stats.dof / stats.n_rows
    if k == 0:
        residuals = stats.y[None, :] - theta0 @ stats.base.T                  # (S, m)
        const = -0.5 * weight_row * (LOG_2PI + 2.0 * np.log(sigma))
        return const[:, None] - residuals**2 / (2.0 * sigma[:, None] ** 2), 1.0
    d = np.ascontiguousarray(np.stack([deltas[r] - deltas[r + 1] for r in range(k)], axis=1))
    sigma = np.ascontiguousarray(sigma)
    top = np.ascontiguousarray(recovered["top"])
    top_weight = np.ascontiguousarray(recovered["top_weight"])
    shared = (np.ascontiguousarray(stats.y), np.ascontiguousarray(stats.base),
              np.ascontiguousarray(stats.split_columns().transpose(1, 2, 0)),
              stats.unit_counts(), stats.panel.rows_per_unit)
    configs = np.ascontiguousarray(recovered["configs"], dtype=np.int64)
    out = np.empty((theta.shape[0], stats.n_rows))
    step = -(-theta.shape[0] // _n_workers())

    def fill(start: int) -> None:
        part = slice(start, start + step)
        pointwise_loglik_draws(*shared, theta0[part], d[part], sigma[part], float(weight_row),
                               configs, top[part], top_weight[part], out[part])

    with ThreadPoolExecutor(max_workers=_n_workers()) as pool:
        list(pool.map(fill, range(0, theta.shape[0], step)))
    return out, float(top_weight.sum(axis=1).mean())


def _n_workers() -> int:
    """Threads for the GIL-free kernels: one per available core."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:
        return max(os.cpu_count() or 1, 1)


def log_marginal_likelihood(stats: ThresholdData, k: int, priors: PanelPriors,
                            log_prior_cfg: np.ndarray, profile: dict[str, Any] | None = None,
                            n_nodes: int = 48, width: float = 12.0, prune: float = 60.0
                            ) -> float:
    """log p(y~ | k threshold model), NaN unless every slope prior is normal.

    For each configuration and sigma, with theta ~ N(m0, V0) (independent normal priors),

        log p(y~ | gamma, sigma) = -dof/2 log(2 pi sigma^2) - y'y / (2 sigma^2)
            - 1/2 log|V0| - 1/2 m0' V0^-1 m0 - 1/2 log|A| + 1/2 b' A^-1 b,
        A = Z'Z / sigma^2 + V0^-1,   b = Z'y / sigma^2 + V0^-1 m0;

    sigma is integrated against its prior by Gauss-Legendre quadrature in log sigma over
    +- ``width`` posterior sd (1 / sqrt(2 dof)) around the best profile estimate, and gamma by
    the sum over the grid weighted by its prior (configurations more than ``prune`` log units
    below the best profile score are left out).

    One eigen-decomposition per configuration serves every node: with H = V0^{1/2} Z'Z V0^{1/2}
    = Q diag(lambda) Q', log|A| = log|V0^-1| + sum_i log(1 + lambda_i / sigma^2) and
    b'A^-1 b = sum_i (e_i / sigma^2 + f_i)^2 / (1 + lambda_i / sigma^2), e = Q'V0^{1/2} Z'y,
    f = Q'V0^{-1/2} m0 (the same identity as the Cholesky solve, not an approximation).
    """
    terms = stats.term_names(k)
    slope_priors = [priors.term_prior("slope", term) for term in terms]
    if any(prior.family != "normal" for prior in slope_priors):
        return float("nan")
    prior_mean = np.array([prior.kwargs["mu"] for prior in slope_priors])
    prior_var = np.array([prior.kwargs["sigma"] ** 2 for prior in slope_priors])
    profile = profile or profile_fit(stats, k, log_prior_cfg)
    keep = profile["score"] >= profile["score"].max() - prune
    gram, rhs = profile["gram"][keep], profile["rhs"][keep]
    configs = profile["configs"][keep]
    config_prior = log_prior_cfg[tuple(configs.T)] if k else np.zeros(1)
    centre = 0.5 * math.log(profile["rss"][profile["best"]] / stats.dof)
    half = width / math.sqrt(2.0 * stats.dof)
    nodes, node_weights = np.polynomial.legendre.leggauss(n_nodes)
    log_sigma = centre + half * nodes
    log_node_weight = np.log(node_weights * half)
    sigma = np.exp(log_sigma)
    sigma_prior = prior_logp_numpy(priors.sigma, sigma)
    constant = (-0.5 * np.sum(np.log(prior_var)) - 0.5 * np.sum(prior_mean**2 / prior_var))
    prior_sd = np.sqrt(prior_var)

    def node_terms(part: slice) -> np.ndarray:
        """log p(y~ | gamma, sigma) at every node for the configurations in ``part``."""
        scaled = gram[part] * prior_sd[:, None] * prior_sd[None, :]
        eigenvalues, vectors = np.linalg.eigh(scaled)
        eigenvalues = np.maximum(eigenvalues, 0.0)               # H is positive semi-definite
        data_part = np.einsum("mpi,mp->mi", vectors, rhs[part] * prior_sd)
        prior_part = vectors.transpose(0, 2, 1) @ (prior_mean / prior_sd)
        out = np.empty((eigenvalues.shape[0], n_nodes))
        for q, s in enumerate(sigma):
            variance = s**2
            shrink = 1.0 + eigenvalues / variance
            log_det = np.sum(np.log(shrink), axis=1) - np.sum(np.log(prior_var))
            quadratic = np.sum((data_part / variance + prior_part) ** 2 / shrink, axis=1)
            out[:, q] = (-0.5 * stats.dof * (LOG_2PI + 2.0 * math.log(s))
                         - stats.yy / (2.0 * variance) + constant - 0.5 * log_det
                         + 0.5 * quadratic)
        return out

    n_configs = configs.shape[0]
    step = -(-n_configs // _n_workers())
    with ThreadPoolExecutor(max_workers=_n_workers()) as pool:
        per_node = np.concatenate(list(pool.map(
            node_terms, [slice(start, start + step) for start in range(0, n_configs, step)])))
    integrand = per_node + (sigma_prior + log_sigma + log_node_weight)[None, :]
    return float(logsumexp(logsumexp(integrand, axis=1) + config_prior))


def log_prior_dataset(priors: PanelPriors, terms, theta, sigma, index, log_prior_cfg,
                      posterior):
    """The ``log_prior`` group: log density of every slope (``slope``, by ``coef``), of
    ``sigma`` and of the sampled threshold configuration (``thresholds``), per draw."""
    import xarray as xr

    slope_lp = np.stack([prior_logp_numpy(priors.term_prior("slope", term), theta[..., j])
                         for j, term in enumerate(terms)], axis=-1)
    sigma_lp = prior_logp_numpy(priors.sigma, sigma)
    k = index.shape[-1]
    config_lp = (log_prior_cfg[tuple(np.moveaxis(index, -1, 0))] if k
                 else np.zeros(sigma.shape))
    return xr.Dataset(
        {"slope": (("chain", "draw", "coef"), slope_lp),
         "sigma": (("chain", "draw"), sigma_lp),
         "thresholds": (("chain", "draw"), config_lp)},
        coords={"chain": posterior.chain, "draw": posterior.draw, "coef": terms})

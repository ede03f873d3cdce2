"""Group-varying slopes integrated out exactly: the collapsed form of partial pooling.

In the heterogeneity model the slope vector b = (beta_1., ..., beta_V., gamma) (V varying
regressors with G groups each, then the common slopes) enters the Gaussian likelihood only
through the within sum of squares, -(b'A b - 2 b'c) / (2 sigma^2) with A = X~'X~, c = X~'y,
because the two-way demeaned design X~ is orthogonal to the intercept, the Mundlak terms and
the year effects. Its prior is normal given the group sds tau:

    beta_r. ~ N(m_r 1, s_r^2 11' + tau_r^2 I)   (mu_r ~ N(m_r, s_r) integrated out),
    gamma_j ~ N(m_j, s_j^2),

so b integrates out in closed form. With S(tau) the prior covariance, m its mean,
Q = A / sigma^2 + S^-1 and h = c / sigma^2 + S^-1 m,

    log int exp(-(b'A b - 2 b'c) / (2 sigma^2)) N(b; m, S) db
        = -1/2 log|S| - 1/2 log|Q| - 1/2 m'S^-1 m + 1/2 h'Q^-1 h,

and b | rest, y ~ N(Q^-1 h, Q^-1). NUTS then samples only tau, sigma and the other
effects; the funnel of the centred form (tau -> 0) and the ridge of the non-centred form
(beta_g = mu + tau z_g pinned by the data) are gone, and every posterior draw gets one exact
draw of b afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SlopePrior:
    """Normal prior of the slope vector given tau: means, and the sds of mu_r and gamma_j."""

    n_groups: int
    varying_mean: np.ndarray  # (V,) m_r
    varying_sd: np.ndarray  # (V,) s_r
    common_mean: np.ndarray  # (C,)
    common_sd: np.ndarray  # (C,)

    @property
    def size(self) -> int:
        return self.varying_mean.size * self.n_groups + self.common_mean.size

    def mean(self) -> np.ndarray:
        return np.concatenate([np.repeat(self.varying_mean, self.n_groups), self.common_mean])


def _inverse_prior_covariance(prior: SlopePrior, tau, xp):
    """S(tau)^-1 and log|S(tau)| (block by block, closed form); ``xp`` is numpy or pytensor.

    (s^2 11' + tau^2 I)^-1 = (I - s^2 / (tau^2 + G s^2) 11') / tau^2,
    log|s^2 11' + tau^2 I| = (G - 1) log tau^2 + log(tau^2 + G s^2).
    ``tau`` has a leading batch axis in numpy (draws), none in pytensor.
    """
    n_groups = prior.n_groups
    ones = np.ones((n_groups, n_groups))
    eye = np.eye(n_groups)
    blocks, logdet = [], 0.0
    for r in range(prior.varying_mean.size):
        tau2 = tau[..., r] ** 2
        pooled = tau2 + n_groups * prior.varying_sd[r] ** 2
        shrink = prior.varying_sd[r] ** 2 / pooled
        blocks.append((eye - shrink[..., None, None] * ones) / tau2[..., None, None])
        logdet = logdet + (n_groups - 1) * xp.log(tau2) + xp.log(pooled)
    common_precision = 1.0 / prior.common_sd**2
    logdet = logdet + float(np.sum(np.log(prior.common_sd**2)))
    return blocks, common_precision, logdet


def _assemble_numpy(blocks, common_precision, batch_shape, size) -> np.ndarray:
    out = np.zeros(batch_shape + (size, size))
    start = 0
    for block in blocks:
        width = block.shape[-1]
        out[..., start:start + width, start:start + width] = block
        start += width
    out[..., range(start, size), range(start, size)] = common_precision
    return out


def collapsed_slope_logp(gram, cross, sigma, tau, prior: SlopePrior):
    """The log integral of the module docstring, as a PyTensor expression of sigma and tau.

    ``gram`` = X~'X~ and ``cross`` = X~'y (numpy); the likelihood's other terms are evaluated
    at b = 0 elsewhere.
    """
    import pytensor.tensor as pt

    blocks, common_precision, logdet_prior = _inverse_prior_covariance(prior, tau, pt)
    size = prior.size
    precision = pt.zeros((size, size))
    start = 0
    for block in blocks:
        width = prior.n_groups
        precision = pt.set_subtensor(precision[start:start + width, start:start + width], block)
        start += width
    if size > start:
        idx = np.arange(start, size)
        precision = pt.set_subtensor(precision[idx, idx], common_precision)
    mean = prior.mean()
    sigma2 = sigma**2
    q = gram / sigma2 + precision
    h = cross / sigma2 + pt.dot(precision, mean)
    chol = pt.linalg.cholesky(q)
    z = pt.linalg.solve_triangular(chol, h, lower=True)
    return (-0.5 * logdet_prior - pt.sum(pt.log(pt.diag(chol)))
            - 0.5 * pt.dot(mean, pt.dot(precision, mean)) + 0.5 * pt.dot(z, z))


def draw_collapsed_slopes(gram, cross, sigma: np.ndarray, tau: np.ndarray, prior: SlopePrior,
                          rng: np.random.Generator) -> np.ndarray:
    """One exact draw of b | sigma, tau, y ~ N(Q^-1 h, Q^-1) per posterior draw.

    ``sigma`` has shape (chain, draw), ``tau`` (chain, draw, V); returns (chain, draw, p).
    """
    batch = sigma.shape
    blocks, common_precision, _ = _inverse_prior_covariance(prior, tau, np)
    precision = _assemble_numpy(blocks, common_precision, batch, prior.size)
    sigma2 = (sigma**2)[..., None]
    q = gram / sigma2[..., None] + precision
    h = cross / sigma2 + precision @ prior.mean()
    chol = np.linalg.cholesky(q)
    centre = np.linalg.solve(q, h[..., None])[..., 0]
    noise = rng.standard_normal(batch + (prior.size,))
    # L'^-1 e has covariance (L L')^-1 = Q^-1.
    offset = np.linalg.solve(np.swapaxes(chol, -1, -2), noise[..., None])[..., 0]
    return centre + offset

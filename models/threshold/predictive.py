"""Posterior predictive draws of the panel threshold and smooth transition models, in levels.

Both models remove the unit effects mu_i by the within transformation, which is their
flat-prior integral. At each of a thinned subset of the posterior draws
(:mod:`models.bayes.predictive`), with m_it = F_it' beta + x_it' delta(q_it) the regression part
(the sharp model: delta_r for g_{r-1} <= q_it < g_r at the draw's thresholds; the smooth
transition: delta_1 (1 - g_it) + delta_2 g_it),

    mu_i  = mean_t(y_it - m_it + sigma e_it)      exact draw of the unit effect given the draw,
    y_rep_it = mu_i + m_it + sigma e'_it,         e, e' ~ N(0, 1),

the model of :mod:`models.threshold.bayes` with its unit effects put back, so the replicates are
of the outcome as given (``observed_data``), one per (unit, period), units in sorted order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.bayes.predictive import (
    PREDICTIVE_DRAWS,
    flat_effects,
    store_replicates,
    thinned_posterior,
)


def _replicate(idata, subset, stats, regression: np.ndarray, seed: int) -> None:
    """Store replicates of y around ``regression`` (..., n, T), unit effects drawn."""
    levels = stats.levels
    n_units, n_periods = levels.y.shape
    unit_idx = np.repeat(np.arange(n_units), n_periods)
    mean = regression.reshape(regression.shape[:-2] + (-1,))
    y = levels.y.reshape(-1)
    sigma = subset["sigma"].values[..., None]
    rng = np.random.default_rng([seed, 0x7E7])
    noise = sigma * rng.standard_normal(mean.shape)
    effects = flat_effects((y - mean)[..., None], noise[..., None], unit_idx, None)[..., 0]
    replicates = mean + effects + sigma * rng.standard_normal(mean.shape)
    store_replicates(idata, subset, {stats.outcome: replicates}, observed={stats.outcome: y})


def add_threshold_predictive(idata, stats, seed: int, n_draws: int = PREDICTIVE_DRAWS) -> None:
    """Add ``posterior_predictive`` replicates of the outcome in levels (sharp thresholds,
    module docstring) and the outcome in ``observed_data`` to ``idata``, whose posterior
    holds ``slope`` (fixed slopes, then the regime slopes delta_1..delta_{k+1}), ``sigma``
    and, with k > 0 thresholds, ``gamma``; ``stats`` is the fit's
    :class:`models.threshold.data.ThresholdData`."""
    subset = thinned_posterior(idata.posterior, n_draws)
    levels = stats.levels
    theta = subset["slope"].values
    n_fixed, n_regime = stats.n_fixed, stats.n_regime
    regression = np.einsum("ntf,...f->...nt", levels.fixed, theta[..., :n_fixed])
    delta = theta[..., n_fixed:].reshape(theta.shape[:-1] + (-1, n_regime))
    if "gamma" in subset:
        gamma = subset["gamma"].values
        # Regime of q: the number of thresholds at or below it (q < g_r is below g_r).
        regime = (levels.q[..., None] >= gamma[..., None, None, :]).sum(axis=-1)
    else:
        regime = np.zeros(theta.shape[:-1] + levels.q.shape, dtype=int)
    slopes = np.take_along_axis(delta[..., None, None, :, :],
                                regime[..., None, None], axis=-2)[..., 0, :]
    regression = regression + np.einsum("ntr,...ntr->...nt", levels.regime, slopes)
    _replicate(idata, subset, stats, regression, seed)


def add_smooth_transition_predictive(idata, stats, weight: Callable, seed: int,
                                     n_draws: int = PREDICTIVE_DRAWS) -> None:
    """As :func:`add_threshold_predictive` for the smooth transition model: the regime
    slopes mix as delta_1 (1 - g) + delta_2 g, g = ``weight(q, gamma, location)`` the
    transition at each draw's smoothness ``gamma`` and location c (posterior ``gamma``,
    ``location``)."""
    subset = thinned_posterior(idata.posterior, n_draws)
    levels = stats.levels
    theta = subset["slope"].values
    n_fixed, n_regime = stats.n_fixed, stats.n_regime
    g = weight(levels.q, subset["gamma"].values[..., None, None],
               subset["location"].values[..., None, None])
    low = np.einsum("ntr,...r->...nt", levels.regime, theta[..., n_fixed:n_fixed + n_regime])
    high = np.einsum("ntr,...r->...nt", levels.regime, theta[..., n_fixed + n_regime:])
    regression = (np.einsum("ntf,...f->...nt", levels.fixed, theta[..., :n_fixed])
                  + low * (1.0 - g) + high * g)
    _replicate(idata, subset, stats, regression, seed)

"""Posterior predictive draws of the Bayesian IV model: the endogenous regressor and the
outcome in levels, effects included.

At each of a thinned subset of the posterior draws (:mod:`models.bayes.predictive`), with
structural residuals before the effects r_u = y - beta x - w' gamma, r_v = x - z' pi - w' delta,

    (a + d, b + c) = P_D ([r_v, r_u] + E_1)        exact draw of both equations' flat-prior
                                                   unit and year effects given the parameters,
    x_rep = z' pi + w' delta + (a_i + d_t) + v,
    y_rep = beta x_rep + w' gamma + (b_i + c_t) + u,     (u, v), E_1 rows ~ N(0, Sigma),

so the outcome is replicated through the replicated first stage, as the joint model says.
"""

from __future__ import annotations

import numpy as np

from models.bayes.predictive import (
    PREDICTIVE_DRAWS,
    flat_effects,
    store_replicates,
    thinned_posterior,
)


def _errors(rng, sigma_u, sigma_v, rho, shape) -> np.ndarray:
    """(..., n, 2) draws of (u, v) with sds sigma_u, sigma_v and correlation rho."""
    e = rng.standard_normal(shape + (2,))
    u = sigma_u[..., None] * e[..., 0]
    v = sigma_v[..., None] * (rho[..., None] * e[..., 0]
                              + np.sqrt(1.0 - rho[..., None] ** 2) * e[..., 1])
    return np.stack([u, v], axis=-1)


def add_iv_predictive(idata, design, seed: int, n_draws: int = PREDICTIVE_DRAWS) -> None:
    """Add ``posterior_predictive`` replicates of the outcome and the endogenous regressor
    (model of the module docstring) and their observed values in levels (``observed_data``)
    to ``idata``; ``design`` is a :class:`models.iv.bayes.IVDesign`."""
    subset = thinned_posterior(idata.posterior, n_draws)
    n_z = len(design.instruments)
    raw = design.raw
    y, x, z, w = raw[:, 0], raw[:, 1], raw[:, 2:2 + n_z], raw[:, 2 + n_z:]
    beta = subset["beta"].values[..., None]
    first = subset["first_stage"].values @ z.T
    control_y = control_x = 0.0
    if w.shape[1]:
        control_y = subset["control_outcome"].values @ w.T
        control_x = subset["control_first"].values @ w.T
    sigma_u, sigma_v, rho = (subset[k].values for k in ("sigma_outcome", "sigma_first", "rho"))
    shape = first.shape
    rng = np.random.default_rng([seed, 0x1F])
    residual = np.stack([y - beta * x - control_y, np.broadcast_to(x - first - control_x, shape)],
                        axis=-1)
    effects = flat_effects(residual, _errors(rng, sigma_u, sigma_v, rho, shape),
                           design.unit_idx, design.time_idx)
    errors = _errors(rng, sigma_u, sigma_v, rho, shape)
    x_rep = first + control_x + effects[..., 1] + errors[..., 1]
    y_rep = beta * x_rep + control_y + effects[..., 0] + errors[..., 0]
    store_replicates(idata, subset, {design.outcome: y_rep, design.endogenous: x_rep},
                     observed={design.outcome: y, design.endogenous: x})

"""Posterior predictive draws of the Bayesian mediation model: every mediator and the outcome
in levels, each equation's unit and year effects included.

At each of a thinned subset of the posterior draws (:mod:`models.bayes.predictive`), in the
ignorable parametrisation the data identify (a, b0, c0, s_y, Sigma_M; the same predictive
distribution whatever rho), with residuals before the effects
r_k = m_k - a_k x - w' delta_k and r_y = y - c0 x - sum_k b0_k m_k - w' gamma,

    effects = P_D ([r_1..r_K, r_y] + E_1)            exact draw of every equation's flat-prior
                                                     unit and year effects given the parameters,
    m_rep_k = a_k x + w' delta_k + effect_k + e_k,   e ~ N(0, Sigma_M),
    y_rep   = c0 x + sum_k b0_k m_rep_k + w' gamma + effect_y + u,   u ~ N(0, s_y^2),

the outcome replicated through the replicated mediators, as the joint model says.
"""

from __future__ import annotations

import numpy as np

from models.bayes.predictive import (
    PREDICTIVE_DRAWS,
    flat_effects,
    store_replicates,
    thinned_posterior,
)


def _errors(rng, sigma_m, corr, sigma_y, shape) -> np.ndarray:
    """(..., n, K + 1) draws of (e_1..e_K, u): mediator errors with sds ``sigma_m`` (..., K)
    and correlation ``corr`` (two mediators), and an independent outcome error."""
    n_k = sigma_m.shape[-1]
    z = rng.standard_normal(shape + (n_k + 1,))
    out = np.empty_like(z)
    out[..., 0] = sigma_m[..., 0, None] * z[..., 0]
    if n_k > 1:
        r = corr[..., None]
        out[..., 1] = sigma_m[..., 1, None] * (r * z[..., 0] + np.sqrt(1.0 - r**2) * z[..., 1])
    out[..., n_k] = sigma_y[..., None] * z[..., n_k]
    return out


def add_mediation_predictive(idata, design, seed: int, n_draws: int = PREDICTIVE_DRAWS) -> None:
    """Add ``posterior_predictive`` replicates of the outcome and every mediator (model of the
    module docstring) and their observed values in levels (``observed_data``) to ``idata``;
    ``design`` is a :class:`models.mediation.design.MediationDesign`."""
    subset = thinned_posterior(idata.posterior, n_draws)
    n_k, n_w = len(design.mediators), len(design.controls)
    raw = design.raw
    y, m, x, w = raw[:, 0], raw[:, 1:1 + n_k], raw[:, 1 + n_k], raw[:, 2 + n_k:]
    suffix = "_ignorable" if "b_ignorable" in subset else ""
    a = subset["a"].values
    b0 = subset["b" + suffix].values
    c0 = subset["direct" + suffix].values[..., None]
    shape = c0.shape[:-1] + (design.n_obs,)
    # Fitted parts without the effects: (..., n, K) for the mediators, (..., n) for y.
    mediator_fit = a[..., None, :] * x[:, None]
    outcome_controls = np.zeros(shape)
    if n_w:
        delta = subset["control_mediator"].values.reshape(a.shape + (n_w,))
        mediator_fit = mediator_fit + np.einsum("nc,...kc->...nk", w, delta)
        outcome_controls = subset["control_outcome"].values @ w.T
    corr = subset["mediator_corr"].values if n_k > 1 else None
    sigma_m, sigma_y = subset["sigma_mediator"].values, subset["sigma_outcome"].values
    rng = np.random.default_rng([seed, 0x3ED])
    residual = np.concatenate([
        m - mediator_fit,
        (y - c0 * x - np.einsum("nk,...k->...n", m, b0) - outcome_controls)[..., None],
    ], axis=-1)
    effects = flat_effects(residual, _errors(rng, sigma_m, corr, sigma_y, shape),
                           design.unit_idx, design.time_idx)
    errors = _errors(rng, sigma_m, corr, sigma_y, shape)
    m_rep = mediator_fit + effects[..., :n_k] + errors[..., :n_k]
    y_rep = (c0 * x + np.einsum("...nk,...k->...n", m_rep, b0) + outcome_controls
             + effects[..., n_k] + errors[..., n_k])
    replicates = {design.outcome: y_rep}
    observed = {design.outcome: y}
    for k, name in enumerate(design.mediators):
        replicates[name] = m_rep[..., k]
        observed[name] = m[:, k]
    store_replicates(idata, subset, replicates, observed=observed)

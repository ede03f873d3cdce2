"""Posterior predictive draws of the Bayesian TWFE, for ``arviz.plot_ppc``.

eta_it = alpha + x~_it' beta + u_i + tau_t at a thinned subset of the posterior draws
(:func:`models.bayes.predictive.thinned_posterior`), the unit effects being the exact
conditional draws of the integrated-out model or the sampled ones, and

    normal:    y_rep_it = eta_it + sigma e_it,        e_it ~ N(0, 1)
    student_t: y_rep_it = eta_it + sigma e_it,        e_it ~ t(nu)
    negbin:    y_rep_it ~ NegBin(mean exp(eta_it), dispersion alpha)   (counts, int32)
"""

from __future__ import annotations

import numpy as np

from models.bayes.predictive import PREDICTIVE_DRAWS, store_replicates, thinned_posterior
from models.panel.design import PanelDesign

__all__ = ["PREDICTIVE_DRAWS", "add_posterior_predictive", "linear_predictor"]


def linear_predictor(subset, design: PanelDesign) -> np.ndarray:
    """(chain, draw, obs) eta_it = alpha + x~_it' beta + u_i + tau_t of the posterior draws in
    ``subset`` (``intercept``, ``slope``, ``unit_effect`` and, with period effects,
    ``year_effect``)."""
    eta = (subset["intercept"].values[..., None]
           + subset["slope"].values @ design.x_within.T
           + subset["unit_effect"].values[..., design.unit_idx])
    if "year_effect" in subset:
        eta = eta + subset["year_effect"].values[..., design.time_idx]
    return eta


def add_posterior_predictive(idata, design: PanelDesign, seed: int,
                             n_draws: int = PREDICTIVE_DRAWS, likelihood: str = "normal"
                             ) -> None:
    """Add a ``posterior_predictive`` group of about ``n_draws`` replicates of the outcome,
    drawn from the TWFE likelihood of the module docstring, to ``idata`` (float32; int32
    counts for ``negbin``), whose posterior holds ``intercept``, ``slope``, ``unit_effect``,
    the likelihood's scale (``sigma``; ``nu`` for Student-t; ``alpha`` for negbin) and, with
    period effects, ``year_effect``."""
    subset = thinned_posterior(idata.posterior, n_draws)
    eta = linear_predictor(subset, design)
    rng = np.random.default_rng([seed, 7])
    if likelihood == "negbin":
        alpha = subset["alpha"].values[..., None]
        mean = np.exp(eta)
        # NegBin(mu, alpha) is Poisson with a Gamma(alpha, alpha / mu) rate.
        replicates = rng.poisson(rng.gamma(alpha, mean / alpha))
        store_replicates(idata, subset, {design.outcome: replicates},
                         observed={design.outcome: design.y}, counts=True)
        return
    sigma = subset["sigma"].values[..., None]
    if likelihood == "student_t":
        noise = rng.standard_t(np.broadcast_to(subset["nu"].values[..., None], eta.shape))
    else:
        noise = rng.standard_normal(eta.shape)
    store_replicates(idata, subset, {design.outcome: eta + sigma * noise})

"""Posterior predictive draws of the normal Bayesian TWFE, for ``arviz.plot_ppc``.

y_rep_it = alpha + x~_it' beta + u_i + tau_t + sigma e_it, e_it ~ N(0, 1), for a thinned subset
of the posterior draws: a predictive check compares the distribution of the outcome with a few
dozen replicates, and one replicate per draw would add a value per draw and observation to
every saved posterior (as large as the log-likelihood).
"""

from __future__ import annotations

import numpy as np

from models.panel.design import PanelDesign

PREDICTIVE_DRAWS = 100


def add_posterior_predictive(idata, design: PanelDesign, seed: int,
                             n_draws: int = PREDICTIVE_DRAWS) -> None:
    """Add a ``posterior_predictive`` group of about ``n_draws`` replicates of the outcome
    (spread evenly over each chain's draws; float32) to ``idata``, whose posterior holds
    ``intercept``, ``slope``, ``unit_effect``, ``sigma`` and, with period effects,
    ``year_effect``."""
    import xarray as xr

    post = idata.posterior
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    per_chain = max(1, min(draws, -(-n_draws // chains)))
    picked = np.unique(np.linspace(0, draws - 1, per_chain).round().astype(int))
    subset = post.isel(draw=picked)
    eta = (subset["intercept"].values[..., None]
           + subset["slope"].values @ design.x_within.T
           + subset["unit_effect"].values[..., design.unit_idx])
    if "year_effect" in subset:
        eta = eta + subset["year_effect"].values[..., design.time_idx]
    rng = np.random.default_rng([seed, 7])
    replicates = eta + subset["sigma"].values[..., None] * rng.standard_normal(eta.shape)
    idata.add_groups({"posterior_predictive": xr.Dataset(
        {design.outcome: (("chain", "draw", "obs"), replicates.astype(np.float32))},
        coords={"chain": subset.chain, "draw": subset.draw, "obs": np.arange(design.n_obs)})})

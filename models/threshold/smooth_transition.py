"""Bayesian panel smooth transition regression (PSTR; González, Teräsvirta & van Dijk 2005).

Model, for unit i and period t,

    y_it = mu_i + F_it' beta + x_it' [delta_1 (1 - g_it) + delta_2 g_it] + e_it,
    g_it = g(q_it; gamma, c) = 1 / (1 + exp(-gamma (q_it - c) / sd(q))),   e ~ N(0, sigma^2),

a two-regime model whose slope moves smoothly from delta_1 (q far below c) to delta_2 (far
above). As gamma -> infinity, g -> 1[q > c] and the model becomes Hansen's single-threshold
model with threshold c and regime slopes delta_1, delta_2 (:mod:`models.threshold.bayes`), so
the posterior of gamma tells whether the data prefer a sharp or a gradual switch. It is a check
on the threshold model, kept deliberately small.

Unit effects are removed by the same within transformation as the threshold model (``demean``
``"hansen"`` or ``"all"``, applied to x g inside the model because g depends on the
parameters), with the likelihood -(n(T-1)/2) log(2 pi sigma^2) - RSS / (2 sigma^2).

Priors: slopes and sigma as :func:`models.threshold.bayes.resolve_slope_priors` (terms
``<x>_regime1``, ``<x>_regime2``); ``log gamma ~ normal(log_gamma_mu, log_gamma_sd)``
(default normal(log 10, 1.5): from nearly linear, gamma ~ 0.5, to nearly sharp, gamma ~ 200,
within two sd); ``c ~ uniform`` between the ``trim`` and ``1 - trim`` quantiles of q. The
slopes are sampled in whitened coordinates around the single-threshold least-squares fit (an
affine map, as in the threshold model). Sampler: nutpie.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from models.bayes.fit import PosteriorFit
from models.bayes.sampler import run_nutpie
from models.bayes.summary import HDI_PROB, summary_row
from models.threshold.data import prepare_threshold_data, threshold_log_prior
from models.threshold.likelihood import profile_fit
from models.threshold.model import whitening
from models.threshold.predictive import add_smooth_transition_predictive
from models.threshold.priors import prior_logp_numpy, resolve_slope_priors, slope_prior_tensor

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True, eq=False)
class SmoothTransitionFit(PosteriorFit):
    """Posterior of the PSTR model: ``slope`` (by ``coef``), ``sigma``, ``gamma`` (smoothness),
    ``log_gamma`` and ``location`` (c); log likelihood per transformed row, log prior, and
    replicates of the outcome in levels (:mod:`models.threshold.predictive`)."""

    model_name: ClassVar[str] = "bayes_smooth_transition"

    def tidy(self, auxiliary: bool = True) -> pd.DataFrame:
        """Slopes, ``location`` (c), ``gamma``, ``log_gamma`` and ``sigma``: posterior mean, sd,
        94% HDI, prob_positive, r_hat, bulk ESS (every term is reported; ``auxiliary`` is
        accepted for the common fit interface)."""
        return super().tidy(True)

    def _build_tidy(self, auxiliary: bool) -> pd.DataFrame:
        posterior = self.idata.posterior
        entries = [(term, posterior["slope"].sel(coef=term).values)
                   for term in self.spec["terms"]]
        entries += [(name, posterior[name].values)
                    for name in ("location", "gamma", "log_gamma", "sigma")]
        return pd.DataFrame([
            summary_row(term, draws, self.spec["n_obs"], self.divergences, HDI_PROB)
            for term, draws in entries])



def transition(q: np.ndarray, gamma: float, location: float, scale: float) -> np.ndarray:
    """g(q; gamma, c) = 1 / (1 + exp(-gamma (q - c) / scale))."""
    return 0.5 * (1.0 + np.tanh(0.5 * gamma * (q - location) / scale))


def fit_smooth_transition(
    data: pd.DataFrame,
    *,
    y: str,
    regime: str | Sequence[str],
    threshold: str,
    fixed: Sequence[str] = (),
    unit: str,
    period: str,
    demean: str = "hansen",
    time: bool = False,
    trim: float = 0.01,
    priors=None,
    log_gamma_mu: float = math.log(10.0),
    log_gamma_sd: float = 1.5,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    target_accept: float = 0.9,
    progressbar: bool = False,
) -> SmoothTransitionFit:
    """Fit the Bayesian panel smooth transition model (see the module docstring).

    y~ = F~ beta + [x (1 - g)]~ delta_1 + [x g]~ delta_2 + e,   g = 1/(1+exp(-gamma (q-c)/sd(q))),
    log gamma ~ normal(log_gamma_mu, log_gamma_sd), c ~ uniform(q_(trim), q_(1-trim)).

    Returns
    -------
    SmoothTransitionFit
    """
    import pymc as pm
    import pytensor.tensor as pt
    import xarray as xr

    from models.bayes.nutpie_compile import compile_model

    start_total = _time.perf_counter()
    # A single-threshold least-squares fit centres the whitened slopes.
    stats = prepare_threshold_data(data, y=y, regime=regime, threshold=threshold, fixed=fixed,
                                   unit=unit, period=period, demean=demean, time=time,
                                   grid_size=100, trim=max(trim, 0.01))
    log_prior_cfg = threshold_log_prior(stats.grid, 1)
    profile = profile_fit(stats, 1, log_prior_cfg)
    centre, chol = whitening(profile)
    resolved = resolve_slope_priors(priors, stats, 1)
    terms = stats.term_names(1)
    panel = stats.panel
    q = panel.q
    scale = float(np.std(q, ddof=1))
    low, high = (float(v) for v in np.quantile(q, [trim, 1.0 - trim]))
    within = panel.within
    n_fixed = stats.n_fixed
    fixed_part = stats.base[:, :n_fixed]
    regime_values = panel.regime                                      # (n, T, kr)
    start_location = float(np.clip(stats.grid[profile["configs"][profile["best"]][0]],
                                   low + 1e-9 * (high - low), high - 1e-9 * (high - low)))
    with pm.Model(coords={"coef": terms}) as model:
        white = pm.Flat("slope_white", dims="coef")
        slope = pm.Deterministic("slope", centre + pt.dot(chol, white), dims="coef")
        pm.Potential("slope_prior", slope_prior_tensor(resolved, terms, slope))
        sigma = resolved.sigma.to_pymc("sigma")
        log_gamma = pm.Normal("log_gamma", log_gamma_mu, log_gamma_sd)
        gamma = pm.Deterministic("gamma", pt.exp(log_gamma))
        location = pm.Uniform("location", low, high, initval=start_location)
        weight = 0.5 * (1.0 + pt.tanh(0.5 * gamma * (q - location) / scale))   # (n, T)
        n_regime = stats.n_regime
        low_slope = slope[n_fixed:n_fixed + n_regime]
        high_slope = slope[n_fixed + n_regime:n_fixed + 2 * n_regime]
        effect = pt.tensordot(regime_values, low_slope, axes=[[2], [0]]) * (1.0 - weight) + \
            pt.tensordot(regime_values, high_slope, axes=[[2], [0]]) * weight     # (n, T)
        transformed = pt.tensordot(effect, within, axes=[[1], [1]]).flatten()    # (n T_kept)
        residual = stats.y - pt.dot(fixed_part, slope[:n_fixed]) - transformed
        pm.Deterministic("residual_ss", pt.sum(residual**2))
        pm.Potential("loglik", -0.5 * stats.dof * (_LOG_2PI + 2.0 * pt.log(sigma))
                     - pt.sum(residual**2) / (2.0 * sigma**2))
    start = _time.perf_counter()
    compiled = compile_model(model)
    times = {"compile_s": _time.perf_counter() - start}
    idata, times["sampling_s"] = run_nutpie(compiled, draws, tune, chains, seed, progressbar,
                                            target_accept)

    start = _time.perf_counter()
    posterior = idata.posterior
    theta = posterior["slope"].values
    sigma_draws = posterior["sigma"].values
    gamma_draws = posterior["gamma"].values
    location_draws = posterior["location"].values
    row_weight = stats.dof / stats.n_rows
    loglik = np.empty(sigma_draws.shape + (stats.n_rows,))
    for chain in range(theta.shape[0]):
        for draw in range(theta.shape[1]):
            g = transition(q, gamma_draws[chain, draw], location_draws[chain, draw], scale)
            beta = theta[chain, draw]
            lower = regime_values @ beta[n_fixed:n_fixed + stats.n_regime]
            upper = regime_values @ beta[n_fixed + stats.n_regime:]
            effect_np = lower * (1.0 - g) + upper * g
            resid = stats.y - fixed_part @ beta[:n_fixed] - panel.transform(effect_np)
            s = sigma_draws[chain, draw]
            loglik[chain, draw] = (-0.5 * row_weight * (_LOG_2PI + 2.0 * math.log(s))
                                   - resid**2 / (2.0 * s**2))
    coords = {"chain": posterior.chain, "draw": posterior.draw}
    idata.posterior = posterior.drop_vars("slope_white")
    idata.add_groups({"log_likelihood": xr.Dataset(
        {y: (("chain", "draw", "obs"), loglik)}, coords={**coords, "obs":
                                                         np.arange(stats.n_rows)})})
    slope_lp = np.stack([prior_logp_numpy(resolved.term_prior("slope", term), theta[..., j])
                         for j, term in enumerate(terms)], axis=-1)
    from scipy import stats as st

    idata.add_groups({"log_prior": xr.Dataset(
        {"slope": (("chain", "draw", "coef"), slope_lp),
         "sigma": (("chain", "draw"), prior_logp_numpy(resolved.sigma, sigma_draws)),
         "log_gamma": (("chain", "draw"), st.norm.logpdf(posterior["log_gamma"].values,
                                                          log_gamma_mu, log_gamma_sd)),
         "location": (("chain", "draw"), np.full(sigma_draws.shape, -math.log(high - low)))},
        coords={**coords, "coef": terms})})
    add_smooth_transition_predictive(
        idata, stats, lambda q, g, c: transition(q, g, c, scale), seed)
    times["postprocess_s"] = _time.perf_counter() - start
    times["total_s"] = _time.perf_counter() - start_total
    spec = {"outcome": y, "regime": list(stats.regime_names), "threshold": threshold,
            "fixed": list(stats.fixed_names), "terms": terms, "unit": unit, "period": period,
            "demean": demean, "time": bool(time), "trim": trim, "q_sd": scale,
            "location_bounds": [low, high], "log_gamma_prior": [log_gamma_mu, log_gamma_sd],
            "sampler": "nutpie", "draws": draws, "tune": tune, "chains": chains,
            "n_obs": stats.n_units * stats.n_periods, "n_rows": stats.n_rows}
    prior_record = resolved.describe(["slope", "sigma"])
    prior_record["log_gamma"] = {"prior": f"normal({log_gamma_mu:.6g}, {log_gamma_sd:.6g})",
                                 "source": "default"}
    prior_record["location"] = {"prior": f"uniform({low:.6g}, {high:.6g})", "source": "default"}
    return SmoothTransitionFit.record(idata, spec=spec, priors=prior_record,
                                      data_hash=stats.data_hash, seed=seed, times=times)

"""Subgroup heterogeneity as partial pooling: group-varying slopes with a hierarchical prior.

Model
-----
For unit i, year t and group g = g(i, t),

    y_it   = alpha + sum_g 1[g(i,t) = g] x~_it' beta_g + w~_it' gamma + u_i + tau_t + e_it,
    beta_g = mu + tau_x * z_g,     z_g ~ N(0, 1)            (non-centred, per focal regressor),
    u_i    = (mbar_i - mbar)' lambda + unit_sd * v_i,   v_i ~ N(0, 1),
    tau_t  ~ ZeroSumNormal(year_sd),   e_it ~ N(0, sigma),

where x are the focal regressor(s), w the controls (common slopes gamma, or group-varying
like x with ``vary_controls=True``), ``~`` marks two-way demeaned columns and mbar_i the unit
means of every design column (the Mundlak term). The interacted columns 1[g(i,t)=g] x_it and,
when the group changes within units, the group dummies come from
:func:`models.heterogeneity.interacted.build_group_design`, the same design the frequentist
interacted TWFE (:func:`models.heterogeneity.interacted.fit_interacted_twfe`) fits.

Everything but the slopes is the Bayesian TWFE of :mod:`models.panel.bayes`, reused as is: the
orthogonal within/between split (the likelihood of the slope vector (beta_g, gamma) is exactly
that of the interacted within regression, so the unit effects, correlated with x, cannot bias
the group slopes), and the unit offsets v_i integrated out exactly for the normal likelihood.
Only the prior on the slope vector changes: beta_g share a normal population N(mu, tau) per
focal regressor. As tau -> infinity the group slopes are the interacted TWFE estimates (no
pooling); as tau -> 0 they collapse to one common slope (complete pooling); the posterior of
tau decides in between.

Priors
------
``slope.<x>`` (:mod:`models.bayes.panel_priors`, data-scaled default normal(0, 2.5 s_y /
s_w(x))) is the prior of the population mean mu of regressor x (and of gamma for common
regressors); the group sd tau_x ~ halfstudentt(3, s_y / s_w(x)) by default, i.e. groups may
differ a priori by about one outcome sd per within sd of x, with a heavy tail; override it with
``group_sd=halfnormal(0.2)`` or ``group_sd.AI=...``. Why Student-t rather than the half-normal
used for the other scales: with three groups the likelihood leaves a tau^-(G-1) tail that only
the prior cuts off, and a half-normal cuts it with a wall whose curvature in log tau grows like
tau^2; on zhao2025's synthetic panel a halfnormal(7.3) tau prior gave 19 divergences, all at tau
> 1, where the half-t's polynomial tail gives a smooth exponential decay in log tau (0
divergences on three seeds). All other roles (intercept, between, sigma, unit_sd, year_sd) are
those of the TWFE model; the Mundlak coefficient of ``AI[g]`` takes the ``between.AI`` prior.

Parametrisation (measured)
~~~~~~~~~~~~~~~~~~~~~~~~~~
Three forms, picked per fit by :func:`choose_parametrisation` (``parametrisation="auto"``):

* ``collapsed`` (the choice whenever the slope priors are normal, as by default): the slopes are
  integrated out exactly (:mod:`models.heterogeneity.collapsed_slopes`; the demeaned design is
  orthogonal to every other term and the slope prior is normal given tau), NUTS samples tau,
  sigma and the remaining effects, and each draw gets one exact draw of the slopes afterwards.
  Neither the funnel nor the ridge below exists in this form; on the within-city high/low data
  split of zhao2025's synthetic panel it has 0 divergences where the other two had 2-790.
* ``non_centred``: beta_g = mu + tau z_g, z_g ~ N(0, 1). Right when the data say little about
  each group (tau may be near zero; the centred form would have a funnel there).
* ``centred``: beta_g sampled directly with mu integrated out analytically,
  beta_x. ~ N(m 1, tau^2 I + s^2 11') for mu ~ N(m, s), and exact draws of mu | beta, tau
  added afterwards. Right when each group has many observations: then beta_g is pinned by the
  likelihood and the non-centred form has a narrow ridge beta_g = mu + tau z_g at large tau.
  On zhao2025's synthetic panel (three regions, ~1,000 observations each) the non-centred
  form gave 72 divergences (all at large tau) and a sampled centred form with mu 85; the
  centred form with mu integrated out gives 0-2.

Without normal slope priors, ``auto`` chooses ``centred`` when, for every varying regressor,
the largest standard error of the interacted TWFE estimates is below the sd of those estimates
across groups, and ``non_centred`` otherwise.
"""

from __future__ import annotations

import itertools
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from models.bayes.fit import PosteriorFit
from models.bayes.log_prior import compute_log_prior
from models.bayes.panel_priors import PanelPriors
from models.bayes.priors import Prior, PriorSpecError
from models.bayes.sampler import sample_model
from models.bayes.summary import summary_row
from models.heterogeneity.collapsed_slopes import (
    SlopePrior,
    draw_collapsed_slopes,
)
from models.heterogeneity.interacted import (
    difference_term,
    slope_term,
)
from models.heterogeneity.model import (
    PARAMETRISATIONS,
    HeterogeneityDesign,
    build_heterogeneity_model,
    choose_parametrisation,
    normal_parameters,
    prepare_heterogeneity,
    resolve_priors,
    slope_prior,
)
from models.heterogeneity.priors import HeterogeneityPriors
from models.panel.marginal import (
    SufficientStats,
    add_observed_data,
    draw_unit_effects,
    restore_unit_effects,
)
from models.panel.predictive import add_posterior_predictive
from models.panel.stored import unit_effects_left_out


def _draw_group_means(idata, mean_priors: Sequence[Prior], seed: int) -> None:
    """Add exact draws of mu | beta, tau (centred form) and their log prior.

    mu_r | beta_r., tau_r ~ N(v (m_r / s_r^2 + sum_g beta_rg / tau_r^2), v),
    v = 1 / (1 / s_r^2 + G / tau_r^2).
    """
    from scipy import stats as sps

    mean, scale = normal_parameters(mean_priors)
    post = idata.posterior
    beta = post["group_slope"].values  # chain, draw, varying, group
    tau2 = post["group_sd"].values ** 2
    variance = 1.0 / (1.0 / scale**2 + beta.shape[-1] / tau2)
    centre = variance * (mean / scale**2 + beta.sum(axis=-1) / tau2)
    rng = np.random.default_rng([seed, 0x6E0])
    draws = centre + np.sqrt(variance) * rng.standard_normal(centre.shape)
    dims = ("chain", "draw", "varying")
    idata.posterior = post.assign(group_mean=(dims, draws))
    log_prior = idata.log_prior.assign(
        group_mean=(dims, sps.norm.logpdf(draws, mean, scale)))
    idata.log_prior = log_prior.assign_coords(varying=post["varying"].values)


def _draw_slopes(idata, design: HeterogeneityDesign, resolved: PanelPriors, seed: int) -> None:
    """Collapsed form: add one exact draw of the slopes per posterior draw."""
    prior = slope_prior(design, resolved)
    stats = SufficientStats.from_design(design.panel)
    post = idata.posterior
    rng = np.random.default_rng([seed, 0xC011])
    slopes = draw_collapsed_slopes(stats.sxx, stats.sxy, post["sigma"].values,
                                   post["group_sd"].values, prior, rng)
    n_varying, n_groups = prior.varying_mean.size, prior.n_groups
    group_slope = slopes[..., :n_varying * n_groups].reshape(slopes.shape[:2]
                                                            + (n_varying, n_groups))
    groups = design.groups
    variables = {"slope": (("chain", "draw", "coef"), slopes),
                 "group_slope": (("chain", "draw", "varying", "group"), group_slope)}
    coords = {"coef": list(groups.columns), "varying": list(groups.varying),
              "group": list(groups.groups)}
    if groups.common:
        variables["common_slope"] = (("chain", "draw", "common"),
                                     slopes[..., n_varying * n_groups:])
        coords["common"] = list(groups.common)
    idata.posterior = post.assign(variables).assign_coords(coords)


def _add_common_slope_log_prior(idata, prior: SlopePrior) -> None:
    from scipy import stats as sps

    if "common_slope" not in idata.posterior:
        return
    draws = idata.posterior["common_slope"]
    density = sps.norm.logpdf(draws.values, prior.common_mean, prior.common_sd)
    idata.log_prior = idata.log_prior.assign(
        common_slope=(draws.dims, density)).assign_coords(common=draws["common"].values)


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BayesHeterogeneityFit(PosteriorFit):
    """A fitted partial-pooling heterogeneity model.

    Same interface and provenance as :class:`models.bayes.fit.PosteriorFit` (``tidy``,
    ``convergence_problems``, ``converged``, ``save_netcdf``; idata with ``log_likelihood``,
    ``log_prior``, ``observed_data`` and ``posterior_predictive``, replicates of the outcome
    from :func:`models.panel.predictive.add_posterior_predictive`); ``spec`` adds ``group``,
    ``groups``, ``varying`` and ``common``.
    """

    model_name: ClassVar[str] = "bayes_heterogeneity"

    def recomputed_on_load(self) -> dict[str, tuple[str, ...]]:
        """The unit effects drawn after sampling and the pointwise log-likelihood
        (:mod:`models.panel.stored`)."""
        return unit_effects_left_out(self.idata, self.spec)

    @classmethod
    def restore(cls, idata) -> None:
        restore_unit_effects(idata)

    def _build_tidy(self, auxiliary: bool) -> pd.DataFrame:
        posterior = self.idata.posterior
        spec = self.spec
        entries: list[tuple[str, np.ndarray]] = []
        slopes = posterior["group_slope"]
        for name in spec["varying"]:
            draws = {g: slopes.sel(varying=name, group=g).values for g in spec["groups"]}
            entries += [(slope_term(name, g), draws[g]) for g in spec["groups"]]
            entries.append((f"{name}_mu", posterior["group_mean"].sel(varying=name).values))
            entries.append((f"{name}_tau", posterior["group_sd"].sel(varying=name).values))
            for first, second in itertools.combinations(spec["groups"], 2):
                entries.append((difference_term(name, first, second),
                                draws[first] - draws[second]))
        if auxiliary:
            if "common_slope" in posterior:
                for name in spec["common"]:
                    entries.append((name, posterior["common_slope"].sel(common=name).values))
            for name in ("intercept", "sigma", "unit_sd", "year_sd"):
                if name in posterior:
                    entries.append((name, posterior[name].values))
        return pd.DataFrame([summary_row(term, draws, spec["n_obs"], self.divergences)
                             for term, draws in entries])

    def group_draws(self, regressor: str | None = None) -> pd.DataFrame:
        """Posterior draws of beta_g, one column per group (chains stacked)."""
        name = regressor or self.spec["varying"][0]
        slopes = self.idata.posterior["group_slope"].sel(varying=name)
        return pd.DataFrame({g: slopes.sel(group=g).values.reshape(-1)
                             for g in self.spec["groups"]})


# --------------------------------------------------------------------------------------------
# Public fitting function
# --------------------------------------------------------------------------------------------


def fit_bayes_heterogeneity(
    df: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    group: str,
    unit: str,
    time: str | None = None,
    focal: Sequence[str] | None = None,
    vary_controls: bool = False,
    groups: Sequence[str] | None = None,
    priors: Any = None,
    parametrisation: str = "auto",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    sampler: str = "nutpie",
    progressbar: bool = False,
    target_accept: float | None = None,
) -> BayesHeterogeneityFit:
    """Fit group-varying slopes with partial pooling (see the module docstring).

    Model::

        y_it   = alpha + sum_g 1[g(i,t)=g] x~_it' beta_g + w~_it' gamma + u_i + tau_t + e_it
        beta_g = mu + tau_x z_g,  z_g ~ N(0, 1);   u_i = (mbar_i - mbar)' lambda + unit_sd v_i

    Parameters
    ----------
    df : DataFrame
        One row per unit and year.
    outcome, regressors, unit, time : str
        As in :func:`models.panel.bayes.fit_bayes_twfe`.
    group : str
        Categorical column defining the groups (unit-level or unit-year-level).
    focal : sequence of str, optional
        Regressors whose slope varies (default the first regressor).
    vary_controls : bool
        Let the controls' slopes vary by group too (each with its own mu and tau).
    groups : sequence of str, optional
        Order of the groups in the output (default sorted).
    priors : PanelPriors, HeterogeneityPriors, mapping or ``ROLE=DIST`` strings, optional
        TWFE roles plus ``group_sd`` / ``group_sd.<x>``.
    parametrisation : {"auto", "collapsed", "non_centred", "centred"}
        ``collapsed``: slopes integrated out and drawn afterwards (needs normal slope priors).
        ``non_centred``: beta_g = mu + tau z_g. ``centred``: beta_g sampled directly with mu
        integrated out (exact draws of mu added afterwards; needs normal priors on mu).
        ``auto`` picks by :func:`choose_parametrisation`.
    draws, tune, chains, seed, sampler, progressbar, target_accept
        As in :func:`models.panel.bayes.fit_bayes_twfe`.

    Returns
    -------
    BayesHeterogeneityFit
    """

    start_total = _time.perf_counter()
    design = prepare_heterogeneity(df, outcome, regressors, group, unit, time, focal,
                                   vary_controls, groups)
    parsed = HeterogeneityPriors.parse(priors)
    resolved, between, tau, record = resolve_priors(parsed, design)
    mean_priors = [resolved.term_prior("slope", r) for r in design.groups.varying]
    if parametrisation == "auto":
        chosen = choose_parametrisation(design, mean_priors, resolved)
    elif parametrisation in PARAMETRISATIONS:
        chosen = parametrisation
    else:
        raise ValueError(f"Unknown parametrisation {parametrisation!r}; use 'auto' or one of "
                         f"{PARAMETRISATIONS}.")
    if chosen == "collapsed" and slope_prior(design, resolved) is None:
        raise PriorSpecError("The collapsed form integrates the slopes out and needs normal "
                             "priors on the group means and common slopes (slope.<x>).")
    model = build_heterogeneity_model(design, resolved, between, tau, chosen)
    idata, times = sample_model(model, sampler, draws, tune, chains, seed, progressbar,
                                target_accept)
    start_post = _time.perf_counter()
    if chosen == "collapsed":
        _draw_slopes(idata, design, resolved, seed)
    draw_unit_effects(idata, design.panel, seed)
    add_posterior_predictive(idata, design.panel, seed)
    # log_prior holds the configurable priors (what power-scaling perturbs), not the
    # hierarchical offsets, unit effects or year effects.
    keep = ("intercept", "group_mean", "group_sd", "common_slope", "between", "sigma",
            "unit_sd", "year_sd")
    prior_vars = [v.name for v in model.free_RVs
                  if v.name in keep or v.name.startswith(tuple(f"{k}_" for k in keep))]
    compute_log_prior(idata, model, prior_vars)
    if chosen == "collapsed":
        _add_common_slope_log_prior(idata, slope_prior(design, resolved))
    if chosen in ("centred", "collapsed"):
        _draw_group_means(idata, mean_priors, seed)
    add_observed_data(idata, design.panel)
    times["postprocess_s"] = _time.perf_counter() - start_post
    times["total_s"] = _time.perf_counter() - start_total
    groups_design = design.groups
    spec = {
        "model": "heterogeneity",
        "outcome": outcome,
        "regressors": list(groups_design.varying) + list(groups_design.common),
        "group": group,
        "groups": list(groups_design.groups),
        "varying": list(groups_design.varying),
        "common": list(groups_design.common),
        "group_varies_within_unit": groups_design.group_varies_within_unit,
        "unit": unit,
        "time": time,
        "likelihood": "normal",
        "parametrisation": chosen,
        "parametrisation_requested": parametrisation,
        "unit_effects": "marginalised",
        "sampler": sampler,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "n_obs": design.panel.n_obs,
        "n_units": len(design.panel.unit_labels),
        "n_years": len(design.panel.time_labels),
        "group_n_obs": {g: int((groups_design.frame[group] == g).sum())
                        for g in groups_design.groups},
    }
    return BayesHeterogeneityFit.record(idata, spec=spec, priors=record,
                                        data_hash=design.data_hash(), seed=seed, times=times)

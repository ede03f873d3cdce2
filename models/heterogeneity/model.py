"""The partial-pooling model as a PyMC graph: its design, resolved priors, parametrisation
choice and the graph itself, apart from sampling it (:mod:`models.heterogeneity.bayes`, where
the model and the measured parametrisations are described).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from models.bayes.panel_priors import DataScales, PanelPriors
from models.bayes.priors import Prior, PriorSpecError
from models.heterogeneity.collapsed_slopes import SlopePrior, collapsed_slope_logp
from models.heterogeneity.interacted import GroupDesign, build_group_design
from models.heterogeneity.priors import GROUP_SD_ROLE, HeterogeneityPriors
from models.panel.design import PanelDesign, prepare_panel
from models.panel.marginal import MODEL_FIELDS, SufficientStats
from models.panel.marginal_op import marginal_normal_logp_fused

PARAMETRISATIONS = ("collapsed", "centred", "non_centred")


@dataclass(frozen=True)
class HeterogeneityDesign:
    """The group design and its within/between split (a :class:`PanelDesign`)."""

    groups: GroupDesign
    panel: PanelDesign
    original_within_sd: dict[str, float]
    original_between_sd: dict[str, float]

    def data_hash(self) -> str:
        digest = hashlib.sha256(self.panel.data_hash().encode())
        digest.update(self.groups.group_column.encode())
        digest.update("\x1f".join(self.groups.frame[self.groups.group_column]).encode())
        return digest.hexdigest()


def prepare_heterogeneity(
    df: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    group: str,
    unit: str,
    time: str | None = None,
    focal: Sequence[str] | None = None,
    vary_controls: bool = False,
    groups: Sequence[str] | None = None,
) -> HeterogeneityDesign:
    """Build the interacted design and its orthogonal within/between split.

    Raises
    ------
    ValueError
        As :func:`models.heterogeneity.interacted.build_group_design` and
        :func:`models.panel.bayes.prepare_panel` (for example a group in which the focal
        regressor has no within variation: its slope ``AI[g]`` is not identified).
    """
    design = build_group_design(df, outcome, regressors, group, unit, time, focal,
                                vary_controls, groups)
    panel = prepare_panel(design.frame, outcome, list(design.columns), unit, time)
    originals = [r for r in design.varying] + [r for r in design.common]
    source = design.frame.copy()
    for name in design.varying:
        source[name] = pd.to_numeric(df[name]).to_numpy(dtype=float)
    reference = prepare_panel(source.assign(**{outcome: panel.y}), outcome, originals, unit, time)
    within = dict(zip(originals, reference.x_within.std(axis=0, ddof=1), strict=True))
    between = dict(zip(originals, reference.unit_means.std(axis=0, ddof=1), strict=True))
    return HeterogeneityDesign(design, panel, within, between)


def resolve_priors(priors: HeterogeneityPriors, design: HeterogeneityDesign):
    """Resolved TWFE priors over the original regressors, per-column between priors and the
    tau priors, plus the record of every prior used."""
    groups = design.groups
    originals = list(groups.varying) + list(groups.common)
    y = design.panel.y
    scales = DataScales(
        regressors=tuple(originals), y_mean=float(y.mean()), y_sd=float(y.std(ddof=1)),
        within_sd=tuple(design.original_within_sd[r] for r in originals),
        between_sd=tuple(design.original_between_sd[r] for r in originals), link="identity",
    )
    resolved = priors.panel.resolve(scales)
    between = [resolved.term_prior("between", r) for r in groups.varying for _ in groups.groups]
    between += [resolved.term_prior("between", r) for r in groups.common]
    y_sd = scales.y_sd if np.isfinite(scales.y_sd) and scales.y_sd > 0 else 1.0
    tau: list[Prior] = []
    record = resolved.describe(["intercept", "slope", "between", "sigma", "unit_sd", "year_sd"])
    for name in groups.varying:
        w_sd = design.original_within_sd[name]
        default = Prior.of("halfstudentt", 3.0, y_sd / (w_sd if w_sd > 0 else 1.0))
        prior, source = priors.group_sd_prior(name, default)
        tau.append(prior)
        record[f"{GROUP_SD_ROLE}.{name}"] = {"prior": str(prior), "source": source}
    for name in groups.varying:
        record[f"slope.{name}"]["note"] = f"prior of the group mean {name}_mu"
    return resolved, between, tau, record


def normal_parameters(priors: Sequence[Prior]) -> tuple[np.ndarray, np.ndarray] | None:
    """Means and sds of normal priors; None when any prior is not normal."""
    if any(p.family != "normal" for p in priors):
        return None
    params = [dict(p.params) for p in priors]
    return (np.array([p["mu"] for p in params]), np.array([p["sigma"] for p in params]))


def _population_logp(group_slope, mean_priors: Sequence[Prior], tau):
    """log p(beta_r. | tau_r) with mu_r ~ N(m_r, s_r) integrated out, summed over regressors.

    beta_r. ~ N(m_r 1, tau_r^2 I + s_r^2 11'); with G groups and d = beta_r. - m_r,
    log p = -[(G-1) log tau^2 + log(tau^2 + G s^2)]/2
            - [d'd - s^2 (1'd)^2 / (tau^2 + G s^2)] / (2 tau^2) - G/2 log(2 pi).
    """
    import pytensor.tensor as pt

    normal = normal_parameters(mean_priors)
    if normal is None:
        raise PriorSpecError("The centred group slopes integrate the group mean out and need "
                             "normal priors on it (slope.<x>); use the non-centred form.")
    mean, scale = normal
    n_groups = group_slope.shape[1]
    deviation = group_slope - mean[:, None]
    tau2 = tau**2
    pooled = tau2 + n_groups * scale**2
    quadratic = (pt.sum(deviation**2, axis=1)
                 - scale**2 * pt.sum(deviation, axis=1) ** 2 / pooled) / tau2
    return pt.sum(-0.5 * ((n_groups - 1) * pt.log(tau2) + pt.log(pooled))
                  - 0.5 * quadratic - 0.5 * n_groups * np.log(2.0 * np.pi))


def slope_prior(design: HeterogeneityDesign, resolved: PanelPriors) -> SlopePrior | None:
    """The normal prior of the slope vector given tau (None unless every group-mean and
    common-slope prior is normal): what :mod:`models.heterogeneity.collapsed_slopes`
    integrates against."""
    groups = design.groups
    varying = normal_parameters([resolved.term_prior("slope", r) for r in groups.varying])
    common = normal_parameters([resolved.term_prior("slope", r) for r in groups.common])
    if varying is None or (groups.common and common is None):
        return None
    common_mean, common_sd = common if groups.common else (np.zeros(0), np.zeros(0))
    return SlopePrior(len(groups.groups), varying[0], varying[1], common_mean, common_sd)


def choose_parametrisation(design: HeterogeneityDesign, mean_priors: Sequence[Prior],
                           resolved: PanelPriors | None = None) -> str:
    """``"collapsed"`` whenever the slope priors are normal; else centred or non-centred.

    The collapsed form integrates the slopes out exactly and has neither the funnel of the
    centred form at small tau nor the ridge of the non-centred form at large tau. Measured on
    the SYNTHETIC zhao2025 panel, high/low data resources (membership changes within cities,
    so the two group slopes are correlated 0.9 in the likelihood), 4 x 1,000 draws: the
    centred form gave bulk ESS 410 and 0-20 divergences, the non-centred 120-790 divergences,
    a low-rank mass matrix did not remove them; the collapsed form gives none (see
    ``tests/models/heterogeneity/test_bayes.py``).

    Without normal priors the rule compares, per varying regressor, the largest classical
    standard error of the interacted within (TWFE) estimates of beta_g with the sd of those
    estimates across groups.
    When the standard errors are smaller, the likelihood dominates and the centred form (mu
    integrated out) samples well, while the non-centred form has a narrow ridge
    beta_g = mu + tau z_g at large tau (divergences); otherwise the non-centred form avoids the
    funnel of small tau (Betancourt & Girolami 2015).
    """
    if resolved is not None and slope_prior(design, resolved) is not None:
        return "collapsed"
    if normal_parameters(mean_priors) is None:
        return "non_centred"
    panel, groups = design.panel, design.groups
    x = panel.x_within
    y = panel.y_within()
    gram_inv = np.linalg.inv(x.T @ x)
    estimate = gram_inv @ (x.T @ y)
    residual = y - x @ estimate
    dof = max(panel.n_obs - x.shape[1] - panel.fe_rank, 1)
    se = np.sqrt(np.diag(gram_inv) * float(residual @ residual) / dof)
    n_groups = len(groups.groups)
    for j, _ in enumerate(groups.varying):
        block = slice(j * n_groups, (j + 1) * n_groups)
        if se[block].max() >= estimate[block].std(ddof=1):
            return "non_centred"
    return "centred"


def _stacked_prior(priors: Sequence[Prior], name: str, dims: str):
    """One vector variable when the priors share a family, else stacked scalars."""
    import pymc as pm
    import pytensor.tensor as pt

    families = {p.family for p in priors}
    if len(families) == 1:
        first = priors[0]
        params = {key: np.array([dict(p.params)[key] for p in priors]) for key, _ in first.params}
        return first.to_pymc(name, dims=dims, **params)
    parts = [p.to_pymc(f"{name}_{j}") for j, p in enumerate(priors)]
    return pm.Deterministic(name, pt.stack(parts), dims=dims)


def outcome_data(design: HeterogeneityDesign) -> dict[str, np.ndarray]:
    """The sufficient statistics of the likelihood, by ``pm.Data`` name (``stat_<field>``),
    for a data-container model (:func:`build_heterogeneity_model`)."""
    stats = SufficientStats.from_design(design.panel)
    return {f"stat_{key}": np.asarray(getattr(stats, key), dtype=float)
            for key in MODEL_FIELDS if getattr(stats, key) is not None}


def build_heterogeneity_model(
    design: HeterogeneityDesign,
    resolved: PanelPriors,
    between_priors: Sequence[Prior],
    tau_priors: Sequence[Prior],
    parametrisation: str = "non_centred",
    data_containers: bool = False,
):
    """The PyMC model of the module docstring (normal likelihood, unit offsets integrated out).

    Free variables: ``intercept``, ``group_mean`` (mu, dims ``varying``), ``group_sd`` (tau),
    ``group_offset`` (z, dims ``varying x group``; ``group_slope`` itself when ``centred``),
    ``common_slope`` (gamma), ``between`` (lambda per design column), ``unit_sd``, ``year_sd``,
    ``year_effect``, ``sigma``. Deterministics: ``group_slope`` (beta, ``varying x group``) and
    ``slope`` (all design slopes, dims ``coef``, in :attr:`GroupDesign.columns` order).
    ``collapsed`` has no slope variables at all: they are integrated out
    (:mod:`models.heterogeneity.collapsed_slopes`) and drawn after sampling.

    ``data_containers=True`` holds the sufficient statistics that depend on the outcome in
    ``pm.Data`` containers named as in :func:`outcome_data`, so one compiled model serves
    every outcome on the same design (simulation-based calibration).
    """
    import pymc as pm
    import pytensor.tensor as pt

    groups, panel = design.groups, design.panel
    coords: dict[str, Any] = {
        "coef": list(groups.columns),
        "varying": list(groups.varying),
        "group": list(groups.groups),
        "unit": list(panel.unit_labels),
    }
    if groups.common:
        coords["common"] = list(groups.common)
    if panel.time_idx is not None:
        coords["year"] = list(panel.time_labels)
    with pm.Model(coords=coords) as model:
        intercept = resolved.intercept.to_pymc("intercept")
        mean_priors = [resolved.term_prior("slope", r) for r in groups.varying]
        tau = _stacked_prior(list(tau_priors), "group_sd", "varying")
        stats = SufficientStats.from_design(panel)
        if data_containers:
            values = outcome_data(design)
            stats = replace(stats, **{key: pm.Data(name, value)
                                      for name, value in values.items()
                                      for key in [name.removeprefix("stat_")]})
        sigma = resolved.sigma.to_pymc("sigma")
        if parametrisation == "collapsed":
            # The likelihood below is then evaluated at zero slopes; this term adds the rest.
            slope = pt.zeros(len(groups.columns))
            pm.Potential("slopes_integrated", collapsed_slope_logp(
                stats.sxx, stats.sxy, sigma, tau, slope_prior(design, resolved)))
        elif parametrisation == "centred":
            group_slope = pm.Flat("group_slope", dims=("varying", "group"))
            pm.Potential("group_population", _population_logp(group_slope, mean_priors, tau))
        else:
            mu = _stacked_prior(mean_priors, "group_mean", "varying")
            offset = pm.Normal("group_offset", 0.0, 1.0, dims=("varying", "group"))
            group_slope = pm.Deterministic("group_slope", mu[:, None] + tau[:, None] * offset,
                                           dims=("varying", "group"))
        if parametrisation != "collapsed":
            parts = [group_slope.flatten()]
            if groups.common:
                common_priors = [resolved.term_prior("slope", r) for r in groups.common]
                parts.append(_stacked_prior(common_priors, "common_slope", "common"))
            slope = pm.Deterministic("slope", pt.concatenate(parts), dims="coef")
        between = _stacked_prior(list(between_priors), "between", "coef")
        unit_sd = resolved.unit_sd.to_pymc("unit_sd")
        year_effect = None
        if panel.time_idx is not None:
            year_sd = resolved.year_sd.to_pymc("year_sd")
            year_effect = pm.ZeroSumNormal("year_effect", sigma=year_sd, dims="year")
        pm.Potential(
            f"{panel.outcome}_marginal",
            marginal_normal_logp_fused(stats, intercept, slope,
                                       between, year_effect, sigma, unit_sd),
        )
    return model

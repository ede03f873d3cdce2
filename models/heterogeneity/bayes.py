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
:func:`models.heterogeneity.interacted.build_group_design`, the same design the frequentist interacted
TWFE (:func:`models.heterogeneity.interacted.fit_interacted_twfe`) fits.

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
``slope.<x>`` (:mod:`models.bayes.priors`, data-scaled default normal(0, 2.5 s_y / s_w(x))) is the
prior of the population mean mu of regressor x (and of gamma for common regressors); the
group sd tau_x ~ halfstudentt(3, s_y / s_w(x)) by default, i.e. groups may differ a priori by
about one outcome sd per within sd of x, with a heavy tail; override it with
``group_sd=halfnormal(0.2)`` or ``group_sd.AI=...``. Why Student-t rather than the half-normal
used for the other scales: with three groups the likelihood leaves a tau^-(G-1) tail that only
the prior cuts off, and a half-normal cuts it with a wall whose curvature in log tau grows like
tau^2; on zhao2025's synthetic panel a halfnormal(7.3) tau prior gave 19 divergences, all at
tau > 1, where the half-t's polynomial tail gives a smooth exponential decay in log tau
(0 divergences on three seeds). All other roles (intercept, between, sigma, unit_sd, year_sd)
are those of the TWFE model; the Mundlak coefficient of ``AI[g]`` takes the ``between.AI``
prior.

Parametrisation (measured)
~~~~~~~~~~~~~~~~~~~~~~~~~~
Three forms, picked per fit by :func:`choose_parametrisation` (``parametrisation="auto"``):

* ``collapsed`` (the choice whenever the slope priors are normal, as by default): the slopes
  are integrated out exactly (:mod:`models.heterogeneity.collapsed_slopes`; the demeaned design is orthogonal
  to every other term and the slope prior is normal given tau), NUTS samples tau, sigma and the
  remaining effects, and each draw gets one exact draw of the slopes afterwards. Neither the
  funnel nor the ridge below exists in this form; on the within-city high/low data split of
  zhao2025's synthetic panel it has 0 divergences where the other two had 2-790.
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

import hashlib
import itertools
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from models.bayes.fit import PosteriorFit
from models.bayes.priors import DataScales, PanelPriors, Prior, PriorSpecError, prior_from_value
from models.bayes.sampler import sample_model
from models.bayes.summary import summary_row
from models.heterogeneity.collapsed_slopes import (
    SlopePrior,
    collapsed_slope_logp,
    draw_collapsed_slopes,
)
from models.heterogeneity.interacted import (
    GroupDesign,
    build_group_design,
    difference_term,
    slope_term,
)
from models.panel.design import PanelDesign, prepare_panel
from models.panel.marginal import SufficientStats, add_observed_data, draw_unit_effects
from models.panel.marginal_op import marginal_normal_logp_fused

GROUP_SD_ROLE = "group_sd"
PARAMETRISATIONS = ("collapsed", "centred", "non_centred")


# --------------------------------------------------------------------------------------------
# Priors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeterogeneityPriors:
    """TWFE priors (:class:`PanelPriors`, over the original regressors) plus the group sd.

    ``group_sd`` is the prior of tau for every varying regressor, ``group_sd_terms`` per
    regressor; None means the data-scaled default halfstudentt(3, s_y / s_w(x)).
    """

    panel: PanelPriors
    group_sd: Prior | None = None
    group_sd_terms: tuple[tuple[str, Prior], ...] = ()

    @classmethod
    def parse(cls, priors: Any) -> HeterogeneityPriors:
        """From None, a :class:`PanelPriors`, a mapping or ``ROLE=DIST`` strings.

        ``group_sd`` / ``group_sd.<x>`` entries go to the group sd; the rest to the TWFE roles.
        """
        if isinstance(priors, HeterogeneityPriors):
            return priors
        if priors is None:
            return cls(PanelPriors())
        if isinstance(priors, PanelPriors):
            return cls(priors)
        if isinstance(priors, str):
            priors = [priors]
        group_sd: Prior | None = None
        terms: dict[str, Prior] = {}
        rest: Any
        if isinstance(priors, Mapping):
            rest = {}
            for key, value in priors.items():
                role, _, term = str(key).partition(".")
                if role != GROUP_SD_ROLE:
                    rest[key] = value
                elif isinstance(value, Mapping) and not term:
                    terms.update({str(t): _positive_prior(v, f"{key}.{t}")
                                  for t, v in value.items()})
                elif term:
                    terms[term] = _positive_prior(value, str(key))
                else:
                    group_sd = _positive_prior(value, str(key))
            panel = PanelPriors.from_mapping(rest) if rest else PanelPriors()
        else:
            rest = []
            for text in priors:
                key, sep, value = str(text).partition("=")
                role, _, term = key.strip().partition(".")
                if sep and role == GROUP_SD_ROLE:
                    prior = _positive_prior(value.strip(), key.strip())
                    if term:
                        terms[term] = prior
                    else:
                        group_sd = prior
                else:
                    rest.append(text)
            panel = PanelPriors().with_overrides(rest, source="cli") if rest else PanelPriors()
        return cls(panel, group_sd, tuple(terms.items()))

    def group_sd_prior(self, term: str, default: Prior) -> tuple[Prior, str]:
        """The tau prior of ``term`` and where it came from."""
        terms = dict(self.group_sd_terms)
        if term in terms:
            return terms[term], "user"
        if self.group_sd is not None:
            return self.group_sd, "user"
        return default, "default"


def _positive_prior(value: Any, where: str) -> Prior:
    prior = value if isinstance(value, Prior) else prior_from_value(value, f"prior {where!r}")
    if prior.support != "positive":
        raise PriorSpecError(f"Prior {where} = {prior} must be on the positive half-line "
                             "(halfnormal, exponential, ...): it is a standard deviation.")
    return prior


# --------------------------------------------------------------------------------------------
# Design
# --------------------------------------------------------------------------------------------


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


def _resolve(priors: HeterogeneityPriors, design: HeterogeneityDesign):
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


def _normal_parameters(priors: Sequence[Prior]) -> tuple[np.ndarray, np.ndarray] | None:
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

    normal = _normal_parameters(mean_priors)
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


def _draw_group_means(idata, mean_priors: Sequence[Prior], seed: int) -> None:
    """Add exact draws of mu | beta, tau (centred form) and their log prior.

    mu_r | beta_r., tau_r ~ N(v (m_r / s_r^2 + sum_g beta_rg / tau_r^2), v),
    v = 1 / (1 / s_r^2 + G / tau_r^2).
    """
    from scipy import stats as sps

    mean, scale = _normal_parameters(mean_priors)
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


def slope_prior(design: HeterogeneityDesign, resolved: PanelPriors) -> SlopePrior | None:
    """The normal prior of the slope vector given tau (None unless every group-mean and
    common-slope prior is normal): what :mod:`models.heterogeneity.collapsed_slopes` integrates against."""
    groups = design.groups
    varying = _normal_parameters([resolved.term_prior("slope", r) for r in groups.varying])
    common = _normal_parameters([resolved.term_prior("slope", r) for r in groups.common])
    if varying is None or (groups.common and common is None):
        return None
    common_mean, common_sd = common if groups.common else (np.zeros(0), np.zeros(0))
    return SlopePrior(len(groups.groups), varying[0], varying[1], common_mean, common_sd)


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


def choose_parametrisation(design: HeterogeneityDesign, mean_priors: Sequence[Prior],
                           resolved: PanelPriors | None = None) -> str:
    """``"collapsed"`` whenever the slope priors are normal; else centred or non-centred.

    The collapsed form integrates the slopes out exactly and has neither the funnel of the
    centred form at small tau nor the ridge of the non-centred form at large tau. Measured on
    the SYNTHETIC zhao2025 panel, high/low data resources (membership changes within cities,
    so the two group slopes are correlated 0.9 in the likelihood), 4 x 1,000 draws: the
    centred form gave bulk ESS 410 and 0-20 divergences, the non-centred 120-790 divergences,
    a low-rank mass matrix did not remove them; the collapsed form gives none (see
    ``tests/test_bayes_heterogeneity.py``).

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
    if _normal_parameters(mean_priors) is None:
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


def build_heterogeneity_model(
    design: HeterogeneityDesign,
    resolved: PanelPriors,
    between_priors: Sequence[Prior],
    tau_priors: Sequence[Prior],
    parametrisation: str = "non_centred",
):
    """The PyMC model of the module docstring (normal likelihood, unit offsets integrated out).

    Free variables: ``intercept``, ``group_mean`` (mu, dims ``varying``), ``group_sd`` (tau),
    ``group_offset`` (z, dims ``varying x group``; ``group_slope`` itself when ``centred``),
    ``common_slope`` (gamma), ``between`` (lambda per design column), ``unit_sd``, ``year_sd``,
    ``year_effect``, ``sigma``. Deterministics: ``group_slope`` (beta, ``varying x group``) and
    ``slope`` (all design slopes, dims ``coef``, in :attr:`GroupDesign.columns` order).
    ``collapsed`` has no slope variables at all: they are integrated out
    (:mod:`models.heterogeneity.collapsed_slopes`) and drawn after sampling.
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


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BayesHeterogeneityFit(PosteriorFit):
    """A fitted partial-pooling heterogeneity model.

    Same interface and provenance as :class:`models.bayes.fit.PosteriorFit` (``tidy``,
    ``convergence_problems``, ``converged``, ``save_netcdf``; idata with ``log_likelihood``
    and ``log_prior``); ``spec`` adds ``group``, ``groups``, ``varying`` and ``common``.
    """

    model_name: ClassVar[str] = "bayes_heterogeneity"

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
    import pymc as pm

    start_total = _time.perf_counter()
    design = prepare_heterogeneity(df, outcome, regressors, group, unit, time, focal,
                                   vary_controls, groups)
    parsed = HeterogeneityPriors.parse(priors)
    resolved, between, tau, record = _resolve(parsed, design)
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
    # log_prior holds the configurable priors (what power-scaling perturbs), not the
    # hierarchical offsets, unit effects or year effects.
    keep = ("intercept", "group_mean", "group_sd", "common_slope", "between", "sigma",
            "unit_sd", "year_sd")
    prior_vars = [v.name for v in model.free_RVs
                  if v.name in keep or v.name.startswith(tuple(f"{k}_" for k in keep))]
    if "log_prior" in idata.groups():
        del idata.log_prior
    pm.compute_log_prior(idata, model=model, var_names=prior_vars, progressbar=False,
                         compile_kwargs={"mode": "NUMBA"})
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

"""The Bayesian TWFE model as a PyMC graph, apart from sampling it.

The model and its parametrisations are described in :mod:`models.panel.bayes`. This module
holds what the fit (:mod:`models.panel.bayes`) and the compile cache (:mod:`models.panel.compiled`)
both build on: the likelihood and parametrisation names, the choice of which terms are
integrated out (``unit_effects_mode``), the data of the marginalised and collapsed models
(``marginal_model_data``) and the graph itself (``build_twfe_model``). Both callers depend on
it; it depends on neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.bayes.panel_priors import PanelPriors, vector_prior
from models.panel.collapsed import CollapsedStats, pack_stats
from models.panel.collapsed_op import collapsed_normal_logp_fused
from models.panel.design import PanelDesign
from models.panel.marginal import MODEL_FIELDS, SufficientStats
from models.panel.marginal_op import marginal_normal_logp_fused
from models.panel.negbin import add_negbin_likelihood

LIKELIHOODS = ("normal", "student_t", "negbin")
PARAMETRISATIONS = ("mundlak", "naive", "mundlak_raw")


_LIKELIHOOD_ALIASES = {
    "gaussian": "normal",
    "studentt": "student_t",
    "t": "student_t",
    "negative_binomial": "negbin",
    "negativebinomial": "negbin",
    "nb": "negbin",
}


def canonical_likelihood(likelihood: str) -> str:
    key = likelihood.strip().lower()
    key = _LIKELIHOOD_ALIASES.get(key, key)
    if key not in LIKELIHOODS:
        raise ValueError(f"Unknown likelihood {likelihood!r}; use one of {LIKELIHOODS}.")
    return key


def prior_roles(likelihood: str, parametrisation: str, has_time: bool) -> list[str]:
    roles = ["intercept", "slope", "unit_sd"]
    if parametrisation != "naive":
        roles.append("between")
    if has_time:
        roles.append("year_sd")
    if likelihood in ("normal", "student_t"):
        roles.append("sigma")
    if likelihood == "student_t":
        roles.append("nu")
    if likelihood == "negbin":
        roles.append("alpha")
    return roles


UNIT_EFFECT_MODES = ("auto", "collapsed", "marginalised", "sampled")


# Unbalanced panels (and cell effects such as province x year) leave the year coordinates
# coupled to the intercept and Mundlak terms; past this size the dense factorisation costs
# more per gradient than sampling those terms (zhao2025 Table 3 column 5, 360 province-year
# cells: 337 s collapsed), and ``auto`` takes the marginalised model instead.
MAX_COLLAPSED_DENSE_BLOCK = 32


def _linear_priors_normal(priors: PanelPriors | None, regressors: Sequence[str]) -> bool:
    if priors is None:
        return False
    return priors.intercept.family == "normal" and all(
        priors.term_prior("between", term).family == "normal" for term in regressors)


def unit_effects_mode(likelihood: str, parametrisation: str, unit_effects: str,
                       priors: PanelPriors | None = None,
                       design: PanelDesign | None = None) -> str:
    if unit_effects not in UNIT_EFFECT_MODES:
        raise ValueError(
            f"Unknown unit_effects {unit_effects!r}; use one of {UNIT_EFFECT_MODES}."
        )
    exact = likelihood == "normal" and parametrisation == "mundlak"
    regressors = () if design is None else design.regressors
    if unit_effects == "auto":
        if not exact:
            return "sampled"
        if design is None or not _linear_priors_normal(priors, regressors):
            return "marginalised"
        # A gradient of the collapsed density factors its dense block: O(size^3).
        small = collapsed_stats(design, priors).dense_size <= MAX_COLLAPSED_DENSE_BLOCK
        return "collapsed" if small else "marginalised"
    if unit_effects in ("collapsed", "marginalised") and not exact:
        raise ValueError(
            f"unit_effects={unit_effects!r} integrates terms out exactly, which needs the "
            "normal likelihood with the 'mundlak' parametrisation."
        )
    if unit_effects == "collapsed" and not _linear_priors_normal(priors, regressors):
        raise ValueError(
            "unit_effects='collapsed' needs normal priors on the intercept and on every "
            "Mundlak term ('between'); use 'marginalised' for other families."
        )
    return unit_effects


def collapsed_stats(design: PanelDesign, priors: PanelPriors) -> CollapsedStats:
    """The statistics of the collapsed model (:mod:`models.panel.collapsed`) for these priors."""
    return CollapsedStats.from_design(
        design, priors.intercept, [priors.term_prior("between", t) for t in design.regressors])


def _sampled_prior_parameters(design: PanelDesign, priors: PanelPriors
                              ) -> tuple[np.ndarray, dict[tuple[str, str], int | slice]]:
    """The prior parameters of the collapsed model's sampled variables as one vector, and
    where each (role, parameter) sits in it (a slice for the per-regressor slopes)."""
    values: list[float] = []
    index: dict[tuple[str, str], int | slice] = {}
    term_priors = [priors.term_prior("slope", term) for term in design.regressors]
    if len({p.family for p in term_priors}) != 1:
        raise ValueError("data containers need one prior family for every slope")
    for key, _ in term_priors[0].params:
        index[("slope", key)] = slice(len(values), len(values) + len(term_priors))
        values.extend(p.kwargs[key] for p in term_priors)
    for role in ["unit_sd", "sigma"] + (["year_sd"] if design.time_idx is not None else []):
        for key, value in getattr(priors, role).params:
            index[(role, key)] = len(values)
            values.append(value)
    return np.asarray(values, dtype=float), index


def marginal_model_data(design: PanelDesign, priors: PanelPriors,
                        mode: str = "marginalised") -> dict[str, np.ndarray]:
    """Every data-dependent number of the marginalised or collapsed model, by container name.

    Marginalised: ``stat_<field>`` are the sufficient statistics, ``<variable>__<parameter>``
    the resolved prior parameters (vectors for the per-regressor roles, which must share one
    family). Collapsed: ``collapsed_stats`` (:func:`models.panel.collapsed.pack_stats`, with
    the intercept and Mundlak priors) and ``prior_params``, the prior parameters of the
    sampled variables, each packed into one vector.
    """
    if mode == "collapsed":
        return {"collapsed_stats": pack_stats(collapsed_stats(design, priors)),
                "prior_params": _sampled_prior_parameters(design, priors)[0]}
    values: dict[str, np.ndarray] = {}
    stats = SufficientStats.from_design(design)
    for key in MODEL_FIELDS:
        value = getattr(stats, key)
        if value is not None:
            values[f"stat_{key}"] = np.asarray(value, dtype=float)
    roles = ["intercept", "unit_sd", "sigma"] + (["year_sd"] if design.time_idx is not None
                                                 else [])
    for role in roles:
        for key, value in getattr(priors, role).params:
            values[f"{role}__{key}"] = np.asarray(value, dtype=float)
    for role in ("slope", "between"):
        term_priors = [priors.term_prior(role, term) for term in design.regressors]
        if len({p.family for p in term_priors}) != 1:
            raise ValueError(f"data containers need one prior family for every {role}")
        for key, _ in term_priors[0].params:
            values[f"{role}__{key}"] = np.array([dict(p.params)[key] for p in term_priors])
    return values


def build_twfe_model(
    design: PanelDesign,
    priors: PanelPriors,
    likelihood: str = "normal",
    parametrisation: str = "mundlak",
    unit_effects: str = "auto",
    data_containers: bool = False,
    slope_builder=None,
    outcome_container: bool = False,
):
    """The PyMC model of :func:`fit_bayes_twfe` for a prepared design and resolved priors.

    ``slope_builder(design, priors)``, called inside the model, replaces the independent
    per-regressor slope priors: it must create the Deterministic ``slope`` (dims ``coef``)
    from variables of its own (the event-time path priors of :mod:`models.event_study`).

    eta_it = alpha + x~_it' beta + u_i + tau_t, u_i = (xbar_i - xbar)' lambda + unit_sd z_i
    (``mundlak``); y_it ~ Normal(eta, sigma), StudentT(nu, eta, sigma) or
    NegativeBinomial(exp(eta), alpha). See the module docstring for the other parametrisations.

    With ``unit_effects="marginalised"`` the z_i are integrated out exactly: for unit i with
    T_i rows and residual r_i = y_i - alpha - X~_i beta - tau - (xbar_i - xbar)' lambda,
    y_i ~ N(., sigma^2 I + unit_sd^2 11'), whose log density splits into the within-unit sum
    of squares of r_i (scale sigma^2) and its unit mean (scale sigma^2 / T_i + unit_sd^2). The
    within part is written with sufficient statistics, so one gradient costs
    O(k^2 + N k + T^2) instead of O(n k).

    With ``unit_effects="collapsed"`` (the default for the normal likelihood when the
    intercept and Mundlak priors are normal) alpha, lambda and tau are integrated out as well
    (:mod:`models.panel.collapsed`): the model's free variables are beta, sigma, unit_sd and
    year_sd, and the other terms are drawn exactly after sampling.

    ``data_containers=True`` (marginalised and collapsed modes) holds every number that
    depends on the data (sufficient statistics and prior parameters) in ``pm.Data``
    containers named as in :func:`marginal_model_data`, so one compiled model serves every
    design of the same shape. With a ``slope_builder`` (collapsed mode only) the builder's own
    prior parameters stay constants of the graph.

    ``outcome_container=True`` (sampled mode) holds the observed outcome in the ``pm.Data``
    container ``<outcome>_observed``, so one compiled model serves new outcomes on the same
    regressors and priors; the negative binomial also holds the distinct counts and their
    frequencies (``<outcome>_values``, ``<outcome>_counts``: set all three with
    :func:`models.panel.negbin.negbin_data`).

    The negative binomial enters as the Potential ``<outcome>_likelihood``, the same density
    summed over rows with its special functions evaluated once per distinct count
    (:mod:`models.panel.negbin`), not as an observed variable.
    """
    import pymc as pm

    likelihood = canonical_likelihood(likelihood)
    if parametrisation not in PARAMETRISATIONS:
        raise ValueError(
            f"Unknown parametrisation {parametrisation!r}; use one of {PARAMETRISATIONS}."
        )
    mode = unit_effects_mode(likelihood, parametrisation, unit_effects, priors, design)
    coords: dict[str, Any] = {
        "coef": list(design.regressors),
        "unit": list(design.unit_labels),
        "obs": np.arange(design.n_obs),
    }
    if design.time_idx is not None:
        coords["year"] = list(design.time_labels)
    x = design.x_within if parametrisation == "mundlak" else design.x_raw - design.x_mean
    if data_containers and slope_builder is not None and mode != "collapsed":
        raise ValueError("a slope builder has a data-container form in the collapsed model "
                         "only")
    if data_containers and mode not in ("collapsed", "marginalised"):
        raise ValueError("data containers are implemented for the marginalised and collapsed "
                         "models only")
    values = marginal_model_data(design, priors, mode) if data_containers else None
    packed: dict[str, Any] = {}

    def const(name: str, value):
        return pm.Data(name, value) if values is not None else value

    def parameter(role: str, key: str, value):
        if values is None:
            return value
        if mode != "collapsed":
            return pm.Data(f"{role}__{key}", value)
        if not packed:
            packed["container"] = pm.Data("prior_params", values["prior_params"])
            packed["index"] = _sampled_prior_parameters(design, priors)[1]
        return packed["container"][packed["index"][(role, key)]]

    def prior(role: str, name: str, **kwargs):
        spec = getattr(priors, role)
        params = {key: parameter(role, key, value) for key, value in spec.params}
        return spec.to_pymc(name, **params, **kwargs)

    def vector(role: str, name: str):
        if role == "slope" and slope_builder is not None:
            return slope_builder(design, priors)
        if values is None:
            return vector_prior(priors, role, design.regressors, name, "coef")
        term_priors = [priors.term_prior(role, term) for term in design.regressors]
        params = {key: parameter(role, key, np.array([dict(p.params)[key] for p in term_priors]))
                  for key, _ in term_priors[0].params}
        return term_priors[0].to_pymc(name, dims="coef", **params)

    with pm.Model(coords=coords) as model:
        if mode == "collapsed":
            slope = vector("slope", "slope")
            unit_sd = prior("unit_sd", "unit_sd")
            sigma = prior("sigma", "sigma")
            year_sd = prior("year_sd", "year_sd") if design.time_idx is not None else None
            stats = (pack_stats(collapsed_stats(design, priors)) if values is None
                     else pm.Data("collapsed_stats", values["collapsed_stats"]))
            pm.Potential(f"{design.outcome}_marginal",
                         collapsed_normal_logp_fused(stats, slope, sigma, unit_sd, year_sd))
            return model
        intercept = prior("intercept", "intercept")
        slope = vector("slope", "slope")
        unit_sd = prior("unit_sd", "unit_sd")
        between = None if parametrisation == "naive" else vector("between", "between")
        year_effect = None
        if design.time_idx is not None:
            year_sd = prior("year_sd", "year_sd")
            year_effect = pm.ZeroSumNormal("year_effect", sigma=year_sd, dims="year")
        if mode == "marginalised":
            sigma = prior("sigma", "sigma")
            stats = SufficientStats.from_design(design)
            if values is not None:
                stats = SufficientStats(**{
                    key: const(f"stat_{key}", values[f"stat_{key}"])
                    if key in MODEL_FIELDS and getattr(stats, key) is not None
                    else getattr(stats, key) for key in SufficientStats.__dataclass_fields__})
            pm.Potential(
                f"{design.outcome}_marginal",
                marginal_normal_logp_fused(stats, intercept, slope, between, year_effect,
                                           sigma, unit_sd),
            )
            return model
        unit_mean = 0.0 if between is None else pm.math.dot(design.unit_means, between)
        if parametrisation == "mundlak":
            unit_offset = pm.Normal("unit_offset", 0.0, 1.0, dims="unit")
            unit_effect = pm.Deterministic(
                "unit_effect", unit_mean + unit_sd * unit_offset, dims="unit"
            )
        else:
            unit_effect = pm.Normal("unit_effect", unit_mean, unit_sd, dims="unit")
        eta = intercept + pm.math.dot(x, slope) + unit_effect[design.unit_idx]
        if year_effect is not None:
            eta = eta + year_effect[design.time_idx]
        if likelihood == "negbin":
            # One summed density over distinct counts, not an observed RV: see
            # models.panel.negbin for the measured cost.
            alpha = priors.alpha.to_pymc("alpha")
            add_negbin_likelihood(design.outcome, eta, alpha, design.y, outcome_container)
            return model
        observed = (pm.Data(f"{design.outcome}_observed", design.y) if outcome_container
                    else design.y)
        if likelihood == "normal":
            sigma = priors.sigma.to_pymc("sigma")
            pm.Normal(design.outcome, eta, sigma, observed=observed, dims="obs")
        else:
            sigma = priors.sigma.to_pymc("sigma")
            nu = priors.nu.to_pymc("nu")
            pm.StudentT(design.outcome, nu=nu, mu=eta, sigma=sigma, observed=observed, dims="obs")
    return model

"""Priors of the Bayesian mediation model: roles, parsing and data-scaled defaults.

Roles (``ROLE=DIST`` strings, a mapping or a priors file; roles of other model families are
ignored):

* ``slope`` / ``slope.<name>``: outcome equation, i.e. the direct effect (``slope.<treatment>``),
  the b paths (``slope.<mediator>``) and the controls' slopes;
* ``mediator_slope`` / ``mediator_slope.<name>``: mediator equations, i.e. the a paths
  (``mediator_slope.<treatment>``) and the controls' slopes, the same prior in every mediator
  equation;
* ``sigma`` (outcome residual sd), ``mediator_sigma`` (each mediator's residual sd);
* ``mediator_corr = lkj(eta)``: correlation of the mediators' residuals (two mediators);
* ``confounding_rho``: the mediator-outcome error correlation rho of Imai, Keele & Yamamoto
  (2010), unset by default (rho = 0, sequential ignorability). ``lkj(eta)`` ((rho + 1) / 2 ~
  Beta(eta, eta)), ``normal(mu, sigma)`` (truncated to (-1, 1)) or ``uniform(lower, upper)``
  within [-1, 1] make rho a parameter with that prior (:mod:`models.mediation.model`).

Defaults follow the data-scaled rule of :mod:`models.bayes.panel_priors` on the within scale:
a coefficient of regressor v in the equation of variable e is N(0, 2.5 s_e / s_w(v)) (s_e the
sd of e, s_w(v) the within sd of v), a residual sd is halfnormal(s_e); ``mediator_corr`` is
lkj(2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from models.bayes.panel_priors import DEFAULT_SCALE_MULTIPLIER, PanelPriors
from models.bayes.priors import (
    Prior,
    PriorSpecError,
    parse_lkj,
    prior_from_value,
    prior_items,
)
from models.mediation.design import MediationDesign

MEDIATION_ROLES = ("slope", "mediator_slope", "sigma", "mediator_sigma", "mediator_corr",
                   "confounding_rho")
_DEFAULT_CORR_ETA = 2.0


@dataclass(frozen=True)
class ConfoundingPrior:
    """The prior of rho: ``kind`` is ``lkj`` (params (eta,)), ``normal`` ((mu, sigma),
    truncated to (-1, 1)) or ``uniform`` ((lower, upper))."""

    kind: str
    params: tuple[float, ...]

    def __str__(self) -> str:
        text = ", ".join(f"{v:g}" for v in self.params)
        suffix = " truncated to (-1, 1)" if self.kind == "normal" else ""
        return f"{self.kind}({text}){suffix}"


def parse_confounding(value: Any) -> ConfoundingPrior:
    """``lkj(eta)``, ``normal(mu, sigma)`` or ``uniform(lower, upper)`` with
    -1 <= lower < upper <= 1."""
    text = str(value)
    if text.strip().lower().startswith("lkj"):
        return ConfoundingPrior("lkj", (parse_lkj(text, "confounding_rho"),))
    prior = prior_from_value(value, "prior 'confounding_rho'")
    params = tuple(v for _, v in prior.params)
    if prior.family == "normal":
        return ConfoundingPrior("normal", params)
    if prior.family == "uniform" and -1.0 <= params[0] < params[1] <= 1.0:
        return ConfoundingPrior("uniform", params)
    raise PriorSpecError(f"Prior confounding_rho = {value!r}: rho is a correlation; use "
                         "lkj(eta), normal(mu, sigma) (truncated to (-1, 1)) or "
                         "uniform(lower, upper) with -1 <= lower < upper <= 1.")


@dataclass(frozen=True)
class MediationPriors:
    """User priors of the mediation model; unset entries take the data-scaled defaults."""

    slope: Prior | None = None
    slope_terms: tuple[tuple[str, Prior], ...] = ()
    mediator_slope: Prior | None = None
    mediator_slope_terms: tuple[tuple[str, Prior], ...] = ()
    sigma: Prior | None = None
    mediator_sigma: Prior | None = None
    corr_eta: float | None = None
    confounding: ConfoundingPrior | None = None

    @classmethod
    def parse(cls, priors: Any) -> MediationPriors:
        """From None, :class:`PanelPriors` (its ``slope`` and ``sigma``), a mapping or
        ``ROLE=DIST`` strings (roles :data:`MEDIATION_ROLES`; other roles are ignored)."""
        if isinstance(priors, MediationPriors):
            return priors
        if priors is None:
            return cls()
        if isinstance(priors, PanelPriors):
            return cls(slope=priors.slope, slope_terms=priors.slope_terms, sigma=priors.sigma)
        items = prior_items(priors)
        fields: dict[str, Any] = {}
        terms: dict[str, dict[str, Prior]] = {"slope": {}, "mediator_slope": {}}
        for key, value in items:
            role, _, term = key.partition(".")
            if role not in MEDIATION_ROLES:
                continue
            if role in ("mediator_corr", "confounding_rho") and term:
                raise PriorSpecError(f"Prior {role!r} cannot be set per term ({key!r}).")
            if role == "mediator_corr":
                fields["corr_eta"] = parse_lkj(value, "mediator_corr")
                continue
            if role == "confounding_rho":
                fields["confounding"] = parse_confounding(value)
                continue
            prior = value if isinstance(value, Prior) else prior_from_value(value, f"prior {key!r}")
            if role in ("sigma", "mediator_sigma") and prior.support != "positive":
                raise PriorSpecError(f"Prior {key} = {prior} must be on the positive half-line.")
            if term and role in terms:
                terms[role][term] = prior
            elif term:
                raise PriorSpecError(f"Prior {role!r} cannot be set per term ({key!r}).")
            else:
                fields[role] = prior
        return cls(slope_terms=tuple(terms["slope"].items()),
                   mediator_slope_terms=tuple(terms["mediator_slope"].items()), **fields)


def resolve_priors(priors: MediationPriors, design: MediationDesign
                   ) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """Every prior of the model (data-scaled defaults where unset) and their record.

    Keys: ``a``, ``b``, ``sigma_mediator`` (one prior per mediator), ``delta`` (per mediator,
    one per control), ``direct``, ``gamma`` (per control), ``sigma_outcome``, ``corr_eta``,
    ``confounding`` (None: rho fixed at 0).
    """
    m = DEFAULT_SCALE_MULTIPLIER

    def scale(name: str) -> float:
        value = design.raw_sd[name]
        return value if np.isfinite(value) and value > 0 else 1.0

    record: dict[str, dict[str, str]] = {}
    slope_terms, mediator_terms = dict(priors.slope_terms), dict(priors.mediator_slope_terms)
    unknown = [t for t in slope_terms
               if t not in (design.treatment, *design.mediators, *design.controls)]
    unknown += [t for t in mediator_terms if t not in (design.treatment, *design.controls)]
    if unknown:
        raise PriorSpecError(f"Prior(s) for {unknown} name variables not in the mediation "
                             "model (slope.<treatment|mediator|control>, "
                             "mediator_slope.<treatment|control>).")

    def pick(label: str, term: str, explicit: dict, role_prior: Prior | None,
             equation: str) -> Prior:
        if term in explicit:
            prior, source = explicit[term], "user"
        elif role_prior is not None:
            prior, source = role_prior, "user"
        else:
            within = design.within_sd[term]
            prior = Prior.of("normal", 0.0, m * scale(equation) / (within if within > 0 else 1.0))
            source = "default"
        record[label] = {"prior": str(prior), "source": source}
        return prior

    x, y = design.treatment, design.outcome
    resolved: dict[str, Any] = {
        "a": [pick(f"a.{k}", x, mediator_terms, priors.mediator_slope, k)
              for k in design.mediators],
        "delta": [[pick(f"mediator_slope.{k}.{c}", c, mediator_terms, priors.mediator_slope, k)
                   for c in design.controls] for k in design.mediators],
        "b": [pick(f"b.{k}", k, slope_terms, priors.slope, y) for k in design.mediators],
        "direct": pick("direct", x, slope_terms, priors.slope, y),
        "gamma": [pick(f"slope.{c}", c, slope_terms, priors.slope, y) for c in design.controls],
    }
    resolved["sigma_outcome"] = priors.sigma or Prior.of("halfnormal", scale(y))
    record["sigma"] = {"prior": str(resolved["sigma_outcome"]),
                       "source": "user" if priors.sigma is not None else "default"}
    resolved["sigma_mediator"] = []
    for k in design.mediators:
        prior = priors.mediator_sigma or Prior.of("halfnormal", scale(k))
        resolved["sigma_mediator"].append(prior)
        record[f"mediator_sigma.{k}"] = {
            "prior": str(prior), "source": "user" if priors.mediator_sigma else "default"}
    eta = priors.corr_eta if priors.corr_eta is not None else _DEFAULT_CORR_ETA
    resolved["corr_eta"] = eta
    if len(design.mediators) > 1:
        record["mediator_corr"] = {
            "prior": f"lkj({eta:g}): (r + 1) / 2 ~ beta({eta:g}, {eta:g})",
            "source": "user" if priors.corr_eta is not None else "default"}
    resolved["confounding"] = priors.confounding
    record["confounding_rho"] = (
        {"prior": str(priors.confounding), "source": "user"} if priors.confounding is not None
        else {"prior": "fixed at 0 (sequential ignorability)", "source": "default"})
    return resolved, record

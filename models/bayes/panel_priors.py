"""The priors of the Bayesian panel models, one per role, and their data-scaled defaults.

Each prior is written in the grammar of :mod:`models.bayes.priors`. A :class:`PanelPriors`
holds one prior per model role (the TWFE model's, which the threshold and partial-pooling
models share):

============  ===============================================================================
role          parameter
============  ===============================================================================
intercept     alpha, the grand mean of the linear predictor
slope         beta_j, the within (TWFE) slope of regressor j (``slope.AI`` for one regressor)
between       lambda_j, the Mundlak coefficient on the unit mean of regressor j
sigma         residual scale (normal and Student-t likelihoods)
unit_sd       sd of the unit effects around their Mundlak mean
year_sd       sd of the (sum-to-zero) year effects
nu            degrees of freedom of the Student-t likelihood
alpha         dispersion of the negative binomial, Var(y) = mu + mu^2 / alpha
============  ===============================================================================

Default rule (weakly informative on the data's scale)
-----------------------------------------------------
Roles a user leaves unset are filled by :meth:`PanelPriors.resolve` from the data, following the
autoscaling rule of rstanarm (Gabry & Goodrich): location 0 and scale 2.5 data units.
With ``s_y = sd(y)``, ``s_w(x_j)`` the sd of the two-way demeaned regressor (the variation that
identifies the slope) and ``s_b(x_j)`` the sd of the unit means of x_j:

- identity link (normal, Student-t):
  ``intercept ~ normal(mean(y), 2.5 s_y)``, ``slope_j ~ normal(0, 2.5 s_y / s_w(x_j))``,
  ``between_j ~ normal(0, 2.5 s_y / s_b(x_j))``, ``sigma, unit_sd, year_sd ~ halfnormal(s_y)``,
  ``nu ~ gamma(2, 0.1)`` (Juarez & Steel 2010).
- log link (negative binomial): the same with ``s_y`` replaced by 1 (log points) and the
  intercept centred at ``log(mean(y))``; ``alpha ~ exponential(0.1)``.

A one-sd move of a regressor then moves the outcome by at most a few sd a priori, which leaves
the within estimate untouched on any panel of the size studied here while ruling out absurd
values. Overrides come from a dict, a TOML file (:func:`load_priors_toml`) or command-line
strings (:func:`parse_prior_override`); :meth:`PanelPriors.describe` records every prior used
and where it came from, to be stored with the posterior.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from models.bayes.priors import (
    Prior,
    PriorSpecError,
    is_prior_table,
    parse_prior,
    prior_from_value,
    read_prior_table,
)

ROLES: tuple[str, ...] = (
    "intercept",
    "slope",
    "between",
    "sigma",
    "unit_sd",
    "year_sd",
    "nu",
    "alpha",
)
# Roles that take one prior per regressor, addressable as "slope.AI".
PER_TERM_ROLES: tuple[str, ...] = ("slope", "between")

DEFAULT_SCALE_MULTIPLIER = 2.5


_ROLE_SUPPORT = {
    "intercept": "real",
    "slope": "real",
    "between": "real",
    "sigma": "positive",
    "unit_sd": "positive",
    "year_sd": "positive",
    "nu": "positive",
    "alpha": "positive",
}


_OVERRIDE_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.([^=\s]+))?\s*=\s*(.+?)\s*$")


def _check_role(role: str, term: str | None, prior: Prior) -> None:
    if role not in ROLES:
        raise PriorSpecError(f"Unknown prior name {role!r}; known names: {', '.join(ROLES)}.")
    if term is not None and role not in PER_TERM_ROLES:
        raise PriorSpecError(
            f"Prior {role!r} cannot be set per regressor ('{role}.{term}'); only "
            f"{', '.join(PER_TERM_ROLES)} can."
        )
    if _ROLE_SUPPORT[role] == "positive" and prior.support != "positive":
        raise PriorSpecError(
            f"Prior {role} = {prior} puts mass on negative values, but {role} must be "
            "positive; use e.g. halfnormal, exponential, gamma or lognormal."
        )


def parse_prior_override(text: str) -> tuple[str, str | None, Prior]:
    """Parse a command-line override such as ``slope=normal(0,1)`` or ``slope.AI=normal(0,.5)``.

    Returns
    -------
    role, term, prior
        ``term`` is the regressor name for a per-regressor override, otherwise None.

    Raises
    ------
    PriorSpecError
        With the offending text and the expected form.
    """
    match = _OVERRIDE_RE.match(text)
    if match is None:
        raise PriorSpecError(
            f"Cannot parse prior override {text!r}: expected name=family(parameters), e.g. "
            "'slope=normal(0, 1)' or 'slope.AI=normal(0, 0.5)'."
        )
    role, term, spec = match.group(1), match.group(2), match.group(3)
    try:
        prior = parse_prior(spec)
    except PriorSpecError as error:
        raise PriorSpecError(f"In prior override {text!r}: {error}") from None
    _check_role(role, term, prior)
    return role, term, prior


@dataclass(frozen=True)
class PanelPriors:
    """The priors of a panel model, one per role; None means "data-scaled default".

    ``slope_terms`` / ``between_terms`` hold per-regressor priors that take precedence over the
    role-wide ``slope`` / ``between``. Build with :meth:`from_mapping`, :func:`load_priors_toml`
    or :meth:`with_overrides`; fill the defaults with :meth:`resolve`.
    """

    intercept: Prior | None = None
    slope: Prior | None = None
    between: Prior | None = None
    sigma: Prior | None = None
    unit_sd: Prior | None = None
    year_sd: Prior | None = None
    nu: Prior | None = None
    alpha: Prior | None = None
    slope_terms: tuple[tuple[str, Prior], ...] = ()
    between_terms: tuple[tuple[str, Prior], ...] = ()
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @classmethod
    def coerce(cls, priors: PanelPriors | Mapping[str, Any] | Sequence[str] | None
               ) -> PanelPriors:
        """What a fit function accepts as priors: an object, a mapping (:meth:`from_mapping`),
        ``role=family(...)`` strings (as from the command line), or None for the defaults."""
        if priors is None:
            return cls()
        if isinstance(priors, cls):
            return priors
        if isinstance(priors, Mapping):
            return cls.from_mapping(priors)
        return cls().with_overrides(list(priors), source="cli")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], source: str = "user") -> PanelPriors:
        """Build from ``{"slope": "normal(0, 1)", "slope.AI": ..., "sigma": {...}}``.

        Keys are roles, ``role.term`` for one regressor, or a role mapped to a table of
        per-regressor priors (``{"slope": {"AI": "normal(0, 1)"}}``, as TOML dotted keys give).
        A top-level ``priors`` table is unwrapped.
        """
        if "priors" in mapping and isinstance(mapping["priors"], Mapping) and len(mapping) == 1:
            mapping = mapping["priors"]
        return cls().with_overrides(mapping, source=source)

    def with_overrides(
        self, overrides: Mapping[str, Any] | Sequence[str], source: str = "user"
    ) -> PanelPriors:
        """Return a copy with priors replaced.

        Parameters
        ----------
        overrides : mapping or sequence of str
            A mapping as in :meth:`from_mapping`, or command-line strings
            ``["slope=normal(0,1)", "sigma=exponential(1)"]``.
        source : str
            Recorded in :meth:`describe` for each prior set here ("user", a file path, "cli").
        """
        items: list[tuple[str, str | None, Prior]] = []
        if isinstance(overrides, Mapping):
            for key, value in overrides.items():
                role, _, term = str(key).partition(".")
                if (
                    role in PER_TERM_ROLES
                    and not term
                    and isinstance(value, Mapping)
                    and not (is_prior_table(value))
                ):
                    for term_name, term_value in value.items():
                        where = f"prior '{role}.{term_name}'"
                        prior = prior_from_value(term_value, where)
                        _check_role(role, str(term_name), prior)
                        items.append((role, str(term_name), prior))
                    continue
                prior = prior_from_value(value, f"prior {key!r}")
                _check_role(role, term or None, prior)
                items.append((role, term or None, prior))
        else:
            if isinstance(overrides, str):
                overrides = [overrides]
            items = [parse_prior_override(text) for text in overrides]
        updated = self
        sources = dict(self.sources)
        for role, term, prior in items:
            if term is None:
                updated = replace(updated, **{role: prior})
                sources[role] = source
            else:
                attr = f"{role}_terms"
                terms = dict(getattr(updated, attr))
                terms[term] = prior
                updated = replace(updated, **{attr: tuple(terms.items())})
                sources[f"{role}.{term}"] = source
        return replace(updated, sources=tuple(sources.items()))

    def resolve(self, scales: DataScales) -> PanelPriors:
        """Fill every unset role with the data-scaled default (see the module docstring)."""
        defaults = default_priors(scales)
        sources = dict(self.sources)
        filled: dict[str, Prior] = {}
        for role in ROLES:
            current = getattr(self, role)
            if current is None:
                filled[role] = defaults[role]
                sources.setdefault(role, "default")
        unknown = [
            f"{role}.{term}"
            for role in PER_TERM_ROLES
            for term, _ in getattr(self, f"{role}_terms")
            if term not in scales.regressors
        ]
        if unknown:
            raise PriorSpecError(
                f"Prior(s) {', '.join(unknown)} name regressors not in the model "
                f"({', '.join(scales.regressors)})."
            )
        resolved = replace(self, **filled, sources=tuple(sources.items()))
        per_term = {role: dict(getattr(resolved, f"{role}_terms")) for role in PER_TERM_ROLES}
        # A role-wide default is scaled per regressor, so store it per term explicitly.
        for role in PER_TERM_ROLES:
            for term in scales.regressors:
                if term in per_term[role]:
                    continue
                if sources.get(role) == "default":
                    per_term[role][term] = defaults[f"{role}.{term}"]
                    sources.setdefault(f"{role}.{term}", "default")
                else:
                    per_term[role][term] = getattr(resolved, role)
        return replace(
            resolved,
            slope_terms=tuple((t, per_term["slope"][t]) for t in scales.regressors),
            between_terms=tuple((t, per_term["between"][t]) for t in scales.regressors),
            sources=tuple(sources.items()),
        )

    def term_prior(self, role: str, term: str) -> Prior:
        """The prior of ``role`` for regressor ``term`` (per-term entry, else the role's)."""
        terms = dict(getattr(self, f"{role}_terms"))
        prior = terms.get(term, getattr(self, role))
        if prior is None:
            raise PriorSpecError(f"Prior {role}.{term} is unset; call resolve() first.")
        return prior

    def describe(self, roles: Sequence[str] | None = None) -> dict[str, dict[str, str]]:
        """A record of the priors: ``{name: {"prior": "normal(0, 1)", "source": ...}}``.

        Parameters
        ----------
        roles : sequence of str, optional
            Only these roles (and their per-term entries); all set roles by default.
        """
        sources = dict(self.sources)
        keep = set(roles) if roles is not None else set(ROLES)
        record: dict[str, dict[str, str]] = {}
        for role in ROLES:
            if role not in keep:
                continue
            if role in PER_TERM_ROLES and getattr(self, f"{role}_terms"):
                for term, prior in getattr(self, f"{role}_terms"):
                    key = f"{role}.{term}"
                    source = sources.get(key, sources.get(role, "default"))
                    record[key] = {"prior": str(prior), "source": source}
                continue
            prior = getattr(self, role)
            if prior is not None:
                record[role] = {"prior": str(prior), "source": sources.get(role, "default")}
        return record


def load_priors_toml(path: str | Path, base: PanelPriors | None = None) -> PanelPriors:
    """Read priors from a TOML file.

    Either top-level keys or a ``[priors]`` table::

        [priors]
        slope = "normal(0, 1)"
        sigma = { family = "halfnormal", sigma = 2 }
        slope.AI = "normal(0, 0.5)"   # one regressor

    Raises
    ------
    PriorSpecError
        If the file is not valid TOML or a prior in it is invalid (the message names the key).
    """
    path = Path(path)
    table = read_prior_table(path)
    base = base if base is not None else PanelPriors()
    try:
        return base.with_overrides(table, source=str(path))
    except PriorSpecError as error:
        raise PriorSpecError(f"Prior file {path}: {error}") from None


@dataclass(frozen=True)
class DataScales:
    """Data summaries that set the default prior scales.

    Attributes
    ----------
    regressors : tuple of str
    y_mean, y_sd : float
        Mean and sd of the outcome.
    within_sd : tuple of float
        sd of each regressor after removing unit (and year) means.
    between_sd : tuple of float
        sd across units of each regressor's unit mean.
    link : str
        ``"identity"`` or ``"log"``.
    """

    regressors: tuple[str, ...]
    y_mean: float
    y_sd: float
    within_sd: tuple[float, ...]
    between_sd: tuple[float, ...]
    link: str = "identity"


def _safe_scale(value: float) -> float:
    # A regressor without between variation (or a constant outcome) has no natural scale.
    return float(value) if np.isfinite(value) and value > 0 else 1.0


def default_priors(scales: DataScales) -> dict[str, Prior]:
    """Data-scaled defaults by the rule of the module docstring, keyed by role / role.term."""
    m = DEFAULT_SCALE_MULTIPLIER
    if scales.link == "log":
        outcome_scale = 1.0
        centre = math.log(max(scales.y_mean, 1e-3))
    elif scales.link == "identity":
        outcome_scale = _safe_scale(scales.y_sd)
        centre = scales.y_mean
    else:
        raise PriorSpecError(f"Unknown link {scales.link!r}; use 'identity' or 'log'.")
    defaults: dict[str, Prior] = {
        "intercept": Prior.of("normal", centre, m * outcome_scale),
        "slope": Prior.of("normal", 0.0, m * outcome_scale),
        "between": Prior.of("normal", 0.0, m * outcome_scale),
        "sigma": Prior.of("halfnormal", outcome_scale),
        "unit_sd": Prior.of("halfnormal", outcome_scale),
        "year_sd": Prior.of("halfnormal", outcome_scale),
        "nu": Prior.of("gamma", 2.0, 0.1),
        "alpha": Prior.of("exponential", 0.1),
    }
    for term, w_sd, b_sd in zip(
        scales.regressors, scales.within_sd, scales.between_sd, strict=True
    ):
        defaults[f"slope.{term}"] = Prior.of("normal", 0.0, m * outcome_scale / _safe_scale(w_sd))
        defaults[f"between.{term}"] = Prior.of("normal", 0.0, m * outcome_scale / _safe_scale(b_sd))
    return defaults


def vector_prior(priors: PanelPriors, role: str, terms: Sequence[str], name: str, dims: str):
    """Create one PyMC vector variable for a per-regressor role.

    When all regressors share a family, a single vector variable ``name`` with per-term
    parameters is created (one block for the sampler); otherwise one scalar variable per
    regressor (``name_<term>``) is stacked into a Deterministic ``name``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    term_priors = [priors.term_prior(role, term) for term in terms]
    families = {prior.family for prior in term_priors}
    if len(families) == 1:
        first = term_priors[0]
        params = {
            key: np.array([dict(prior.params)[key] for prior in term_priors])
            for key, _ in first.params
        }
        return first.to_pymc(name, dims=dims, **params)
    parts = [
        prior.to_pymc(f"{name}_{term}") for prior, term in zip(term_priors, terms, strict=True)
    ]
    return pm.Deterministic(name, pt.stack(parts), dims=dims)

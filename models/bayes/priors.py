"""The prior grammar: a prior is a named distribution family with numeric parameters, written
the way a user types it on the command line (``normal(0, 1)``, ``halfnormal(2.5)``,
``gamma(2, 0.1)``) or as a TOML table (``{ family = "normal", mu = 0, sigma = 1 }``).

:class:`Prior` checks the family, the number and names of the parameters and their support,
and becomes a PyMC distribution with :meth:`Prior.to_pymc`. Which prior plays which role in
a model (slope, sigma, group sd, ...) is the business of the model's own prior set, such as
:class:`models.bayes.panel_priors.PanelPriors`.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class PriorSpecError(ValueError):
    """A prior specification cannot be parsed or breaks a rule (family, arity, support)."""


@dataclass(frozen=True)
class _Family:
    pymc_name: str
    params: tuple[str, ...]
    positive: tuple[str, ...]
    support: str  # "real" or "positive"


FAMILIES: dict[str, _Family] = {
    "normal": _Family("Normal", ("mu", "sigma"), ("sigma",), "real"),
    "studentt": _Family("StudentT", ("nu", "mu", "sigma"), ("nu", "sigma"), "real"),
    "cauchy": _Family("Cauchy", ("alpha", "beta"), ("beta",), "real"),
    "uniform": _Family("Uniform", ("lower", "upper"), (), "real"),
    "flat": _Family("Flat", (), (), "real"),
    "halfnormal": _Family("HalfNormal", ("sigma",), ("sigma",), "positive"),
    "halfstudentt": _Family("HalfStudentT", ("nu", "sigma"), ("nu", "sigma"), "positive"),
    "halfcauchy": _Family("HalfCauchy", ("beta",), ("beta",), "positive"),
    "exponential": _Family("Exponential", ("lam",), ("lam",), "positive"),
    "gamma": _Family("Gamma", ("alpha", "beta"), ("alpha", "beta"), "positive"),
    "inversegamma": _Family("InverseGamma", ("alpha", "beta"), ("alpha", "beta"), "positive"),
    "lognormal": _Family("LogNormal", ("mu", "sigma"), ("sigma",), "positive"),
    "halfflat": _Family("HalfFlat", (), (), "positive"),
}


_ALIASES = {
    "student_t": "studentt",
    "t": "studentt",
    "half_normal": "halfnormal",
    "half_studentt": "halfstudentt",
    "half_student_t": "halfstudentt",
    "half_cauchy": "halfcauchy",
    "inverse_gamma": "inversegamma",
    "invgamma": "inversegamma",
    "log_normal": "lognormal",
    "half_flat": "halfflat",
}


def _canonical_family(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in FAMILIES:
        raise PriorSpecError(
            f"Unknown prior family {name!r}; known families: {', '.join(sorted(FAMILIES))}."
        )
    return key


@dataclass(frozen=True)
class Prior:
    """One prior distribution: a family name and its parameters in PyMC's parametrisation.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES` (``normal``, ``halfnormal``, ``studentt``, ``exponential`` ...).
    params : tuple of (str, float)
        Parameter name and value pairs in the order of the family's signature.
    """

    family: str
    params: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        family = _canonical_family(self.family)
        object.__setattr__(self, "family", family)
        spec = FAMILIES[family]
        names = tuple(name for name, _ in self.params)
        if names != spec.params:
            raise PriorSpecError(
                f"Prior {family} takes parameters ({', '.join(spec.params)}); got "
                f"({', '.join(names)})."
            )
        for name, value in self.params:
            if not math.isfinite(value):
                raise PriorSpecError(f"Prior {family}: parameter {name}={value} is not finite.")
            if name in spec.positive and value <= 0:
                raise PriorSpecError(
                    f"Prior {family}: parameter {name} must be > 0, got {value:g}."
                )
        if family == "uniform" and self.params[0][1] >= self.params[1][1]:
            raise PriorSpecError("Prior uniform: lower must be smaller than upper.")

    @classmethod
    def of(cls, family: str, *args: float, **kwargs: float) -> Prior:
        """Build a prior from positional and/or keyword parameters, e.g. ``of("normal", 0, 1)``."""
        key = _canonical_family(family)
        spec = FAMILIES[key]
        if len(args) > len(spec.params):
            raise PriorSpecError(
                f"Prior {key} takes {len(spec.params)} parameter(s) "
                f"({', '.join(spec.params)}); got {len(args)}."
            )
        values: dict[str, float] = dict(zip(spec.params, (float(a) for a in args), strict=False))
        for name, value in kwargs.items():
            if name not in spec.params:
                raise PriorSpecError(
                    f"Prior {key} has no parameter {name!r}; its parameters are "
                    f"({', '.join(spec.params)})."
                )
            if name in values:
                raise PriorSpecError(f"Prior {key}: parameter {name!r} given twice.")
            values[name] = float(value)
        missing = [name for name in spec.params if name not in values]
        if missing:
            raise PriorSpecError(
                f"Prior {key} needs parameter(s) {', '.join(missing)} "
                f"(signature {key}({', '.join(spec.params)}))."
            )
        return cls(key, tuple((name, values[name]) for name in spec.params))

    @property
    def support(self) -> str:
        """``"real"`` or ``"positive"``."""
        return FAMILIES[self.family].support

    @property
    def kwargs(self) -> dict[str, float]:
        """Parameters as keyword arguments for the PyMC distribution."""
        return dict(self.params)

    def __str__(self) -> str:
        return f"{self.family}({', '.join(f'{value:.6g}' for _, value in self.params)})"

    def to_pymc(self, name: str, **dist_kwargs: Any):
        """Create the PyMC random variable ``name`` inside the current model context.

        Parameters
        ----------
        name : str
            Variable name in the model.
        **dist_kwargs
            Passed to the distribution (``dims``, ``shape``). Parameter values may be
            overridden here with arrays, e.g. ``sigma=np.array([...])`` for a vector prior.
        """
        import pymc as pm

        dist = getattr(pm, FAMILIES[self.family].pymc_name)
        kwargs = {**self.kwargs, **dist_kwargs}
        return dist(name, **kwargs)


_SPEC_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$")


def parse_prior(text: str) -> Prior:
    """Parse a distribution written as ``family(p1, p2, ...)``.

    Keyword parameters are accepted too: ``normal(mu=0, sigma=2)``.

    Raises
    ------
    PriorSpecError
        If the text is not of that form, the family is unknown, or a parameter is missing,
        not a number, or outside its support.
    """
    match = _SPEC_RE.match(text)
    if match is None:
        raise PriorSpecError(
            f"Cannot parse prior {text!r}: expected family(parameters), e.g. 'normal(0, 1)'."
        )
    family, body = match.group(1), match.group(2).strip()
    args: list[float] = []
    kwargs: dict[str, float] = {}
    if body:
        for piece in body.split(","):
            piece = piece.strip()
            key, sep, value_text = piece.partition("=")
            value_text = value_text if sep else key
            try:
                value = float(value_text)
            except ValueError:
                raise PriorSpecError(
                    f"Cannot parse prior {text!r}: parameter {piece!r} is not a number."
                ) from None
            if sep:
                kwargs[key.strip()] = value
            elif kwargs:
                raise PriorSpecError(
                    f"Cannot parse prior {text!r}: positional parameter after keyword parameter."
                )
            else:
                args.append(value)
    return Prior.of(family, *args, **kwargs)


def prior_from_value(value: Any, where: str) -> Prior:
    """A prior from text (``normal(0, 1)``) or a TOML table (``{ family = "normal", mu = 0,
    sigma = 1 }``); errors name ``where``."""
    if isinstance(value, Prior):
        return value
    if isinstance(value, str):
        try:
            return parse_prior(value)
        except PriorSpecError as error:
            raise PriorSpecError(f"{where}: {error}") from None
    if isinstance(value, Mapping):
        params = dict(value)
        family = params.pop("family", None) or params.pop("distribution", None)
        family = family or params.pop("dist", None)
        if family is None:
            raise PriorSpecError(f"{where}: a prior table needs a 'family' key.")
        try:
            return Prior.of(str(family), **{k: float(v) for k, v in params.items()})
        except (TypeError, ValueError) as error:
            raise PriorSpecError(f"{where}: {error}") from None
    raise PriorSpecError(
        f"{where}: expected a string like 'normal(0, 1)' or a table with 'family', got "
        f"{type(value).__name__}."
    )


def is_prior_table(value: Any) -> bool:
    return isinstance(value, Mapping) and any(
        key in value for key in ("family", "distribution", "dist")
    )


def prior_items(priors: Mapping[str, Any] | Sequence[str] | str) -> list[tuple[str, Any]]:
    """``(key, value)`` pairs of a priors mapping or of ``ROLE=DIST`` strings, a table of
    per-term priors (``{"slope": {"AI": ...}}``, as TOML dotted keys give) flattened to
    ``slope.AI``. What each family's prior parser reads before picking its own roles."""
    if isinstance(priors, str):
        priors = [priors]
    items: list[tuple[str, Any]] = []
    if isinstance(priors, Mapping):
        for key, value in priors.items():
            if isinstance(value, Mapping) and "." not in str(key) and not is_prior_table(value):
                items += [(f"{key}.{term}", v) for term, v in value.items()]
            else:
                items.append((str(key), value))
        return items
    for text in priors:
        key, sep, value = str(text).partition("=")
        if not sep:
            raise PriorSpecError(f"Cannot parse prior override {text!r}: expected "
                                 "name=family(parameters).")
        items.append((key.strip(), value.strip()))
    return items


def read_prior_table(path: Path) -> Mapping[str, Any]:
    """The prior entries of a TOML file: its ``[priors]`` table, or its top level."""
    if not path.is_file():
        what = "is a directory, expected a TOML file" if path.is_dir() else "file not found"
        raise PriorSpecError(f"Prior file {path}: {what}.")
    try:
        content = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise PriorSpecError(f"Prior file {path}: not valid TOML ({error}).") from None
    table = content.get("priors", content)
    if not isinstance(table, Mapping):
        raise PriorSpecError(f"Prior file {path}: 'priors' must be a table.")
    return table


_LKJ_RE = re.compile(r"^\s*lkj\s*\(\s*(?:eta\s*=\s*)?([0-9.eE+-]+)\s*\)\s*$", re.IGNORECASE)


def parse_lkj(value: Any, key: str) -> float:
    """The eta of ``lkj(eta)`` (the LKJ prior of a correlation; for a 2 x 2 matrix
    (rho + 1) / 2 ~ Beta(eta, eta)); the error names ``key``."""
    match = _LKJ_RE.match(str(value))
    if match is None or float(match.group(1)) <= 0:
        raise PriorSpecError(f"Prior {key} = {value!r}: write {key}=lkj(eta) with eta > 0 "
                             "(eta = 1 is uniform on (-1, 1)).")
    return float(match.group(1))


def stacked_prior(priors: list[Prior] | tuple[Prior, ...], name: str, dims: str):
    """One vector variable ``name`` (dims ``dims``) with one prior per element: a single
    vectorised distribution when all share a family, else a Deterministic stack of scalars
    named ``<name>_<j>``."""
    import numpy as np
    import pymc as pm
    import pytensor.tensor as pt

    if len({p.family for p in priors}) == 1:
        first = priors[0]
        params = {k: np.array([dict(p.params)[k] for p in priors]) for k, _ in first.params}
        return first.to_pymc(name, dims=dims, **params)
    parts = [p.to_pymc(f"{name}_{j}") for j, p in enumerate(priors)]
    return pm.Deterministic(name, pt.stack(parts), dims=dims)

"""The prior grid: for each named prior role of a model, alternatives to refit it with.

A grid file (TOML) has one table per role, each entry one alternative::

    [slope.AI]                       # a role, or role.term for one regressor
    tighter = { scale = 0.1 }        # the default prior's scale times 0.1
    wider = { scale = 10 }
    heavy = { family = "studentt", nu = 3 }    # the default's centre and scale, t(3) tails
    sceptical = { sceptical = true } # normal(0, |m| / 1.645): P(effect > |m|) = 0.05 a priori
    fixed = "normal(0, 0.05)"        # any prior of the grammar, as written

    [unit_sd]
    tighter = { scale = 0.1 }

    [likelihood]                     # an option of the specification, not a prior
    student = "student_t"

Relative entries (``scale``, ``family``/``nu``, ``sceptical``) are resolved against the prior
the default fit used (its record in the posterior), so they work on any data scale; ``m`` of
``sceptical`` is the default fit's posterior mean of that term (Spiegelhalter, Freedman &
Parmar 1994). ``[defaults] replace = true`` drops the built-in alternatives of
:func:`default_grid`; otherwise a file's entries add to them or replace those of the same role
and name. Every entry is checked when the file is read; a bad one raises
:class:`~models.bayes.priors.PriorSpecError` naming the file, the role and the entry.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.priors import EVENT_PATH_ROLE, family_roles
from models.bayes.priors import Prior, PriorSpecError, parse_lkj, parse_prior

# Roles that are options of a specification (its ``options`` table) rather than priors.
OPTION_ROLES: dict[str, tuple[str, ...]] = {
    "likelihood": ("normal", "student_t", "negbin"),
    "threshold_prior": ("uniform", "uniform_value"),
}
# The specification kinds whose adapter reads each option.
OPTION_KINDS: dict[str, tuple[str, ...]] = {"likelihood": ("twfe", "event_study"),
                                            "threshold_prior": ("threshold",)}
# Where a kind's adapter reads an option under another name and form: an event study fits
# each likelihood of its ``likelihoods`` list.
OPTION_AS = {("event_study", "likelihood"): ("likelihoods", lambda value: [value])}
LKJ_ROLES = ("rho", "mediator_corr")
RELATIVE_KEYS = {"scale", "family", "nu", "sceptical"}
SCEPTICAL_Z = 1.645


@dataclass(frozen=True)
class Alternative:
    """One alternative of the grid: ``role`` (``slope.AI``, ``unit_sd``, ``likelihood``),
    ``name`` (``tighter``) and ``value`` (prior text, a relative table or an option value)."""

    role: str
    name: str
    value: Any

    @property
    def base_role(self) -> str:
        """The role without its term (``slope`` of ``slope.AI``)."""
        return self.role.partition(".")[0]

    @property
    def is_option(self) -> bool:
        """Whether the role is an option of the specification rather than a prior."""
        return self.role in OPTION_ROLES


def _scales(*names: str) -> dict[str, dict]:
    tighter, wider = {"scale": 0.1}, {"scale": 10.0}
    return {name: {"tighter": tighter, "wider": wider, "heavy": {"family": "t", "nu": 3.0}}
            for name in names}


def default_grid(kind: str, key_term: str | None, options: dict | None = None
                 ) -> list[Alternative]:
    """The built-in alternatives for a specification of ``kind`` whose key regressor is
    ``key_term``: its slope tighter (scale x 0.1), wider (x 10), heavier-tailed (t, 3 df) and
    sceptical (centred at 0); the scales of the unit and year effects and of the group sd
    tighter, wider and heavier-tailed; and the kind's own roles (likelihood, threshold prior,
    event-time smoothing and the negative binomial likelihood of an event study, the IV error
    correlation, the confounding rho of mediation)."""
    options = options or {}
    slope = f"slope.{key_term}" if key_term else "slope"
    table: dict[str, dict] = {slope: {"tighter": {"scale": 0.1}, "wider": {"scale": 10.0},
                                      "heavy": {"family": "t", "nu": 3.0}}}
    if key_term:
        table[slope]["sceptical"] = {"sceptical": True}
    if kind in ("twfe", "heterogeneity", "event_study"):
        table.update(_scales("unit_sd", "year_sd"))
    if kind == "twfe" and options.get("likelihood", "normal") == "normal":
        table["likelihood"] = {"student_t": "student_t"}
    if kind == "heterogeneity":
        table.update(_scales("group_sd"))
    if kind == "threshold":
        table = {"slope": {"tighter": {"scale": 0.1}, "wider": {"scale": 10.0},
                           "heavy": {"family": "t", "nu": 3.0}},
                 "threshold_prior": {"uniform_value": "uniform_value"}}
    if kind == "event_study":
        table = {**_scales("unit_sd", "year_sd"),
                 EVENT_PATH_ROLE: {"rw1": "rw1", "rw2": "rw2", "hierarchical": "hierarchical"},
                 "likelihood": {"negbin": "negbin"}}
    if kind == "iv":
        table.update({"rho": {"uniform": "lkj(1)", "towards_zero": "lkj(8)"}})
    if kind == "mediation":
        table = {"confounding_rho": {"narrow": "normal(0, 0.1)", "wide": "normal(0, 0.3)"},
                 "mediator_corr": {"uniform": "lkj(1)", "towards_zero": "lkj(8)"}}
    return [Alternative(role, name, value) for role, entries in table.items()
            for name, value in entries.items()]


def known_roles() -> list[str]:
    """Every role a grid may name: the prior roles of every model family and the options."""
    roles = [role for names in family_roles().values() for role in names]
    return list(dict.fromkeys([*roles, *OPTION_ROLES]))


def check_alternative(alternative: Alternative, where: str) -> Alternative:
    """``alternative`` if it is well formed; raises :class:`PriorSpecError` naming ``where``,
    the role and the entry otherwise."""
    role, name, value = alternative.role, alternative.name, alternative.value
    label = f"{where}: [{role}] {name}"
    if alternative.base_role not in known_roles():
        raise PriorSpecError(f"{label}: unknown role {role!r}; known roles: "
                             f"{', '.join(known_roles())}")
    if alternative.is_option:
        if value not in OPTION_ROLES[role]:
            raise PriorSpecError(f"{label} = {value!r}: {role} must be one of "
                                 f"{', '.join(OPTION_ROLES[role])}")
        return alternative
    if alternative.base_role == EVENT_PATH_ROLE:
        from models.event_study.path_priors import EventPathPrior

        try:
            EventPathPrior.parse(value)
        except PriorSpecError as error:
            raise PriorSpecError(f"{label}: {error}") from None
        return alternative
    if isinstance(value, dict):
        unknown = sorted(set(value) - RELATIVE_KEYS)
        if unknown:
            raise PriorSpecError(f"{label}: unknown key(s) {', '.join(unknown)}; a relative "
                                 f"alternative takes {', '.join(sorted(RELATIVE_KEYS))}")
        scale = value.get("scale", 1.0)
        if not isinstance(scale, int | float) or isinstance(scale, bool) or scale <= 0:
            raise PriorSpecError(f"{label}: scale must be a positive number; got {scale!r}")
        nu = value.get("nu")
        if nu is not None and (not isinstance(nu, int | float) or nu <= 0):
            raise PriorSpecError(f"{label}: nu must be a positive number; got {nu!r}")
        family = value.get("family")
        if family is not None and family not in ("normal", "t", "studentt", "student_t"):
            raise PriorSpecError(f"{label}: family must be 'normal' or 't' (a relative "
                                 f"alternative keeps the default's centre and scale); got "
                                 f"{family!r}")
        if value.get("sceptical") and alternative.base_role != "slope":
            raise PriorSpecError(f"{label}: a sceptical prior is centred at 0 for a slope; "
                                 f"{role} is not one")
        return alternative
    if not isinstance(value, str):
        raise PriorSpecError(f"{label}: expected a prior such as 'normal(0, 1)' or a table of "
                             f"{', '.join(sorted(RELATIVE_KEYS))}; got {type(value).__name__}")
    try:
        if alternative.base_role in LKJ_ROLES or value.strip().lower().startswith("lkj"):
            parse_lkj(value, role)
        else:
            parse_prior(value)
    except PriorSpecError as error:
        raise PriorSpecError(f"{label}: {error}") from None
    return alternative


def read_grid(path: str | Path | None, defaults: list[Alternative]) -> list[Alternative]:
    """The alternatives of a grid file (format in the module docstring) merged with
    ``defaults``; ``defaults`` alone when ``path`` is None. Each entry is checked."""
    if path is None:
        return list(defaults)
    path = Path(path)
    if not path.is_file():
        what = "is a folder, expected a TOML file" if path.is_dir() else "file not found"
        raise PriorSpecError(f"--grid {path}: {what}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise PriorSpecError(f"--grid {path}: not valid TOML ({error})") from None
    settings = raw.pop("defaults", {})
    if not isinstance(settings, dict) or set(settings) - {"replace"}:
        raise PriorSpecError(f"--grid {path}: [defaults] takes only 'replace = true|false'")
    entries: list[Alternative] = []
    for role, table in _role_tables(raw, path):
        if not isinstance(table, dict) or not table:
            raise PriorSpecError(f"--grid {path}: [{role}] must be a table of name = "
                                 "alternative entries")
        for name, value in table.items():
            entries.append(check_alternative(Alternative(role, str(name), value), str(path)))
    kept = [] if settings.get("replace") else [
        d for d in defaults if (d.role, d.name) not in {(e.role, e.name) for e in entries}]
    return kept + entries


def _role_tables(raw: dict, path: Path):
    """(role, table) pairs, TOML's nested ``[slope.AI]`` tables read back as ``slope.AI``."""
    for key, table in raw.items():
        if (isinstance(table, dict) and table and key in ("slope", "between", "group_sd",
                                                             "mediator_slope", "first_stage")
                and all(isinstance(v, dict) and not (set(v) <= RELATIVE_KEYS)
                        for v in table.values())):
            for term, inner in table.items():
                yield f"{key}.{term}", inner
        else:
            yield key, table


def _centre_scale(prior: Prior, where: str) -> tuple[float, float, float | None]:
    """(centre, scale, nu) of a location-scale default prior."""
    p = prior.kwargs
    match prior.family:
        case "normal":
            return p["mu"], p["sigma"], None
        case "studentt":
            return p["mu"], p["sigma"], p["nu"]
        case "cauchy":
            return p["alpha"], p["beta"], 1.0
        case "halfnormal":
            return 0.0, p["sigma"], None
        case "halfstudentt":
            return 0.0, p["sigma"], p["nu"]
        case "halfcauchy":
            return 0.0, p["beta"], 1.0
        case "exponential":
            return 0.0, 1.0 / p["lam"], None
    raise PriorSpecError(f"{where}: a relative alternative needs a location-scale default "
                         f"prior; the default is {prior}")


def relative_prior(default: Prior, change: dict, where: str,
                   posterior_mean: float | None = None) -> Prior:
    """The prior ``change`` (a relative table of the grid) makes of ``default``."""
    centre, scale, nu = _centre_scale(default, where)
    if change.get("sceptical"):
        if posterior_mean is None or not abs(posterior_mean) > 0:
            raise PriorSpecError(f"{where}: a sceptical prior needs the default fit's "
                                 "posterior mean of the term")
        return Prior.of("normal", 0.0, abs(posterior_mean) / SCEPTICAL_Z * change.get("scale", 1))
    scale *= float(change.get("scale", 1.0))
    family = change.get("family")
    heavy = family in ("t", "studentt", "student_t") or (
        family is None and (change.get("nu") is not None or nu is not None))
    nu = float(change.get("nu", nu if nu is not None else 3.0))
    if default.support == "positive":
        return Prior.of("halfstudentt", nu, scale) if heavy else Prior.of("halfnormal", scale)
    return Prior.of("studentt", nu, centre, scale) if heavy else Prior.of("normal", centre, scale)


def resolve_alternative(alternative: Alternative, record: dict[str, str],
                        means: dict[str, float], where: str, kind: str | None = None
                        ) -> tuple[dict[str, str], dict[str, str]]:
    """(prior overrides, spec option overrides) of one alternative.

    ``record`` is the default fit's priors (``{"slope.AI": "normal(0, 1.2)", ...}``), ``means``
    its posterior means by term, ``kind`` the specification's kind (an option its adapter
    does not read is refused). A relative entry of a role-wide name (``slope``) changes every
    recorded entry of that role.
    """
    role, value = alternative.role, alternative.value
    if alternative.is_option:
        if kind is not None and kind not in OPTION_KINDS[role]:
            raise PriorSpecError(f"{where}: [{role}] {alternative.name}: a {kind} "
                                 f"specification has no {role} option (it applies to "
                                 f"{', '.join(OPTION_KINDS[role])})")
        name, form = OPTION_AS.get((kind, role), (role, lambda v: v))
        return {}, {name: form(value)}
    if not isinstance(value, dict):
        return {role: value}, {}
    keys = [k for k in record if k == role or (
        "." not in role and k.partition(".")[0] == role)]
    if not keys:
        raise PriorSpecError(f"{where}: [{role}] {alternative.name}: the default fit has no "
                             f"prior {role!r} (its priors: {', '.join(sorted(record))})")
    overrides = {}
    for key in keys:
        default = parse_prior(record[key])
        term = key.partition(".")[2]
        overrides[key] = str(relative_prior(default, value, f"{where}: [{role}] "
                                            f"{alternative.name}", means.get(term)))
    return overrides, {}


def base_priors(path: str | Path | None) -> dict[str, str]:
    """The user's priors (``--priors FILE.toml``, the file ``run`` reads,
    :func:`inference.priors.read_prior_entries`) as ``{role[.term]: prior}``, the base every
    fit of the grid starts from; empty for the defaults. Each entry is checked by its family's
    parser; a bad one raises :class:`PriorSpecError` naming the file and the key."""
    from inference.priors import read_prior_entries

    if path is None:
        return {}
    flat: dict[str, str] = {}
    for key, value in read_prior_entries(path).items():
        # A TOML table of terms (``[slope] AI = "..."``) is the grid's ``slope.AI``.
        if isinstance(value, dict):
            flat.update({f"{key}.{term}": str(text) for term, text in value.items()})
        else:
            flat[str(key)] = str(value)
    return flat

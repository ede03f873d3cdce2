"""The priors a user gives a run: one TOML file and command-line overrides for every model.

A study mixes model families, each with its own prior roles: the TWFE roles of
:mod:`models.bayes.panel_priors` (also read by the threshold models), the group sd of
partial pooling (:mod:`models.heterogeneity.bayes`) and the first stage and error correlation of IV
(:mod:`models.iv.bayes`), the paths, residual correlation and confounding rho of mediation
(:mod:`models.mediation.priors`), and the event study's TWFE roles plus ``event_path``, the
prior on the event-time path (``event_path = "rw1"``, ``"rw2(step=0.1)"``, ``"hierarchical"``,
``"independent"``; :mod:`models.event_study.path_priors`). The user writes them in one
place; :func:`read_prior_entries` checks every entry against the family it belongs to
before anything is fitted, and :func:`priors_for` hands each family only its own roles, so
that no family's parser needs to know the others' role names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from models.bayes.panel_priors import ROLES
from models.bayes.priors import PriorSpecError, read_prior_table

FAMILIES = ("panel", "heterogeneity", "iv", "event_study", "mediation")
EVENT_PATH_ROLE = "event_path"


def family_roles() -> dict[str, tuple[str, ...]]:
    """The prior roles each model family reads (``panel``: TWFE and threshold models)."""
    from models.heterogeneity.priors import GROUP_SD_ROLE
    from models.iv.bayes import IV_ROLES
    from models.mediation.priors import MEDIATION_ROLES

    return {"panel": ROLES, "heterogeneity": (*ROLES, GROUP_SD_ROLE), "iv": IV_ROLES,
            "event_study": (*ROLES, EVENT_PATH_ROLE), "mediation": MEDIATION_ROLES}


def _role(key: Any) -> str:
    return str(key).partition("=")[0].strip().partition(".")[0]


def priors_for(priors: Any, family: str) -> Any:
    """The part of the user's priors that ``family`` reads.

    ``priors`` is what :func:`read_prior_entries` returns (a mapping), a sequence of
    ``ROLE=DIST`` strings, a prior object of the family's own (passed through) or None.
    Entries of the other families' roles are left out; None when nothing is left.
    """
    if priors is None or not isinstance(priors, Mapping | list | tuple | str):
        return priors
    roles = family_roles()[family]
    if isinstance(priors, Mapping):
        kept: Any = {key: value for key, value in priors.items() if _role(key) in roles}
    else:
        kept = [text for text in ([priors] if isinstance(priors, str) else priors)
                if _role(text) in roles]
    return kept or None


def read_prior_entries(path: str | Path | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Every prior of a TOML file (as :func:`models.bayes.panel_priors.load_priors_toml` reads it)
    and the command-line ``name=family(...)`` overrides on top, as one mapping: the TWFE roles,
    ``group_sd`` (partial pooling), ``first_stage``, ``first_stage_sigma`` and ``rho`` (IV),
    ``mediator_slope``, ``mediator_sigma``, ``mediator_corr`` and ``confounding_rho``
    (mediation).

    Each entry is checked by the parser of the model family it belongs to.

    Raises
    ------
    PriorSpecError
        Naming the file and key (or the override text) of an unknown role or invalid prior.
    """
    from models.event_study.path_priors import EventPathPrior
    from models.heterogeneity.priors import HeterogeneityPriors
    from models.iv.bayes import IVPriors
    from models.mediation.priors import MediationPriors

    entries: dict[str, Any] = {}
    where = "command line"
    if path is not None:
        where = str(path)
        entries.update(read_prior_table(Path(path)))
    for text in overrides:
        key, sep, value = str(text).partition("=")
        if not sep:
            raise PriorSpecError(f"Cannot parse prior override {text!r}: expected "
                                 "name=family(parameters).")
        entries[key.strip()] = value.strip()
    known = list(dict.fromkeys(role for roles in family_roles().values() for role in roles))
    for key in entries:
        if _role(key) not in known:
            raise PriorSpecError(f"Prior {key!r} ({where}): unknown name; known names: "
                                 f"{', '.join(known)}.")
    try:
        HeterogeneityPriors.parse(priors_for(entries, "heterogeneity"))
        IVPriors.parse(priors_for(entries, "iv"))
        MediationPriors.parse(priors_for(entries, "mediation"))
        if EVENT_PATH_ROLE in entries:
            EventPathPrior.parse(entries[EVENT_PATH_ROLE])
    except PriorSpecError as error:
        raise PriorSpecError(f"Priors from {where}: {error}") from None
    return entries

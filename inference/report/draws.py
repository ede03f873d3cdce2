"""Posterior draws of one named term, found in a saved InferenceData.

Families name their parameters differently (``slope[coef=AI]`` in TWFE, ``slope[coef=
AI_regime2]`` and ``gamma[threshold=gamma_1]`` in the threshold model, group slopes by a group
coordinate); the report and the claims ledger ask for a results term (``AI``, ``AI_regime2``,
``AI[east]``) and get its draws, flattened over chains, or None.
"""

from __future__ import annotations

import re

import numpy as np

GROUP_TERM = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<group>[^\[\]]+)\]$")


def _coordinate_hits(posterior, value: str):
    """(variable, dimension) pairs of the posterior with ``value`` on that dimension."""
    for name, variable in posterior.data_vars.items():
        if name.endswith("__"):
            continue
        for dim in variable.dims:
            if dim in ("chain", "draw") or dim not in posterior.coords:
                continue
            labels = [str(v) for v in posterior.coords[dim].values]
            if value in labels:
                yield name, dim


def _flatten(variable) -> np.ndarray:
    return np.asarray(variable.values, dtype=float).reshape(-1)


def term_draws(idata, term: str) -> np.ndarray | None:
    """Draws of ``term`` from ``idata.posterior`` (chains stacked), or None when it has none.

    Looked up as a scalar variable of that name, then as a coordinate label (``slope`` over
    ``coef``, preferred where several variables carry the label), then, for ``base[group]``,
    as the ``group`` label of a variable that also names ``base``.
    """
    if idata is None or "posterior" not in idata.groups():
        return None
    posterior = idata.posterior
    if term in posterior.data_vars and set(posterior[term].dims) <= {"chain", "draw"}:
        return _flatten(posterior[term])
    hits = list(_coordinate_hits(posterior, term))
    hits.sort(key=lambda hit: (hit[0] != "slope", hit[0]))
    for name, dim in hits:
        variable = posterior[name].sel({dim: term})
        if set(variable.dims) <= {"chain", "draw"}:
            return _flatten(variable)
    match = GROUP_TERM.match(term)
    if match:
        base, group = match["base"], match["group"]
        for name, dim in _coordinate_hits(posterior, group):
            variable = posterior[name].sel({dim: group})
            rest = [d for d in variable.dims if d not in ("chain", "draw")]
            if not rest:
                return _flatten(variable)
            for other in rest:
                labels = [str(v) for v in posterior.coords[other].values]
                if base in labels:
                    picked = variable.sel({other: base})
                    if set(picked.dims) <= {"chain", "draw"}:
                        return _flatten(picked)
    return None


def posterior_variable(idata, term: str) -> tuple[str, dict] | None:
    """(variable name, coords) that hold ``term`` in ``idata.posterior``, for ArviZ plots'
    ``var_names`` and ``coords``; None when the term is not a coordinate label or variable."""
    if idata is None or "posterior" not in idata.groups():
        return None
    posterior = idata.posterior
    if term in posterior.data_vars:
        return term, {}
    hits = sorted(_coordinate_hits(posterior, term), key=lambda h: (h[0] != "slope", h[0]))
    for name, dim in hits:
        return name, {dim: [term]}
    return None

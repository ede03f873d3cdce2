"""Panel 2SLS with absorbed effects (frequentist): first stage, second stage, KP tests."""

from __future__ import annotations

import pandas as pd

from inference.estimators.base import Estimate, Settings
from inference.registry import Spec
from models.iv import fit_panel_iv

KIND = "iv"


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """2SLS of ``spec.outcome`` on ``spec.regressors``, the ``endogenous`` ones instrumented.

    Options: ``endogenous`` (name or list; must be among the regressors), ``instruments``
    (excluded instruments), ``first_stage_column`` (column of the first-stage table, default
    "1"; with several endogenous regressors, one column per regressor as
    ``first_stage_column/<name>``), ``convention`` (``ivreghdfe`` or ``xtivreg2``).
    The second stage and the diagnostics (``kp_rk_lm``, ``kp_rk_lm_p``, ``kp_rk_wald_f``,
    ``stock_yogo_10pct``) go to ``spec.column``.
    """
    options = spec.options
    endogenous = _as_list(options.get("endogenous"), "endogenous", spec)
    instruments = _as_list(options.get("instruments"), "instruments", spec)
    absent = [e for e in endogenous if e not in spec.regressors]
    if absent:
        raise ValueError(f"{spec.key}: endogenous {absent} not among the regressors "
                         f"{list(spec.regressors)}")
    exogenous = [r for r in spec.regressors if r not in endogenous]
    fit = fit_panel_iv(sample, spec.outcome, endogenous, instruments, exogenous,
                       list(spec.effects), vcov=spec.vcov,
                       convention=options.get("convention", "ivreghdfe"))
    first_column = str(options.get("first_stage_column", "1"))
    parts = []
    for name, table in fit.first_stage.items():
        column = first_column if len(endogenous) == 1 else f"{first_column}/{name}"
        parts.append(table.assign(table=spec.table, column=column))
    parts.append(fit.tidy().assign(table=spec.table, column=spec.column))
    return Estimate(pd.concat(parts, ignore_index=True))


def _as_list(value, name: str, spec: Spec) -> list[str]:
    if value is None:
        raise ValueError(f"{spec.key}: kind 'iv' needs the option '{name}'")
    return [value] if isinstance(value, str) else [str(v) for v in value]

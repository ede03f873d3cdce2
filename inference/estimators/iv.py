"""Panel IV with absorbed effects: 2SLS with its first stages and KP tests (frequentist), and the
joint first-stage and outcome model with correlated errors (Bayesian).

The Bayesian adapter takes the frequentist adapter's options: ``endogenous`` (one
regressor, among the spec's regressors), ``instruments`` (list), ``first_stage_column``
(default "1"); and ``target_accept`` for the sampler. The other regressors are the controls of
both equations. Rows: the instruments' first-stage slopes to ``first_stage_column``; the
endogenous regressor's slope and ``rho`` (the correlation of the two equations' errors, the
endogeneity) to ``spec.column``.
"""

from __future__ import annotations

import pandas as pd

from inference.estimators.base import Estimate, Settings, convergence_note
from inference.registry import Spec
from models.iv.tsls import fit_panel_iv

KIND = "iv"


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """2SLS of ``spec.outcome`` on ``spec.regressors``, the ``endogenous`` ones instrumented.

    Options: ``endogenous`` (name or list; must be among the regressors), ``instruments``
    (excluded instruments), ``first_stage_column`` (column of the first-stage table, default
    "1"; with several endogenous regressors, one column per regressor as
    ``first_stage_column/<name>``), ``convention`` (``ivreghdfe`` or ``xtivreg2``).
    The second stage and the diagnostics (``kp_rk_lm``, ``kp_rk_lm_p``, ``kp_rk_lm_df``,
    ``kp_rk_wald_f``, ``cragg_donald_f``, ``stock_yogo_10pct``, and ``hansen_j``,
    ``hansen_j_p``, ``hansen_j_df`` when over-identified) go to ``spec.column``.
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


def bayesian(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """Joint model of :func:`models.iv.bayes.fit_bayes_iv` on two-way demeaned data."""
    from models.iv.bayes import fit_bayes_iv

    options = spec.options
    endogenous = options.get("endogenous")
    if isinstance(endogenous, list):
        if len(endogenous) != 1:
            raise ValueError(f"{spec.key}: the Bayesian IV model takes one endogenous "
                             f"regressor, got {endogenous}")
        endogenous = endogenous[0]
    if not endogenous:
        raise ValueError(f"{spec.key}: kind 'iv' needs the option 'endogenous'")
    instruments = options.get("instruments")
    if not instruments:
        raise ValueError(f"{spec.key}: kind 'iv' needs the option 'instruments'")
    instruments = [instruments] if isinstance(instruments, str) else [str(i) for i in instruments]
    if endogenous not in spec.regressors:
        raise ValueError(f"{spec.key}: endogenous {endogenous!r} not among the regressors "
                         f"{list(spec.regressors)}")
    controls = [r for r in spec.regressors if r != endogenous]
    effects = list(spec.effects)
    if not effects or effects[0] != settings.unit or len(effects) > 2 or (
            len(effects) == 2 and "^" in effects[1]):
        raise ValueError(f"{spec.key}: the Bayesian IV model needs effects "
                         f"[{settings.unit!r}] or [{settings.unit!r}, <time>], not {effects}")
    extra = {}
    if "target_accept" in options:
        extra["target_accept"] = float(options["target_accept"])
    fit = fit_bayes_iv(
        sample, spec.outcome, endogenous, instruments, controls, unit=effects[0],
        time=effects[1] if len(effects) == 2 else None, priors=settings.priors_for("iv"),
        seed=settings.seed, **settings.sampling, **extra,
    )
    tidy = fit.tidy(auxiliary=False)
    first_column = str(options.get("first_stage_column", "1"))
    tidy["table"] = spec.table
    tidy["column"] = [first_column if stage == "first" else spec.column
                      for stage in tidy["stage"]]
    problems = fit.convergence_problems()
    tidy["note"] = [convergence_note(term, problems) for term in tidy["term"]]
    return Estimate(tidy.drop(columns=["stage", "divergences"]), fits={"": fit})

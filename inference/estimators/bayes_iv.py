"""Bayesian IV with absorbed effects: first stage and outcome equation with correlated errors.

Serves kind ``iv`` with a ``bayesian`` adapter only (the frequentist 2SLS is in
:mod:`inference.estimators.iv`). Options as for the frequentist adapter: ``endogenous`` (one
regressor, among the spec's regressors), ``instruments`` (list), ``first_stage_column``
(default "1"); ``target_accept`` for the sampler. The other regressors are the controls of
both equations. Rows: the instruments' first-stage slopes to ``first_stage_column``; the
endogenous regressor's slope and ``rho`` (the correlation of the two equations' errors, the
endogeneity) to ``spec.column``.
"""

from __future__ import annotations

import pandas as pd

from inference.estimators.base import Estimate, Settings, convergence_note
from inference.registry import Spec

KIND = "iv"


def bayesian(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """Joint model of :func:`models.bayes_iv.fit_bayes_iv` on two-way demeaned data."""
    from models.bayes_iv import fit_bayes_iv

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
        time=effects[1] if len(effects) == 2 else None, priors=settings.priors,
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

"""Subgroup heterogeneity in one model: fully interacted TWFE and partial pooling.

Spec options: ``group`` (categorical column; required), ``focal`` (regressor or list whose slope
varies by group; default the first regressor), ``groups`` (order of the groups, default
sorted), ``labels`` (``{"1" = "high", "0" = "low"}``: printed names of the group values),
``vary_controls`` (let the controls' slopes vary too), and for the Bayesian fit
``parametrisation`` (``auto``, ``collapsed``, ``centred``, ``non_centred``) and ``target_accept``.

Rows: ``AI[g]`` per group, ``AI[g]-AI[h]`` per pair of groups (frequentist: Wald test;
Bayesian: ``prob_positive`` = P(beta_g > beta_h)), and for the Bayesian fit ``AI_mu`` and
``AI_tau``, the mean and sd of the group slopes' population. Frequentist rows add the common
control slopes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from inference.estimators.base import Estimate, Settings, convergence_note
from inference.registry import Spec

KIND = "heterogeneity"


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """y = sum_g 1[g] x' beta_g + w' gamma + effects + e (pyfixest, errors ``spec.vcov``)."""
    from models.heterogeneity.interacted import fit_interacted_twfe

    frame, group, options = _prepare(sample, spec)
    fit = fit_interacted_twfe(
        frame, spec.outcome, list(spec.regressors), group, list(spec.effects),
        focal=_focal(spec), vcov=spec.vcov, vary_controls=bool(options.get("vary_controls")),
        groups=options.get("groups"),
    )
    return Estimate(fit.tidy())


def bayesian(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """Group slopes beta_g ~ N(mu, tau) around the Bayesian TWFE
    (:func:`models.heterogeneity.bayes.fit_bayes_heterogeneity`)."""
    from models.heterogeneity.bayes import fit_bayes_heterogeneity

    frame, group, options = _prepare(sample, spec)
    effects = list(spec.effects)
    if not effects or effects[0] != settings.unit or len(effects) > 2 or (
            len(effects) == 2 and "^" in effects[1]):
        raise ValueError(f"{spec.key}: the Bayesian heterogeneity model needs effects "
                         f"[{settings.unit!r}] or [{settings.unit!r}, <time>], not {effects}")
    extra = {}
    if "target_accept" in options:
        extra["target_accept"] = float(options["target_accept"])
    fit = fit_bayes_heterogeneity(
        frame, spec.outcome, list(spec.regressors), group, unit=effects[0],
        time=effects[1] if len(effects) == 2 else None, focal=_focal(spec),
        vary_controls=bool(options.get("vary_controls")), groups=options.get("groups"),
        priors=settings.priors_for("heterogeneity"),
        parametrisation=str(options.get("parametrisation", "auto")),
        seed=settings.seed, **settings.sampling, **extra,
    )
    tidy = fit.tidy(auxiliary=False)
    problems = fit.convergence_problems()
    tidy["note"] = [convergence_note(term, problems) for term in tidy["term"]]
    return Estimate(tidy.drop(columns=["divergences"]), fits={"": fit})


def _focal(spec: Spec) -> list[str]:
    focal = spec.options.get("focal")
    if focal is None:
        return [spec.regressors[0]]
    return [focal] if isinstance(focal, str) else [str(f) for f in focal]


def _prepare(sample: pd.DataFrame, spec: Spec) -> tuple[pd.DataFrame, str, dict]:
    """The sample with the group column relabelled, the group column and the options."""
    options = dict(spec.options)
    group = options.get("group")
    if not group:
        raise ValueError(f"{spec.key}: kind 'heterogeneity' needs the option 'group' "
                         "(the column that defines the groups)")
    if group not in sample.columns:
        raise ValueError(f"{spec.key}: group column {group!r} not in the data")
    labels = {str(k): str(v) for k, v in (options.get("labels") or {}).items()}
    frame = sample
    if labels:
        values = _group_text(sample[group])
        unknown = sorted(set(values) - set(labels))
        if unknown:
            raise ValueError(f"{spec.key}: option labels has no name for the value(s) "
                             f"{unknown} of {group!r}")
        frame = sample.assign(**{group: values.map(labels)})
    if options.get("groups") is not None:
        options["groups"] = [str(g) for g in options["groups"]]
    return frame, group, options


def _group_text(column: pd.Series) -> pd.Series:
    """Group values as text; whole-number floats (a 0/1 flag read as float) without ".0"."""
    if pd.api.types.is_float_dtype(column):
        whole = np.isfinite(column) & (column == np.round(column))
        if whole.all():
            return column.astype("int64").astype(str)
    return column.astype(str)

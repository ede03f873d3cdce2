"""Event study of a policy year: Treat x year TWFE with a pre-trend test (frequentist)."""

from __future__ import annotations

import pandas as pd

from inference.estimators.base import Estimate, Settings
from inference.registry import Spec
from models.event_study.twfe import fit_event_study, plot_event_study

KIND = "event_study"


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """y_it = sum_{k != ref} b_k Treat_i 1[t = k] + x_it' g + a_i + l_t + e_it.

    ``spec.outcome`` is the raw count (modelled as ln(1 + count); rows <= -1 dropped),
    ``spec.regressors`` the controls x_it, ``spec.vcov`` the standard errors. Options:
    ``treat`` (unit-level column, above-median units treated; default ``sec_share_2015``),
    ``reference`` (omitted year, default 2015), ``transform`` (``log1p`` or ``none``),
    ``rename`` (term -> printed name). Rows: ``Treat_x_<year>``, ``pretrend_wald`` (F test of
    every pre-reference coefficient = 0) and ``R2``; one coefficient plot.
    """
    options = spec.options
    reference = int(options.get("reference", 2015))
    fit = fit_event_study(
        sample, spec.outcome, options.get("treat", "sec_share_2015"),
        controls=list(spec.regressors), unit=settings.unit, time=settings.time,
        reference=reference, vcov=spec.vcov, transform=options.get("transform", "log1p"),
    )
    tidy = fit.tidy()
    q, dfd = fit.pretrend_df
    notes = {"pretrend_wald": f"F({q}, {dfd}): Treat x year = 0 for every year before "
                              f"{reference}"}
    if fit.n_dropped:
        notes["R2"] = f"{fit.n_dropped} rows with {spec.outcome} <= -1 dropped (no log)"
    tidy["note"] = tidy["term"].map(notes).fillna("")
    tidy["term"] = tidy["term"].replace(options.get("rename", {}))
    what = spec.label or spec.outcome
    path = settings.out_dir / f"event_study_table{spec.table}_col{spec.column}.png"
    title = (f"Table {spec.table} column {spec.column}: {what}\nTreat x year, 95% CI, "
             f"{reference} = 0, SE {spec.vcov}{settings.figure_suffix}")
    return Estimate(tidy, figures=[plot_event_study(fit, path, title)])

"""Hansen (1999) panel threshold regression (frequentist)."""

from __future__ import annotations

import pandas as pd

from inference.estimators.base import Estimate, Settings
from inference.registry import Spec
from models.threshold import fit_panel_threshold

KIND = "threshold"

QUICK_BOOTSTRAP = 50


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """Hansen (1999) panel threshold model; the spec's regressors are regime-independent.

    Options: ``regime`` (regressor whose slope switches), ``threshold_variable``,
    ``n_thresholds``, ``n_tests``, ``demean``, ``n_boot``, ``rename`` (term -> printed name),
    ``tables`` (``{test = "2", threshold = "3"}`` routes F tests and thresholds to other
    tables; tests then use the test name as column), ``se_columns`` (``{OLS = "ols"}``: one
    column of slopes per standard-error type; default one column with White errors).
    """
    options = spec.options
    unit, period = spec.effects[0], settings.time
    n_boot = QUICK_BOOTSTRAP if settings.quick else int(options.get("n_boot", 300))
    result = fit_panel_threshold(
        sample, y=spec.outcome, regime=options["regime"],
        threshold=options["threshold_variable"], fixed=list(spec.regressors), unit=unit,
        period=period, n_thresholds=int(options.get("n_thresholds", 1)),
        n_tests=options.get("n_tests"), demean=options.get("demean", "hansen"),
        time=period in spec.effects, n_boot=n_boot, seed=settings.seed,
    )
    tables = options.get("tables", {})
    se_columns = options.get("se_columns", {spec.column: "white"})
    parts = []
    for column, se_type in se_columns.items():
        tidy = result.tidy(se=se_type)
        slopes = tidy[tidy["kind"] == "slope"].assign(table=spec.table, column=column)
        parts.append(slopes)
    tidy = result.tidy()
    thresholds = tidy[tidy["kind"] == "threshold"].assign(
        table=tables.get("threshold", spec.table),
        column=spec.column if "threshold" not in tables else "1")
    if "threshold" in tables:
        wide = result.tidy(level=0.99)
        wide = wide[wide["kind"] == "threshold"].assign(
            term=lambda d: d["term"] + "_ci99", table=tables["threshold"], column="1")
        thresholds = pd.concat([thresholds, wide])
    tests = tidy[tidy["kind"].isin(["test", "critical_value"])].copy()
    if "test" in tables:
        tests["table"] = tables["test"]
        tests["column"] = tests["term"].str.extract(r"^F_([a-z]+)")[0]
    else:
        tests = tests.assign(table=spec.table, column=spec.column)
    out = pd.concat([*parts, thresholds, tests], ignore_index=True)
    out["term"] = out["term"].replace(options.get("rename", {}))
    out["n_obs"] = len(sample)
    return Estimate(out.drop(columns="kind"))


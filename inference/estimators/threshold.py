"""Hansen (1999) panel threshold regression (frequentist)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from inference.estimators.base import Estimate, Settings
from inference.registry import Spec
from models.panel_fe import fit_twfe
from models.threshold import fit_panel_threshold

KIND = "threshold"

QUICK_BOOTSTRAP = 50


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """Hansen (1999) panel threshold model; the spec's regressors are regime-independent.

    Options: ``regime`` (regressor whose slope switches), ``threshold_variable``,
    ``n_thresholds``, ``n_tests``, ``demean``, ``n_boot``, ``rename`` (term -> printed name),
    ``tables`` (``{test = "2", threshold = "3", shares = "4"}`` routes F tests, thresholds and
    the percentage of units in each regime by period to other tables; tests then use the test
    name as column, shares the period), ``se_columns`` (``{OLS = "ols"}``: one
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
    extras = _constant_and_r2(sample, spec, result, period)
    shares = pd.DataFrame()
    if "shares" in tables:
        shares = (result.regime_share.rename(index=lambda r: f"share_{r}")
                  .rename_axis(index="term", columns="column").stack()
                  .rename("estimate").reset_index().assign(table=tables["shares"]))
        shares["column"] = [f"{c:g}" if isinstance(c, float) else str(c)
                            for c in shares["column"]]
    out = pd.concat([*parts, extras.assign(table=spec.table, column=spec.column), thresholds,
                     tests, shares], ignore_index=True)
    out["term"] = out["term"].replace(options.get("rename", {}))
    out["n_obs"] = len(sample)
    return Estimate(out.drop(columns="kind"))



def _constant_and_r2(sample: pd.DataFrame, spec: Spec, result, period: str) -> pd.DataFrame:
    """Stata's ``xtreg, fe`` constant and the R2 of the model at the estimated thresholds.

    Given the thresholds the model is linear: regress y on the fixed regressors and the
    regime-split regressor x * I(g_{j-1} <= q < g_j) with unit and year effects. This holds only
    when every demeaned row is kept (``demean = "all"``) and there are unit and year effects;
    otherwise nothing is returned. The slopes are checked against the threshold fit's.
    """
    options = spec.options
    if options.get("demean", "hansen") != "all" or list(spec.effects)[1:] != [period]:
        return pd.DataFrame()
    regime, q = options["regime"], sample[options["threshold_variable"]].to_numpy()
    bounds = [-np.inf, *result.thresholds, np.inf]
    split = {f"{regime}_regime{j + 1}": sample[regime].to_numpy()
             * ((q >= bounds[j]) & (q < bounds[j + 1])) for j in range(len(bounds) - 1)}
    frame = sample.assign(**split)
    fit = fit_twfe(frame, spec.outcome, [*spec.regressors, *split], list(spec.effects),
                   vcov=spec.vcov)
    table = fit.tidy().set_index("term")
    mine = result.coefficients.set_index("term")["estimate"]
    # The threshold fit carries its year dummies as coefficients; pyfixest absorbs them.
    mine = mine[mine.index.isin(table.index)]
    gap = (table.loc[mine.index, "estimate"] - mine).abs().max()
    if not gap <= 1e-8 * (1 + mine.abs().max()):
        raise RuntimeError(f"{spec.key}: the regression at the estimated thresholds does not "
                           f"reproduce the threshold slopes (gap {gap:.3g})")
    return table.loc[["Constant", "R2"]].reset_index()

"""Hansen (1999) panel threshold regression (frequentist), and its Bayesian counterpart with the
thresholds marginalised exactly over Hansen's grid.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from inference.estimators.base import Estimate, Settings, convergence_note
from inference.registry import Spec
from models.panel.fe import fit_twfe
from models.threshold.hansen import fit_panel_threshold

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


TEST_NAMES = {1: "single", 2: "double", 3: "triple"}
# Fits of one data set, kept so that specifications sharing data and settings (a study's
# single, double and triple models, each compared with 0..3 thresholds) sample each model once.
_FIT_CACHE: dict[tuple, object] = {}
_CACHE_SIZE = 8


def bayesian(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """Bayesian counterpart of Hansen's threshold model (:mod:`models.threshold.bayes`).

    Options as the frequentist adapter (``regime``, ``threshold_variable``, ``n_thresholds``,
    ``n_tests``, ``demean``, ``n_boot``, ``rename``, ``tables``, ``se_columns``), plus
    ``threshold_prior`` (``uniform`` | ``uniform_value``) and ``compare_counts`` (default true:
    also fit 0 .. max(n_thresholds, n_tests) thresholds and compare them by LOO and marginal
    likelihood).

    Rows: the slopes in the spec's table, once per ``se_columns`` column (the posterior does
    not depend on the standard-error type; the repetition keeps it beside each frequentist
    column); ``gamma_1``.. (posterior mean, 94% HDI) and ``gamma_<r>_ci99`` (99% HDI) where
    the frequentist rows put thresholds; in the test table (``tables.test``, else the spec's
    table) column ``single`` / ``double`` / ``triple``: ``delta_elpd_loo`` (elpd of k minus
    k-1 thresholds, with its standard error) and ``log_bayes_factor`` (log ML of k minus k-1),
    beside the F test; column ``threshold_count``: ``elpd_loo_k<k>``, ``loo_weight_k<k>``,
    ``log_ml_k<k>`` and ``post_prob_k<k>`` (equal prior odds over the counts fitted).
    """
    from models.threshold.bayes import compare_threshold_counts
    from models.threshold.hansen import fit_panel_threshold

    options = spec.options
    unit, period = spec.effects[0], settings.time
    k = int(options.get("n_thresholds", 1))
    n_tests = int(options.get("n_tests") or k)
    tables = options.get("tables", {})
    rename = options.get("rename", {})
    fit = _fit(sample, spec, settings, k)
    problems = fit.convergence_problems()
    tidy = fit.tidy(auxiliary=False)
    parts = []
    slopes = tidy[tidy["kind"] == "slope"]
    for column in options.get("se_columns", {spec.column: "white"}):
        parts.append(slopes.assign(table=spec.table, column=column))
    threshold_table = tables.get("threshold", spec.table)
    threshold_column = spec.column if "threshold" not in tables else "1"
    thresholds = tidy[tidy["kind"] == "threshold"].assign(table=threshold_table,
                                                          column=threshold_column)
    parts.append(thresholds)
    if "threshold" in tables:
        parts.append(_wide_hdi(fit, 0.99).assign(table=threshold_table, column="1"))

    frequentist = fit_panel_threshold(
        sample, y=spec.outcome, regime=options["regime"],
        threshold=options["threshold_variable"], fixed=list(spec.regressors), unit=unit,
        period=period, n_thresholds=k, n_tests=n_tests, demean=options.get("demean", "hansen"),
        time=period in spec.effects, seed=settings.seed,
        n_boot=QUICK_BOOTSTRAP if settings.quick else int(options.get("n_boot", 300)))
    fits = {"": fit}
    comparison = None
    count_problems: list[str] = []
    counts = list(range(0, max(k, n_tests) + 1))
    if options.get("compare_counts", True) and len(counts) > 1:
        by_count = {c: (fit if c == k else _fit(sample, spec, settings, c)) for c in counts}
        comparison = compare_threshold_counts(by_count, frequentist)
        parts.append(_count_rows(comparison, by_count, tables.get("test", spec.table),
                                 "test" in tables, spec.column, k))
        fits.update({f"k{c}": f for c, f in by_count.items() if c != k})
        count_problems = [f"{c}-threshold model: {p}" for c, f in by_count.items()
                          for p in f.convergence_problems()]
    out = pd.concat(parts, ignore_index=True)
    # Rows of this model carry its own convergence problems; the comparison rows carry those
    # of every model compared.
    comparison_rows = out["term"].str.match(r"^(elpd_loo|loo_weight|log_ml|post_prob)_k\d|"
                                            r"^(delta_elpd_loo|log_bayes_factor)$")
    out["note"] = [
        ("; ".join(count_problems) if is_count else convergence_note(term, problems))
        if (count_problems if is_count else problems) else ""
        for term, is_count in zip(out["term"], comparison_rows)]
    out["term"] = out["term"].replace(rename)
    out["n_obs"] = len(sample)
    figures = _figures(fit, frequentist, comparison, spec, settings, rename)
    columns = ["table", "column", "term", "estimate", "std_error", "ci_low", "ci_high",
               "stat", "p_value", "prob_positive", "r_hat", "ess_bulk", "n_obs", "note"]
    return Estimate(out.reindex(columns=columns), fits=fits, figures=figures)


def release() -> None:
    """Forget the kept fits: each holds its pointwise log-likelihood (104 MB for zhao2025),
    and a study's later specifications of other kinds would otherwise run beside them."""
    _FIT_CACHE.clear()


def _fit(sample: pd.DataFrame, spec: Spec, settings: Settings, k: int):
    """The k-threshold posterior of this spec's data, sampled once per data and settings."""
    from models.threshold.bayes import fit_bayes_threshold

    options = spec.options
    unit, period = spec.effects[0], settings.time
    columns = list(dict.fromkeys([unit, period, spec.outcome, *spec.regressors,
                                  options["regime"], options["threshold_variable"]]))
    digest = hashlib.sha256(pd.util.hash_pandas_object(sample[columns], index=False)
                            .to_numpy().tobytes()).hexdigest()
    key = (digest, tuple(columns), k, options.get("demean", "hansen"), period in spec.effects,
           str(options.get("threshold_prior", "uniform")), repr(settings.priors_for("panel")),
           tuple(sorted(settings.sampling.items())), settings.seed)
    if key not in _FIT_CACHE:
        if len(_FIT_CACHE) >= _CACHE_SIZE:
            _FIT_CACHE.pop(next(iter(_FIT_CACHE)))
        _FIT_CACHE[key] = fit_bayes_threshold(
            sample, y=spec.outcome, regime=options["regime"],
            threshold=options["threshold_variable"], fixed=list(spec.regressors), unit=unit,
            period=period, n_thresholds=k, demean=options.get("demean", "hansen"),
            time=period in spec.effects,
            threshold_prior=options.get("threshold_prior", "uniform"),
            priors=settings.priors_for("panel"), seed=settings.seed, **settings.sampling)
    return _FIT_CACHE[key]


def _wide_hdi(fit, level: float) -> pd.DataFrame:
    import arviz as az

    rows = []
    gamma = fit.idata.posterior["gamma"]
    for r in range(fit.n_thresholds):
        draws = gamma.isel(threshold=r).values.reshape(-1)
        low, high = az.hdi(draws, hdi_prob=level)
        rows.append(dict(term=f"gamma_{r + 1}_ci{int(round(level * 100))}",
                         estimate=float(draws.mean()), ci_low=float(low), ci_high=float(high)))
    return pd.DataFrame(rows)


def _count_rows(comparison: pd.DataFrame, fits: dict, table: str, by_test: bool,
                spec_column: str, spec_k: int) -> pd.DataFrame:
    """Rows of the number-of-thresholds comparison (see :func:`bayesian`); without a test
    table only the step to the spec's own count (k-1 vs k) goes to the spec's column."""
    rows = []
    count_column = "threshold_count" if by_test else f"{spec_column}_threshold_count"
    pointwise = {c: f.loo().loo_i.values for c, f in fits.items()}
    for entry in comparison.itertuples():
        k = entry.n_thresholds
        rows += [
            dict(column=count_column, term=f"elpd_loo_k{k}", estimate=entry.elpd_loo,
                 std_error=entry.se),
            dict(column=count_column, term=f"loo_weight_k{k}", estimate=entry.weight),
            dict(column=count_column, term=f"log_ml_k{k}", estimate=entry.log_ml),
            dict(column=count_column, term=f"post_prob_k{k}", estimate=entry.posterior_prob),
        ]
        if k == 0 or k - 1 not in fits or (not by_test and k != spec_k):
            continue
        difference = pointwise[k] - pointwise[k - 1]
        column = TEST_NAMES[k] if by_test else spec_column
        previous = comparison.loc[comparison["n_thresholds"] == k - 1].iloc[0]
        rows += [
            dict(column=column, term="delta_elpd_loo", estimate=float(difference.sum()),
                 std_error=float(np.sqrt(difference.size * difference.var()))),
            dict(column=column, term="log_bayes_factor",
                 estimate=float(entry.log_ml - previous["log_ml"])),
        ]
    return pd.DataFrame(rows).assign(table=table)


def _figures(fit, frequentist, comparison, spec: Spec, settings: Settings,
             rename: dict) -> list[Path]:
    """Threshold posterior over the grid against Hansen's LR curve; regime slopes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.threshold.hansen import lr_critical_value

    out_dir = Path(settings.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"table{spec.table}_col{spec.column}"
    paths = []
    k = fit.n_thresholds
    figure, axes = plt.subplots(1, k, figsize=(5.5 * k, 4), squeeze=False)
    posterior = fit.threshold_posterior()
    for r in range(k):
        term = f"gamma_{r + 1}"
        axis = axes[0, r]
        axis.plot(posterior["gamma"], posterior[term], color="C0", lw=1.2,
                  label="posterior probability")
        axis.set_xlabel(spec.options["threshold_variable"])
        axis.set_ylabel("posterior probability per candidate", color="C0")
        twin = axis.twinx()
        curve = frequentist.lr_curve(term)
        twin.plot(curve["gamma"], curve["lr"], color="C3", lw=1.0, label="LR(gamma)")
        twin.axhline(lr_critical_value(0.95), color="C3", ls="--", lw=0.8)
        twin.set_ylim(0, max(4.0 * lr_critical_value(0.95), 1.0))
        twin.set_ylabel("Hansen LR statistic (dashed: 95% critical value)", color="C3")
        axis.set_title(f"{term}: posterior vs LR curve")
    figure.suptitle(f"{spec.study} table {spec.table} column {spec.column}: threshold "
                    f"posterior{settings.figure_suffix}")
    figure.tight_layout()
    path = out_dir / f"threshold_posterior_{stem}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    paths.append(path)

    tidy = fit.tidy(auxiliary=False)
    regime = tidy[tidy["term"].str.contains("_regime")]
    reference = frequentist.tidy().set_index("term")
    figure, axis = plt.subplots(figsize=(6, 0.6 * len(regime) + 1.5))
    positions = np.arange(len(regime))
    axis.errorbar(regime["estimate"], positions + 0.1,
                  xerr=[regime["estimate"] - regime["ci_low"],
                        regime["ci_high"] - regime["estimate"]],
                  fmt="o", color="C0", label="posterior mean, 94% HDI")
    freq = reference.loc[regime["term"]]
    axis.errorbar(freq["estimate"], positions - 0.1,
                  xerr=[freq["estimate"] - freq["ci_low"], freq["ci_high"] - freq["estimate"]],
                  fmt="s", color="C3", label="frequentist, 95% CI")
    axis.set_yticks(positions, [rename.get(t, t) for t in regime["term"]])
    axis.axvline(0.0, color="grey", lw=0.6)
    axis.legend(loc="best", fontsize=8)
    axis.set_title(f"{spec.study} table {spec.table} column {spec.column}: regime "
                   f"slopes{settings.figure_suffix}", fontsize=9)
    figure.tight_layout()
    path = out_dir / f"regime_slopes_{stem}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    paths.append(path)
    return paths

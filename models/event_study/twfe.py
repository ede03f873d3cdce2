"""Event-study TWFE of a policy year with a time-invariant treatment group.

Model
-----
    y_it = sum_{k != ref} b_k Treat_i 1[t = k] + x_it' g + a_i + l_t + e_it

``Treat_i`` is 1 for units whose value of a unit-level variable (Zhu, Leng & Zhang 2025: the
2015 secondary-sector share of GDP) lies above the median unit, ``ref`` the omitted reference
year (2015, the year before the 2016 plan), a_i and l_t unit and year effects, x_it optional
controls. Every year of the sample other than ``ref`` gets its own coefficient b_k, reported as
``Treat_x_<year>``. Errors are clustered by unit (or heteroskedasticity-robust / classical, as
asked), estimated by pyfixest.

Outcomes are counts read on the log scale, ``ln(1 + count)``. A count of -1 or less (net entries,
entries minus exits, can be negative) has no such log; those rows are dropped, as the paper's
smaller N for net entries implies.

Pre-trends: the joint Wald test of b_k = 0 for every k < ref, W = b_pre' V_pre^{-1} b_pre,
reported as F = W / q with q restrictions and G - 1 denominator degrees of freedom when
clustered (N - k - k_fe otherwise), as pyfixest's ``wald_test``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
from scipy import stats

from data.errors import DataError
from models.panel.fe import (
    TIDY_COLUMNS,
    coefficient_table,
    few_treated_clusters,
    pyfixest_vcov,
)

TERM_PREFIX = "Treat_x_"
TRANSFORMS = ("log1p", "none")


@dataclass(frozen=True)
class EventStudyFit:
    """A fitted event study: per-year coefficients, the pre-trend test and the sample."""

    outcome: str
    reference: int
    transform: str
    table: pd.DataFrame
    n_obs: int
    n_dropped: int
    r2: float
    pretrend_stat: float
    pretrend_p_value: float
    pretrend_df: tuple[int, int]
    # Covariance of the Treat x year coefficients, in the order of the table's rows.
    cov: np.ndarray | None = None

    def tidy(self) -> pd.DataFrame:
        """Treat x year rows, then ``pretrend_wald`` and ``R2``."""
        return self.table.copy()

    def path(self) -> pd.DataFrame:
        """Year, estimate and 95% interval, with the reference year at zero."""
        rows = self.table[self.table["term"].str.startswith(TERM_PREFIX)].copy()
        rows["year"] = rows["term"].str.removeprefix(TERM_PREFIX).astype(int)
        reference = pd.DataFrame({"year": [self.reference], "estimate": [0.0],
                                  "ci_low": [0.0], "ci_high": [0.0]})
        out = pd.concat([rows[["year", "estimate", "ci_low", "ci_high"]], reference])
        return out.sort_values("year").reset_index(drop=True)


def treatment_indicator(
    frame: pd.DataFrame, variable: str, unit: str = "city"
) -> pd.Series:
    """Treat_i = 1[v_i > median_j v_j], the median taken over units (one value per unit); a
    0/1 column is the treatment itself (its median would put every unit in one group when at
    least half the units are treated).

    Returns a 0/1 integer series aligned with ``frame``'s rows.

    Raises
    ------
    DataError
        If ``variable`` is missing, missing for a unit, or not constant within a unit.
    """
    for name in (unit, variable):
        if name not in frame.columns:
            raise DataError(f"event study needs column '{name}' [rule: required columns]")
    spread = frame.groupby(unit)[variable].agg(["min", "max", "count", "size"])
    varying = spread.index[(spread["max"] - spread["min"]).abs() > 1e-9]
    if len(varying):
        raise DataError(
            f"column '{variable}' must be constant within each {unit} (it defines the "
            f"treatment group); it varies in {list(varying[:5])} [rule: unit-level treatment]")
    lacking = spread.index[spread["count"] == 0]
    if len(lacking):
        raise DataError(f"column '{variable}' is missing for {unit} {list(lacking[:5])} "
                        "[rule: every unit needs its treatment variable]")
    per_unit = spread["max"]
    if set(per_unit.unique()) <= {0, 1}:
        treated = per_unit.astype(int)
    else:
        treated = (per_unit > per_unit.median()).astype(int)
    return frame[unit].map(treated).astype(int).rename("treat")


def log_count_outcome(counts: pd.Series, transform: str = "log1p") -> pd.Series:
    """ln(1 + count), NaN where count <= -1 (no log); ``transform="none"`` keeps the values."""
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, not '{transform}'")
    values = counts.astype(float)
    if transform == "none":
        return values
    return np.log1p(values.where(values > -1))


def fit_event_study(
    frame: pd.DataFrame,
    outcome: str,
    treat_variable: str,
    controls: list[str] | tuple[str, ...] = (),
    unit: str = "city",
    time: str = "year",
    reference: int = 2015,
    vcov: str = "cluster:city",
    transform: str = "log1p",
) -> EventStudyFit:
    """Fit y_it = sum_{k != ref} b_k Treat_i 1[t = k] + x_it' g + a_i + l_t + e_it.

    Parameters
    ----------
    frame
        Panel in long form.
    outcome
        Column of the raw outcome (a count when ``transform="log1p"``).
    treat_variable
        Unit-level column whose above-median units form the treatment group.
    controls
        Time-varying controls x_it (may be empty).
    reference
        Omitted year; it must be a year of the sample.
    vcov
        ``"cluster:<col>"``, ``"hetero"`` or ``"iid"``.
    transform
        ``"log1p"`` (rows with outcome <= -1 dropped) or ``"none"``.

    Returns
    -------
    EventStudyFit
        Coefficients ``Treat_x_<year>`` for every sample year but ``reference``, the
        pre-trend Wald test (term ``pretrend_wald``) and R2.
    """
    controls = list(controls)
    needed = [unit, time, outcome, treat_variable, *controls]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"event study needs column(s) {missing} [rule: required columns]")
    data = frame[list(dict.fromkeys(needed))].copy()
    data["_treat"] = treatment_indicator(data, treat_variable, unit)
    data["_y"] = log_count_outcome(data[outcome], transform)
    n_dropped = int(data["_y"].isna().sum() - data[outcome].isna().sum())
    data = data.dropna(subset=["_y", *controls])
    years = sorted(int(y) for y in data[time].unique())
    if reference not in years:
        raise DataError(f"reference year {reference} is not in column '{time}' "
                        f"(years {years[0]}-{years[-1]}) [rule: reference year present]")
    if data["_treat"].nunique() < 2:
        raise DataError(f"column '{treat_variable}' puts every {unit} in one group "
                        "[rule: treated and control units]")
    event_years = [y for y in years if y != reference]
    terms = [f"{TERM_PREFIX}{y}" for y in event_years]
    for year, term in zip(event_years, terms, strict=True):
        data[term] = data["_treat"] * (data[time] == year).astype(int)
    formula = f"_y ~ {' + '.join(terms + controls)} | {unit} + {time}"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*singleton.*")
        fit = pf.feols(formula, data=data, vcov=pyfixest_vcov(vcov))
    table = coefficient_table(fit)
    table = table[table["term"].isin(terms)].reset_index(drop=True)
    pre = [t for y, t in zip(event_years, terms, strict=True) if y < reference]
    stat, p_value, df = _pretrend_wald(fit, pre)
    names = list(fit._coefnames)
    index = [names.index(t) for t in terms]
    cov = np.asarray(fit._vcov)[np.ix_(index, index)]
    n_obs = int(fit._N)
    extra = pd.DataFrame({"term": ["pretrend_wald", "R2"], "estimate": [np.nan, fit._r2],
                          "stat": [stat, np.nan], "p_value": [p_value, np.nan]})
    table = pd.concat([table, extra], ignore_index=True)
    table["n_obs"] = n_obs
    table["note"] = ""
    if vcov.startswith("cluster:"):
        notes = few_treated_clusters(data, terms, vcov.split(":", 1)[1])
        table["note"] = table["term"].map(notes).fillna("")
        if notes:
            table.loc[table["term"] == "pretrend_wald", "note"] = (
                "rests on the same few treated clusters as the coefficients: it cannot be "
                "trusted")
    return EventStudyFit(
        outcome=outcome, reference=reference, transform=transform,
        table=table[[*TIDY_COLUMNS, "note"]],
        n_obs=n_obs, n_dropped=n_dropped, r2=float(fit._r2), pretrend_stat=stat,
        pretrend_p_value=p_value, pretrend_df=df, cov=cov,
    )


def _pretrend_wald(fit, pre_terms: list[str]) -> tuple[float, float, tuple[int, int]]:
    """F = W / q for b_pre = 0 with the fit's own covariance (pyfixest's degrees of freedom)."""
    if not pre_terms:
        return np.nan, np.nan, (0, 0)
    names = list(fit._coefnames)
    index = [names.index(t) for t in pre_terms]
    beta = np.asarray(fit._beta_hat)[index]
    cov = np.asarray(fit._vcov)[np.ix_(index, index)]
    wald = float(beta @ np.linalg.solve(cov, beta))
    q = len(index)
    if fit._is_clustered:
        dfd = int(np.min(np.array(fit._G))) - 1
    else:
        k_fe = int(np.sum(fit._k_fe.values)) if fit._has_fixef else 0
        dfd = int(fit._N - fit._k - k_fe)
    f_stat = wald / q
    return f_stat, float(stats.f.sf(f_stat, q, dfd)), (q, dfd)


def plot_event_study(fit: EventStudyFit, path: str | Path, title: str) -> Path:
    """Coefficient plot: b_k with 95% intervals by year, the reference year marked at zero."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    points = fit.path()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.axvline(fit.reference + 0.5, color="grey", lw=0.8, ls=":")
    est = points[points["year"] != fit.reference]
    ax.errorbar(est["year"], est["estimate"],
                yerr=[est["estimate"] - est["ci_low"], est["ci_high"] - est["estimate"]],
                fmt="o", color="C0", capsize=3, label="Treat x year, 95% CI")
    ax.plot([fit.reference], [0.0], marker="s", color="C3", ls="none",
            label=f"{fit.reference} (reference)")
    ax.set_xticks(points["year"])
    ax.set_xlabel("year")
    ax.set_ylabel(f"ln(1 + {fit.outcome})" if fit.transform == "log1p" else fit.outcome)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

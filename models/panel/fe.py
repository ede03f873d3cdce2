"""Frequentist fixed-effects panel regression (the TWFE family of every study).

Model
-----
    y_it = x_it' beta + a_i + d_t + e_it

with unit effects a_i and period effects d_t (or any set of absorbed effects, such as province
and province x year), estimated by the within transformation (pyfixest ``feols``). Standard
errors: heteroskedasticity-robust (HC1, ``"hetero"``), clustered (``"cluster:<column>"``) or
classical (``"iid"``).

The papers print a constant, which a within estimator does not have. We report Stata's
``xtreg, fe`` constant with year dummies: the mean of y - x' beta - D' gamma over the sample,
where D are the period dummies with the first period as base. Its standard error comes from the
same sandwich as the slopes, applied to the regression of y_it - ybar_i + ybar on
x_it - xbar_i + xbar (and the dummies) with an intercept, as ``xtreg`` does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyfixest as pf
from scipy import stats

TIDY_COLUMNS = ["term", "estimate", "std_error", "ci_low", "ci_high", "stat", "p_value", "n_obs"]


@dataclass(frozen=True)
class PanelFit:
    """A fitted fixed-effects regression: coefficients in the results-contract shape."""

    outcome: str
    regressors: tuple[str, ...]
    effects: tuple[str, ...]
    vcov: str
    table: pd.DataFrame
    n_obs: int
    r2: float
    r2_within: float
    extras: dict = field(default_factory=dict)

    def tidy(self) -> pd.DataFrame:
        """Coefficients plus the constant and R2, one row per term."""
        return self.table.copy()

    def coef(self, term: str) -> float:
        return float(self.table.set_index("term").loc[term, "estimate"])


def coefficient_table(fit) -> pd.DataFrame:
    """A pyfixest fit's coefficients in the project's columns: term, estimate, std_error,
    ci_low, ci_high (95%), stat (t), p_value."""
    tidy = fit.tidy().reset_index()
    return pd.DataFrame({
        "term": tidy["Coefficient"].astype(str),
        "estimate": tidy["Estimate"].to_numpy(float),
        "std_error": tidy["Std. Error"].to_numpy(float),
        "ci_low": tidy["2.5%"].to_numpy(float),
        "ci_high": tidy["97.5%"].to_numpy(float),
        "stat": tidy["t value"].to_numpy(float),
        "p_value": tidy["Pr(>|t|)"].to_numpy(float),
    })


def pyfixest_vcov(vcov: str) -> str | dict:
    """Translate ``"hetero"``, ``"iid"`` or ``"cluster:<col>"`` to pyfixest's vcov argument."""
    if vcov.startswith("cluster:"):
        return {"CRV1": vcov.split(":", 1)[1]}
    if vcov in ("hetero", "iid", "HC1", "HC3"):
        return vcov
    raise ValueError(f"unknown standard-error type '{vcov}' (use hetero, iid or cluster:<col>)")


def fit_twfe(
    frame: pd.DataFrame,
    outcome: str,
    regressors: list[str],
    effects: list[str],
    vcov: str = "hetero",
    constant: bool = True,
) -> PanelFit:
    """Fit y = X beta + absorbed effects by the within estimator.

    Parameters
    ----------
    frame
        Panel in long form.
    outcome, regressors
        Column names.
    effects
        Absorbed effects in pyfixest syntax, e.g. ``["city", "year"]`` or
        ``["city", "province^year"]``; empty for pooled OLS with an intercept.
    vcov
        ``"hetero"`` (HC1), ``"iid"`` or ``"cluster:<column>"``.
    constant
        Also report Stata's ``xtreg, fe`` constant (needs exactly a unit and a period effect).
    """
    _check_effects(frame, outcome, regressors, effects)
    rhs = " + ".join(regressors)
    formula = f"{outcome} ~ {rhs}" + (f" | {' + '.join(effects)}" if effects else "")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*singleton.*")
        # pyfixest drops collinear regressors with a warning; that is refused below instead.
        warnings.filterwarnings("ignore", message="(?s).*multicollinearity")
        fit = pf.feols(formula, data=frame, vcov=pyfixest_vcov(vcov))
    dropped = [name for name in regressors if name not in fit.coef().index]
    if dropped:
        raise ValueError(
            f"Regressor(s) {dropped} are collinear with the other regressors or absorbed by the "
            f"effects {effects} (no variation left after removing them); a model that drops "
            "them silently would report different numbers, so drop them from the formula.")
    table = coefficient_table(fit)
    table.loc[table["term"] == "Intercept", "term"] = "Constant"
    n_obs = int(fit._N)
    if constant and len(effects) == 2 and "^" in effects[1]:
        table = pd.concat([table, _reghdfe_constant(frame, outcome, regressors, fit)],
                          ignore_index=True)
    elif constant and len(effects) == 2 and "^" not in "".join(effects):
        table = pd.concat(
            [table, _xtreg_constant(frame, outcome, regressors, effects, vcov, fit)],
            ignore_index=True,
        )
    r2 = float(fit._r2)
    r2_within = float(fit._r2_within) if effects else r2
    table = pd.concat(
        [table, pd.DataFrame({"term": ["R2"], "estimate": [r2]})], ignore_index=True
    )
    table["n_obs"] = n_obs
    columns = list(dict.fromkeys([outcome, *regressors,
                                  *(c for e in effects for c in e.split("^"))]))
    dropped_rows = len(frame[columns].dropna()) - n_obs
    if dropped_rows > 0:
        # pyfixest drops fixed-effect singletons as reghdfe does; the Bayesian model keeps
        # them (their unit effect is shrunk, not free), so its n_obs is larger.
        existing = table["note"].fillna("") if "note" in table else [""] * len(table)
        singleton = (f"{dropped_rows} row(s) whose effect level is observed once (singletons) "
                     "dropped, as reghdfe does")
        table["note"] = [f"{note}; {singleton}" if note else singleton for note in existing]
    if vcov.startswith("cluster:"):
        notes = few_treated_clusters(frame, regressors, vcov.split(":", 1)[1])
        if notes:
            existing = table["note"].fillna("") if "note" in table else [""] * len(table)
            table["note"] = [note or notes.get(term, "")
                             for term, note in zip(table["term"], existing, strict=True)]
    return PanelFit(
        outcome=outcome,
        regressors=tuple(regressors),
        effects=tuple(effects),
        vcov=vcov,
        table=table[[c for c in [*TIDY_COLUMNS, "note"] if c in table]],
        n_obs=n_obs,
        r2=r2,
        r2_within=r2_within,
    )


# Beyond this a column's squares and cross-products leave the float64 range of exact sums.
MAX_MAGNITUDE = 1e100


def _check_effects(frame: pd.DataFrame, outcome: str, regressors: list[str],
                   effects: list[str]) -> None:
    """Refuse a sample on which the model cannot be estimated: a missing column, values too
    large to square, or an effect with fewer than two levels (one unit: the unit effect absorbs
    every regressor's level and the within estimator has nothing to work with)."""
    columns = [outcome, *regressors, *(c for e in effects for c in e.split("^"))]
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise ValueError(f"Column(s) {missing} not in the data; columns are {list(frame.columns)}.")
    complete = frame[list(dict.fromkeys(columns))].dropna()
    if complete.empty:
        raise ValueError(f"No row has every one of {list(dict.fromkeys(columns))} observed.")
    for column in [outcome, *regressors]:
        values = pd.to_numeric(complete[column], errors="coerce").abs()
        if values.max() > MAX_MAGNITUDE:
            raise ValueError(
                f"Column {column!r} holds values up to {values.max():.3g} (first at row "
                f"{values.idxmax()}); their squares overflow the least-squares sums. Rescale "
                "it (e.g. to thousands or logs) before fitting.")
    for effect in effects:
        levels = complete.groupby(effect.split("^")).ngroups
        if levels < 2:
            raise ValueError(
                f"The effect {effect!r} has {levels} level in the sample ({len(complete)} rows); "
                "fixed effects need at least two units (or periods) to leave any within "
                "variation.")


# Below this many clusters holding a binary regressor's ones, cluster-robust errors of its
# coefficient over-reject badly (MacKinnon & Webb 2017, J. Applied Econometrics 32(2): with
# one to a few treated clusters the t test rejects a true null far more often than its size).
MIN_TREATED_CLUSTERS = 10


def few_treated_clusters(frame: pd.DataFrame, regressors: list[str], cluster: str
                         ) -> dict[str, str]:
    """A warning per binary (0/1) regressor whose ones fall in fewer than
    :data:`MIN_TREATED_CLUSTERS` clusters: its cluster-robust standard error cannot be
    trusted, however large its t statistic."""
    notes = {}
    for name in regressors:
        values = frame[name].dropna()
        if values.empty or not values.isin([0, 1]).all() or values.nunique() < 2:
            continue
        treated = frame.loc[frame[name] == 1, cluster].nunique()
        if treated < MIN_TREATED_CLUSTERS:
            total = frame[cluster].nunique()
            notes[name] = (
                f"the cluster-robust error rests on {treated} of {total} clusters with "
                f"{name} = 1; with fewer than {MIN_TREATED_CLUSTERS} it understates the "
                "uncertainty and the t statistic cannot be trusted")
    return notes


def _reghdfe_constant(frame, outcome, regressors, fit) -> pd.DataFrame:
    """reghdfe's constant, mean(y) - mean(x)'b, for effects such as ``province^year``.

    With city effects nested in provinces, province x year dummies are collinear with the city
    effects, so an ``xtreg``-style constant would depend on which dummies the software drops;
    reghdfe's convention (every absorbed effect centred at zero) is unique. No standard error
    is reported for it.
    """
    data = frame[[outcome, *regressors]].dropna()
    slopes = np.array([fit.coef()[name] for name in regressors])
    estimate = float(data[outcome].mean() - data[regressors].mean().to_numpy() @ slopes)
    return pd.DataFrame({"term": ["Constant"], "estimate": [estimate],
                         "note": ["reghdfe convention mean(y) - mean(x)'b; no standard error"]})


def _xtreg_constant(frame, outcome, regressors, effects, vcov, fit) -> pd.DataFrame:
    """Stata ``xtreg, fe`` constant (period dummies, first period as base) and its t."""
    unit, period = effects
    data = frame[[unit, period, outcome, *regressors]].dropna()
    dummies = pd.get_dummies(data[period], prefix="_d", drop_first=True, dtype=float)
    design = pd.concat([data[regressors].astype(float), dummies], axis=1)
    y = data[outcome].to_numpy(float)
    x = design.to_numpy(float)
    groups = data[unit].to_numpy()

    def recentre(values: np.ndarray) -> np.ndarray:
        means = pd.DataFrame(values).groupby(groups).transform("mean").to_numpy()
        return values - means + values.mean(axis=0)

    y_t = recentre(y[:, None])[:, 0]
    x_t = np.column_stack([recentre(x), np.ones(len(y))])
    coef, *_ = np.linalg.lstsq(x_t, y_t, rcond=None)
    resid = y_t - x_t @ coef
    n, k = x_t.shape
    n_units = len(np.unique(groups))
    bread = np.linalg.pinv(x_t.T @ x_t)
    if vcov.startswith("cluster:"):
        cluster = data[vcov.split(":", 1)[1]].to_numpy()
        scores = pd.DataFrame(x_t * resid[:, None]).groupby(cluster).sum().to_numpy()
        g = scores.shape[0]
        meat = scores.T @ scores * (g / (g - 1)) * ((n - 1) / (n - k - n_units + 1))
    elif vcov == "iid":
        meat = (x_t.T @ x_t) * (resid @ resid) / (n - k - n_units + 1)
    else:
        meat = (x_t * resid[:, None] ** 2).T @ x_t * n / (n - k - n_units + 1)
    cov = bread @ meat @ bread
    estimate, se = coef[-1], float(np.sqrt(cov[-1, -1]))
    dof = n - k - n_units + 1
    t_stat = estimate / se
    crit = stats.t.ppf(0.975, dof)
    return pd.DataFrame({
        "term": ["Constant"],
        "estimate": [estimate],
        "std_error": [se],
        "ci_low": [estimate - crit * se],
        "ci_high": [estimate + crit * se],
        "stat": [t_stat],
        "p_value": [2 * stats.t.sf(abs(t_stat), dof)],
    })


def partial_out(
    frame: pd.DataFrame, columns: list[str], controls: list[str], effects: list[str]
) -> np.ndarray:
    """Residuals of ``columns`` after absorbing ``effects`` and regressing on ``controls``.

    Effects are removed by alternating projections (pyfixest ``demean``, tolerance 1e-13),
    then the demeaned controls by least squares (Frisch-Waugh-Lovell).
    """
    from pyfixest.estimation import demean

    values = frame[columns + controls].to_numpy(float)
    if effects:
        codes = np.column_stack([effect_codes(frame, e) for e in effects]).astype(np.uint64)
        values, converged = demean(values, codes, np.ones(len(frame)), tol=1e-13,
                                   maxiter=100_000)
        if not converged:
            raise RuntimeError(f"demeaning by {effects} did not converge")
    else:
        values = values - values.mean(axis=0)
    target, design = values[:, : len(columns)], values[:, len(columns):]
    if design.shape[1]:
        coef, *_ = np.linalg.lstsq(design, target, rcond=None)
        target = target - design @ coef
    return target


def effect_codes(frame: pd.DataFrame, effect: str) -> np.ndarray:
    parts = effect.split("^")
    keys = frame[parts].astype(str).agg("|".join, axis=1) if len(parts) > 1 else frame[effect]
    return pd.factorize(keys)[0]

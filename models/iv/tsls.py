"""Panel two-stage least squares with absorbed fixed effects, and weak-instrument diagnostics.

Model
-----
Structural equation and first stage (one row per unit i and period t):

    y_it = x_it' beta + w_it' gamma + a_i + d_t + u_it
    x_it = Pi' z_it + w_it' G + b_i + e_t + v_it

with endogenous regressors x (K of them), excluded instruments z (L >= K), included exogenous
controls w and absorbed effects (any pyfixest effects, usually unit and period). beta is
estimated by 2SLS on the within-transformed data (the effects swept out by alternating
projections, pyfixest's ``demean``; any K >= 1, which pyfixest's own IV does not take; with no
effects, an intercept). Standard errors: heteroskedasticity-robust HC1 with every
absorbed level counted in the degrees of freedom, ``N / (N - k)``, as Stata's
``ivregress 2sls ... i.unit i.period, vce(robust) small``; or city-clustered CRV1,
``G / (G - 1) * (N - 1) / (N - k)``, where effects nested in the cluster are not counted
(one parameter, fixest's ``"nonnested"`` rule); or classical (``"iid"``,
``s^2 = u'u / (N - k)``). t tests with N - k degrees of freedom (G - 1 when clustered), as
pyfixest. Without absorbed effects these are Stata's ``ivregress 2sls, vce(robust) small`` and
``vce(cluster c) small``.

Constant
--------
The papers print a constant. As for :mod:`models.panel.fe` we report Stata's ``xtreg, fe``
constant: 2SLS of ``y_it - ybar_i + ybar`` on the same recentred regressors, period dummies
(first period as base) and an intercept, instrumenting with the recentred instruments; the
intercept is ``mean(y - x' beta - w' gamma - D' delta)`` and its standard error comes from the
2SLS sandwich with the same small-sample constant as the slopes.

Diagnostics (Kleibergen & Paap 2006, as ``ivreg2`` / ``ivreghdfe`` print them)
-------------------------------------------------------------------------------
Partial the controls and absorbed effects out of x and z (``x~``, ``z~``). ``ranktest``
forms ``T = F' Pi_hat G^{-1}'`` with ``F F' = z~'z~`` and ``G G' = x~'x~`` (Cholesky), takes its
singular value decomposition ``T = U S V'`` and tests ``rank(Pi) = K - 1`` with

    rk = lambda' Omega^{-1} lambda,  lambda = (B_q kron A_q') vec(T),
    Omega = (B_q kron A_q') W (B_q kron A_q')',

where ``A_q``, ``B_q`` are built from the trailing blocks of ``U`` and ``V`` and ``W`` is the
robust covariance of ``vec(T)``, ``W = N (G^{-1} kron F^{-1}) S (G^{-1} kron F^{-1})'`` with
``S = (1/N) sum_i (e_i kron z~_i)(e_i kron z~_i)'`` (sums within clusters first when
clustered). The **LM** version takes ``e = x~`` (residuals under the null of no
relation); the **Wald** version takes the first-stage residuals ``e = x~ - z~ Pi_hat``. With
K = L = 1 both reduce to the familiar scalars ``(z~'x~)^2 / sum z~_i^2 e_i^2``.

``ivreghdfe`` (``absorb(unit period)``) then reports, non-clustered,

    KP rk LM       = rk_LM,                                   chi2 with L - K + 1 df
    KP rk Wald F   = rk_Wald / N * (N - L - K_w - df_a) / L,

with ``K_w`` included exogenous regressors and ``df_a`` absorbed degrees of freedom; clustered,
``rk_Wald / (N - 1) * (N - L - K_w - df_a) * (G - 1) / G / L`` where an effect nested in the
cluster counts as one parameter (fixest's ``"nonnested"`` rule, as pyfixest's CRV1). The
parameters counted are the instruments', L + K_w, not the second stage's K + K_w: the two
differ when the model is over-identified. These constants make the rk Wald F equal the robust
(HC1 with every absorbed level counted, or CRV1) first-stage Wald F on the excluded
instruments when K = 1, which is the check we test. ``xtivreg2, fe`` differs only in the LM
statistic, which it multiplies by ``(N - n_units) / N`` (``convention="xtivreg2"``).

The Cragg-Donald Wald F is ``N ev / (1 - ev) / N * (N - L - K_w - df_a) / L``, ev the
smallest squared canonical correlation of x~ and z~ (ivreg2's ``cdf``). Hansen's J (robust or
clustered, see :func:`models.iv.diagnostics.hansen_j`) is the efficient-GMM criterion at the
two-step estimate with the 2SLS residuals' moment covariance, chi2 with L - K df, on the
within-transformed data as ``ivreghdfe`` computes it.

The Stock & Yogo (2005, Table 5.2) critical values for the maximal size of a nominal 5% Wald
test based on 2SLS are in :data:`STOCK_YOGO_2SLS_SIZE`.

References: Kleibergen, F. and Paap, R. (2006), J. Econometrics 133, 97-126; Stock, J. H. and
Yogo, M. (2005), in Andrews & Stock (eds.), Identification and Inference for Econometric
Models, 80-108; Baum, Schaffer and Stillman (2007), Stata Journal 7, 465-506 (ivreg2);
Kleibergen & Schaffer (2007), ranktest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from models.iv.diagnostics import (
    hansen_j,
    kleibergen_paap,
    stock_yogo_critical_value,
)
from models.panel.fe import TIDY_COLUMNS, effect_codes, fit_twfe, partial_out

__all__ = ["IVFit", "fit_panel_iv", "two_stage_least_squares"]


@dataclass(frozen=True)
class IVFit:
    """A fitted panel 2SLS model: first stages, second stage and identification tests."""

    outcome: str
    endogenous: tuple[str, ...]
    instruments: tuple[str, ...]
    exogenous: tuple[str, ...]
    effects: tuple[str, ...]
    vcov: str
    first_stage: dict[str, pd.DataFrame]
    second_stage: pd.DataFrame
    diagnostics: dict[str, float]
    n_obs: int
    extras: dict = field(default_factory=dict)

    def tidy(self) -> pd.DataFrame:
        """Second-stage coefficients, the constant and R2, then the diagnostics as terms."""
        diag = pd.DataFrame({"term": list(self.diagnostics),
                             "estimate": list(self.diagnostics.values())})
        diag["n_obs"] = self.n_obs
        return pd.concat([self.second_stage, diag], ignore_index=True)


def fit_panel_iv(
    frame: pd.DataFrame,
    outcome: str,
    endogenous: list[str],
    instruments: list[str],
    exogenous: list[str],
    effects: list[str],
    vcov: str = "hetero",
    convention: str = "ivreghdfe",
) -> IVFit:
    """Panel 2SLS ``y = x' beta + w' gamma + effects + u`` with ``x`` instrumented by ``z``.

    Parameters
    ----------
    frame
        Panel in long form; rows with a missing value in any used column are dropped.
    outcome, endogenous, instruments, exogenous
        Column names: y, x (K >= 1), excluded instruments z (L >= K), included controls w.
    effects
        Absorbed effects in pyfixest syntax (``["city", "year"]``, ``"province^year"``); an
        empty list fits an intercept instead.
    vcov
        ``"hetero"`` (HC1), ``"cluster:<column>"`` (CRV1) or ``"iid"``; the diagnostics use
        the same (``"iid"`` makes the KP statistics Anderson's LM and Cragg-Donald's Wald).
    convention
        ``"ivreghdfe"`` (KP rk LM as ranktest returns it) or ``"xtivreg2"`` (LM times
        ``(N - n_units) / N``, ``effects[0]`` being the unit). The rk Wald F is the same.

    Returns
    -------
    IVFit
        ``first_stage[x]`` is the first-stage table (instruments, controls, Constant, R2) plus
        ``partial_r2`` and ``first_stage_f`` rows (the Wald F of the excluded instruments with
        the same standard errors); ``second_stage`` the 2SLS table; ``diagnostics`` holds
        ``kp_rk_lm``, ``kp_rk_lm_p``, ``kp_rk_lm_df``, ``kp_rk_wald_f``, ``cragg_donald_f``,
        ``stock_yogo_10pct`` (NaN when not tabulated), and, when the model is over-identified
        and the errors robust or clustered, ``hansen_j``, ``hansen_j_p``, ``hansen_j_df``.
    """
    if convention not in ("ivreghdfe", "xtivreg2"):
        raise ValueError(f"convention must be 'ivreghdfe' or 'xtivreg2', not '{convention}'")
    endogenous, instruments = list(endogenous), list(instruments)
    exogenous, effects = list(exogenous), list(effects)
    if not endogenous:
        raise ValueError("no endogenous regressor given")
    overlap = set(endogenous) & set(exogenous + instruments)
    if overlap:
        raise ValueError(f"{sorted(overlap)} listed both as endogenous and as exogenous")
    overlap = set(instruments) & set(exogenous)
    if overlap:
        raise ValueError(f"{sorted(overlap)} listed both as excluded instrument and as control")
    if len(instruments) < len(endogenous):
        raise ValueError(f"{len(instruments)} instrument(s) {instruments} for "
                         f"{len(endogenous)} endogenous regressor(s) {endogenous}: "
                         "underidentified [rule: at least as many instruments as endogenous]")
    if convention == "xtivreg2" and not effects:
        raise ValueError("convention 'xtivreg2' needs the unit as the first absorbed effect")
    cluster = _cluster_column(vcov)
    used = [outcome, *endogenous, *instruments, *exogenous,
            *[p for e in effects for p in e.split("^")], *([cluster] if cluster else [])]
    missing = [c for c in dict.fromkeys(used) if c not in frame.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the data")
    data = frame[list(dict.fromkeys(used))].dropna().reset_index(drop=True)
    n_obs = len(data)
    clusters = data[cluster].to_numpy() if cluster else None

    # The second stage on the within-transformed data (Frisch-Waugh-Lovell for the effects).
    within = partial_out(data, [outcome, *endogenous, *exogenous, *instruments], [], effects)
    n_x = len(endogenous) + len(exogenous)
    y_w = within[:, 0]
    x_w = within[:, 1: 1 + n_x]
    z_w = np.column_stack([within[:, 1 + n_x:], within[:, 1 + len(endogenous): 1 + n_x]])
    _check_rank(x_w, [*endogenous, *exogenous], "regressors")
    _check_rank(z_w, [*instruments, *exogenous], "instruments")
    first_stage = {name: fit_twfe(data, name, [*instruments, *exogenous], effects,
                                  vcov=vcov).tidy() for name in endogenous}
    df_k_second = _df_k(data, n_x, effects, cluster)
    coef, cov, resid = _within_2sls(y_w, x_w, z_w, vcov, clusters, df_k_second)
    dof = (len(np.unique(clusters)) - 1) if cluster else n_obs - df_k_second
    second = _coefficient_table([*endogenous, *exogenous], coef, cov, dof)
    if len(effects) == 2 and "^" not in "".join(effects):
        constant = _xtreg_iv_constant(data, outcome, endogenous, instruments, exogenous,
                                      effects, vcov)
        second = pd.concat([second, constant], ignore_index=True)
    elif not effects:
        intercept = _intercept(data, outcome, [*endogenous, *exogenous],
                               [*instruments, *exogenous], vcov, clusters, df_k_second, dof)
        second = pd.concat([second, intercept], ignore_index=True)
    y = data[outcome].to_numpy(float)
    r2 = 1.0 - resid @ resid / np.sum((y - y.mean()) ** 2)
    second = pd.concat([second, pd.DataFrame({"term": ["R2"], "estimate": [r2]})],
                       ignore_index=True)
    second["n_obs"] = n_obs

    x_tilde = partial_out(data, endogenous, exogenous, effects)
    z_tilde = partial_out(data, instruments, exogenous, effects)
    covariance = "iid" if vcov == "iid" else "robust"
    rank = kleibergen_paap(x_tilde, z_tilde, clusters=clusters, covariance=covariance)
    iid_rank = rank if vcov == "iid" else kleibergen_paap(x_tilde, z_tilde, covariance="iid")
    n_excluded = len(instruments)
    # ivreg2 counts the instruments (excluded and included) and the absorbed levels here, not
    # the second stage's parameters: the two differ when the model is over-identified.
    df_k = _df_k(data, n_excluded + len(exogenous), effects, cluster)
    lm = rank.lm
    if cluster is None:
        wald_f = rank.wald / n_obs * (n_obs - df_k) / n_excluded
        if convention == "xtivreg2":
            lm *= (n_obs - data[effects[0]].nunique()) / n_obs
    else:
        g = rank.n_clusters
        wald_f = rank.wald / (n_obs - 1) * (n_obs - df_k) * (g - 1) / g / n_excluded
    # Cragg-Donald uses the full count of absorbed levels even when clustered.
    df_k_iid = _df_k(data, n_excluded + len(exogenous), effects, None)
    cragg_donald = iid_rank.wald / n_obs * (n_obs - df_k_iid) / n_excluded
    try:
        sy10 = stock_yogo_critical_value(len(endogenous), n_excluded, 0.10)
    except KeyError:
        sy10 = float("nan")
    diagnostics = {
        "kp_rk_lm": lm,
        "kp_rk_lm_p": float(stats.chi2.sf(lm, rank.df)),
        "kp_rk_lm_df": float(rank.df),
        "kp_rk_wald_f": wald_f,
        "cragg_donald_f": cragg_donald,
        "stock_yogo_10pct": sy10,
    }
    if vcov != "iid" and n_excluded > len(endogenous):
        j_stat, j_df = hansen_j(y_w, x_w, z_w, clusters=clusters)
        diagnostics.update(hansen_j=j_stat, hansen_j_p=float(stats.chi2.sf(j_stat, j_df)),
                           hansen_j_df=float(j_df))
    for j, name in enumerate(endogenous):
        first_stage[name] = _add_first_stage_rows(first_stage[name], x_tilde[:, j], z_tilde,
                                                  n_obs, vcov, clusters, df_k)
    return IVFit(
        outcome=outcome, endogenous=tuple(endogenous), instruments=tuple(instruments),
        exogenous=tuple(exogenous), effects=tuple(effects), vcov=vcov,
        first_stage=first_stage, second_stage=second[TIDY_COLUMNS], diagnostics=diagnostics,
        n_obs=n_obs, extras={"rank_test": rank, "df_k": df_k, "df_k_second": df_k_second,
                             "cov": cov},
    )


def _cluster_column(vcov: str) -> str | None:
    if vcov.startswith("cluster:"):
        return vcov.split(":", 1)[1]
    if vcov in ("hetero", "HC1", "iid"):
        return None
    raise ValueError(f"IV standard errors must be 'hetero', 'iid' or 'cluster:<col>', "
                     f"not '{vcov}'")


def _check_rank(matrix: np.ndarray, names: list[str], what: str) -> None:
    """Name the columns that add nothing once the effects are swept out (collinear)."""
    if np.linalg.matrix_rank(matrix) == matrix.shape[1]:
        return
    redundant = []
    for j in range(matrix.shape[1]):
        keep = [k for k in range(matrix.shape[1]) if k != j]
        if np.linalg.matrix_rank(matrix[:, keep]) == np.linalg.matrix_rank(matrix):
            redundant.append(names[j])
    raise ValueError(f"the {what} {redundant} are collinear with each other or with the "
                     "absorbed effects [rule: full column rank after the effects]")


def _sandwich(scores: np.ndarray, bread: np.ndarray, vcov: str, clusters, n_obs: int,
              df_k: int, resid: np.ndarray) -> np.ndarray:
    """Covariance with Stata's small-sample constants (HC1, CRV1) or the classical one."""
    if vcov == "iid":
        return bread * (resid @ resid) / (n_obs - df_k)
    if clusters is not None:
        sums = pd.DataFrame(scores).groupby(clusters).sum().to_numpy()
        g = sums.shape[0]
        meat = sums.T @ sums * g / (g - 1) * (n_obs - 1) / (n_obs - df_k)
    else:
        meat = scores.T @ scores * n_obs / (n_obs - df_k)
    return bread @ meat @ bread


def _within_2sls(y, x, z, vcov, clusters, df_k):
    """2SLS of within-transformed y on x with instruments z: (coef, cov, residuals)."""
    projection = z @ np.linalg.lstsq(z, x, rcond=None)[0]
    coef = np.linalg.solve(projection.T @ x, projection.T @ y)
    resid = y - x @ coef
    bread = np.linalg.inv(projection.T @ projection)
    cov = _sandwich(projection * resid[:, None], bread, vcov, clusters, len(y), df_k, resid)
    return coef, cov, resid


def _coefficient_table(terms, coef, cov, dof) -> pd.DataFrame:
    se = np.sqrt(np.diag(cov))
    t_stat = coef / se
    crit = stats.t.ppf(0.975, dof)
    return pd.DataFrame({
        "term": list(terms), "estimate": coef, "std_error": se,
        "ci_low": coef - crit * se, "ci_high": coef + crit * se,
        "stat": t_stat, "p_value": 2 * stats.t.sf(np.abs(t_stat), dof),
    })


def _intercept(data, outcome, regressors, instruments, vcov, clusters, df_k, dof):
    """The intercept of 2SLS without absorbed effects, from the full (uncentred) sandwich."""
    ones = np.ones((len(data), 1))
    x = np.column_stack([data[regressors].to_numpy(float), ones])
    z = np.column_stack([data[instruments].to_numpy(float), ones])
    coef, cov, _ = _within_2sls(data[outcome].to_numpy(float), x, z, vcov, clusters, df_k)
    table = _coefficient_table(["Constant"], coef[-1:], cov[-1:, -1:], dof)
    return table


def _add_first_stage_rows(table: pd.DataFrame, x_tilde: np.ndarray, z_tilde: np.ndarray,
                          n_obs: int, vcov: str, clusters, df_k: int) -> pd.DataFrame:
    """Partial R2 of the excluded instruments and the first-stage Wald F on them, with the
    first stage's own small-sample constant (ivreg2's per-equation first-stage F)."""
    coef, *_ = np.linalg.lstsq(z_tilde, x_tilde, rcond=None)
    fitted = z_tilde @ coef
    resid = x_tilde - fitted
    partial_r2 = float(fitted @ fitted / (x_tilde @ x_tilde))
    bread = np.linalg.inv(z_tilde.T @ z_tilde)
    cov = _sandwich(z_tilde * resid[:, None], bread, vcov, clusters, n_obs, df_k, resid)
    f_stat = float(coef @ np.linalg.solve(cov, coef)) / z_tilde.shape[1]
    extra = pd.DataFrame({"term": ["partial_r2", "first_stage_f"],
                          "estimate": [partial_r2, f_stat], "n_obs": [n_obs, n_obs]})
    return pd.concat([table, extra], ignore_index=True)[TIDY_COLUMNS]


def _df_k(data: pd.DataFrame, n_slopes: int, effects: list[str], cluster: str | None) -> int:
    """Parameters counted in the small-sample constant: slopes plus absorbed levels (minus one
    per extra effect); levels of effects nested in the cluster are left out (fixest's
    ``k_fixef="nonnested"``)."""
    levels = 0 if effects else 1  # without absorbed effects, the intercept
    for index, effect in enumerate(effects):
        codes = effect_codes(data, effect)
        count = len(np.unique(codes)) - (1 if index > 0 else 0)
        if cluster is not None:
            nested = pd.Series(data[cluster].to_numpy()).groupby(codes).nunique().max() == 1
            if nested:
                count = 1 if index == 0 else 0
        levels += count
    return n_slopes + levels


def _xtreg_iv_constant(data, outcome, endogenous, instruments, exogenous, effects,
                       vcov) -> pd.DataFrame:
    """Stata ``xtreg, fe``-style constant of the 2SLS fit (see the module docstring)."""
    unit, period = effects
    dummies = pd.get_dummies(data[period], prefix="_d", drop_first=True, dtype=float)
    groups = data[unit].to_numpy()

    def recentre(values: np.ndarray) -> np.ndarray:
        means = pd.DataFrame(values).groupby(groups).transform("mean").to_numpy()
        return values - means + values.mean(axis=0)

    ones = np.ones((len(data), 1))
    controls = np.column_stack([data[exogenous].to_numpy(float), dummies.to_numpy()])
    x = np.column_stack([recentre(np.column_stack([data[endogenous].to_numpy(float),
                                                   controls])), ones])
    z = np.column_stack([recentre(np.column_stack([data[instruments].to_numpy(float),
                                                   controls])), ones])
    y = recentre(data[[outcome]].to_numpy(float))[:, 0]
    coef, cov, dof = two_stage_least_squares(y, x, z, vcov_kind(vcov), data, groups)
    estimate, se = coef[-1], float(np.sqrt(cov[-1, -1]))
    t_stat = estimate / se
    crit = stats.t.ppf(0.975, dof)
    return pd.DataFrame({
        "term": ["Constant"], "estimate": [estimate], "std_error": [se],
        "ci_low": [estimate - crit * se], "ci_high": [estimate + crit * se],
        "stat": [t_stat], "p_value": [2 * stats.t.sf(abs(t_stat), dof)],
    })


def vcov_kind(vcov: str) -> str:
    """``"hetero"``, ``"iid"`` or the ``"cluster:<col>"`` vcov string itself."""
    if vcov in ("hetero", "HC1"):
        return "hetero"
    if vcov == "iid" or vcov.startswith("cluster:"):
        return vcov
    raise ValueError(f"IV standard errors must be 'hetero', 'iid' or 'cluster:<col>', "
                     f"not '{vcov}'")


def two_stage_least_squares(y, x, z, kind, data, groups):
    """2SLS of ``y`` on ``x`` with instruments ``z`` on unit-recentred data.

    The recentring removed ``n_units - 1`` parameters, so the small-sample constant is
    ``N / (N - k - n_units + 1)`` (HC1) or ``G/(G-1) (N-1)/(N - k - n_units + 1)`` (CRV1)
    as in :func:`models.panel.fe._xtreg_constant`; returns (coefficients, covariance, dof).
    """
    projection = z @ np.linalg.lstsq(z, x, rcond=None)[0]
    coef = np.linalg.solve(projection.T @ x, projection.T @ y)
    resid = y - x @ coef
    n, k = x.shape
    n_units = len(np.unique(groups))
    dof = n - k - n_units + 1
    bread = np.linalg.inv(projection.T @ projection)
    scores = projection * resid[:, None]
    if kind.startswith("cluster:"):
        cluster = data[kind.split(":", 1)[1]].to_numpy()
        sums = pd.DataFrame(scores).groupby(cluster).sum().to_numpy()
        g = sums.shape[0]
        meat = sums.T @ sums * (g / (g - 1)) * ((n - 1) / dof)
    elif kind == "iid":
        return coef, bread * (resid @ resid) / dof, dof
    else:
        meat = scores.T @ scores * n / dof
    return coef, bread @ meat @ bread, dof

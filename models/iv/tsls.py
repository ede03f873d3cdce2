"""Panel two-stage least squares with absorbed fixed effects, and weak-instrument diagnostics.

Model
-----
Structural equation and first stage (one row per unit i and period t):

    y_it = x_it' beta + w_it' gamma + a_i + d_t + u_it
    x_it = Pi' z_it + w_it' G + b_i + e_t + v_it

with endogenous regressors x (K of them), excluded instruments z (L >= K), included exogenous
controls w and absorbed effects (any pyfixest effects, usually unit and period). beta is
estimated by 2SLS on the within-transformed data (pyfixest ``feols`` IV syntax,
``y ~ w | effects | x ~ z``). Standard errors: heteroskedasticity-robust HC1 with every
absorbed level counted in the degrees of freedom, ``N / (N - k)``, as Stata's
``ivregress 2sls ... i.unit i.period, vce(robust) small``; or city-clustered CRV1,
``G / (G - 1) * (N - 1) / (N - k)``, where effects nested in the cluster are not counted.

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
cluster counts as one parameter (fixest's ``"nonnested"`` rule, as pyfixest's CRV1). These
constants make the rk Wald F equal the robust (HC1 with every absorbed level counted, or
CRV1) first-stage Wald F on the excluded instruments when K = 1, which is the check we
test. ``xtivreg2, fe`` differs only in the LM statistic, which it multiplies by
``(N - n_units) / N`` (``convention="xtivreg2"``).

The Stock & Yogo (2005, Table 5.2) critical values for the maximal size of a nominal 5% Wald
test based on 2SLS are in :data:`STOCK_YOGO_2SLS_SIZE`.

References: Kleibergen, F. and Paap, R. (2006), J. Econometrics 133, 97-126; Stock, J. H. and
Yogo, M. (2005), in Andrews & Stock (eds.), Identification and Inference for Econometric
Models, 80-108; Baum, Schaffer and Stillman (2007), Stata Journal 7, 465-506 (ivreg2);
Kleibergen & Schaffer (2007), ranktest.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyfixest as pf
from scipy import linalg, stats

from models.panel.fe import TIDY_COLUMNS, effect_codes, fit_twfe, partial_out, pyfixest_vcov

# Stock & Yogo (2005), Table 5.2: critical values of the first-stage (Cragg-Donald / KP) F for
# 2SLS Wald tests of nominal size 5% whose true size is at most 10%, 15%, 20%, 25%.
# Key: (number of endogenous regressors, number of excluded instruments).
STOCK_YOGO_2SLS_SIZE: dict[tuple[int, int], tuple[float, float, float, float]] = {
    (1, 1): (16.38, 8.96, 6.66, 5.53),
    (1, 2): (19.93, 11.59, 8.75, 7.25),
    (1, 3): (22.30, 12.83, 9.54, 7.80),
    (1, 4): (24.58, 13.96, 10.26, 8.31),
    (1, 5): (26.87, 15.09, 10.98, 8.84),
    (2, 2): (7.03, 4.58, 3.95, 3.63),
    (2, 3): (13.43, 8.18, 6.40, 5.45),
    (2, 4): (16.87, 9.93, 7.54, 6.28),
    (2, 5): (19.45, 11.22, 8.38, 6.89),
}
STOCK_YOGO_SIZES = (0.10, 0.15, 0.20, 0.25)


def stock_yogo_critical_value(n_endogenous: int, n_excluded: int, size: float = 0.10) -> float:
    """Stock-Yogo critical value for the maximal size ``size`` of a nominal 5% 2SLS Wald test.

    Weak instruments are rejected when the KP rk Wald F (or Cragg-Donald F) exceeds it.
    """
    key = (int(n_endogenous), int(n_excluded))
    if key not in STOCK_YOGO_2SLS_SIZE:
        raise KeyError(f"no Stock-Yogo 2SLS size critical value tabulated for {key[0]} "
                       f"endogenous regressor(s) and {key[1]} excluded instrument(s); "
                       f"tabulated: {sorted(STOCK_YOGO_2SLS_SIZE)}")
    if size not in STOCK_YOGO_SIZES:
        raise KeyError(f"size must be one of {STOCK_YOGO_SIZES}, not {size}")
    return STOCK_YOGO_2SLS_SIZE[key][STOCK_YOGO_SIZES.index(size)]


@dataclass(frozen=True)
class RankTest:
    """Raw Kleibergen-Paap rk statistics (``ranktest``'s ``r(chi2)``) for rank(Pi) = K - 1."""

    lm: float
    wald: float
    df: int
    n_obs: int
    n_clusters: int | None


def kleibergen_paap(
    endogenous: np.ndarray,
    instruments: np.ndarray,
    clusters: np.ndarray | None = None,
    covariance: str = "robust",
) -> RankTest:
    """Kleibergen-Paap (2006) rk LM and Wald statistics of H0: rank(Pi) = K - 1.

    ``x~ = z~ Pi + v``: ``endogenous`` (N x K) and ``instruments`` (N x L) must already have
    the controls and fixed effects partialled out. ``covariance`` is ``"robust"`` (White, or
    clustered when ``clusters`` is given) or ``"iid"`` (Anderson's canonical-correlation LM,
    through the general formula with W = I / N, and Cragg-Donald's Wald statistic
    N ev / (1 - ev), ev the smallest squared canonical correlation). Returns the statistics
    before ivreg2's degrees-of-freedom constants (see the module docstring).
    """
    x = np.asarray(endogenous, float).reshape(len(endogenous), -1)
    z = np.asarray(instruments, float).reshape(len(instruments), -1)
    n, k = x.shape
    n_instruments = z.shape[1]
    if n_instruments < k:
        raise ValueError(f"underidentified: {n_instruments} instrument(s) for {k} endogenous")
    zz, xx = z.T @ z, x.T @ x
    pihat = linalg.solve(zz, z.T @ x, assume_a="pos")
    chol_z = np.linalg.cholesky(zz)          # F F' = z'z (lower triangular F)
    chol_x = np.linalg.cholesky(xx)          # G G' = x'x
    inv_x_t = linalg.inv(chol_x.T)
    inv_z_t = linalg.inv(chol_z.T)
    theta = chol_z.T @ pihat @ inv_x_t       # L x K
    u, canonical, vt = np.linalg.svd(theta)
    v = vt.T
    q = k                                     # test rank = q - 1 (ivreg2's underid / weak id)
    u12, v12 = u[: q - 1, q - 1:], v[: q - 1, q - 1:]
    u22, v22 = u[q - 1:, q - 1:], v[q - 1:, q - 1:]
    u22h = linalg.sqrtm(u22 @ u22.T).real
    v22h = linalg.sqrtm(v22 @ v22.T).real
    a_q = np.vstack([u12, u22]) @ linalg.inv(u22) @ u22h
    b_q = v22h @ linalg.inv(v22.T) @ np.vstack([v12, v22]).T
    transform = np.kron(b_q, a_q.T)
    lam = transform @ theta.reshape(-1, order="F")
    rotation = np.kron(inv_x_t.T, inv_z_t.T)

    def statistic(residuals: np.ndarray) -> float:
        if covariance == "iid":
            w = np.eye(n_instruments * k) / n
        elif covariance == "robust":
            scores = np.einsum("ik,il->ikl", residuals, z).reshape(n, -1)  # e_i kron z_i
            if clusters is not None:
                scores = pd.DataFrame(scores).groupby(np.asarray(clusters)).sum().to_numpy()
            s = scores.T @ scores / n
            w = rotation @ s @ rotation.T * n
        else:
            raise ValueError(f"covariance must be 'robust' or 'iid', not '{covariance}'")
        omega = transform @ w @ transform.T
        omega = (omega + omega.T) / 2
        return float(lam @ linalg.solve(omega, lam, assume_a="sym"))

    n_clusters = None if clusters is None else int(pd.Series(clusters).nunique())
    if covariance == "iid":
        # ranktest's iid branch: Anderson LM = N ev_K (the general formula with W = I / N)
        # and Cragg-Donald Wald = N ev_K / (1 - ev_K), ev_K the smallest squared canonical
        # correlation.
        smallest = canonical[k - 1] ** 2
        return RankTest(lm=statistic(x), wald=n * smallest / (1 - smallest),
                        df=(n_instruments - k + 1), n_obs=n, n_clusters=n_clusters)
    return RankTest(
        lm=statistic(x), wald=statistic(x - z @ pihat),
        df=(n_instruments - k + 1), n_obs=n, n_clusters=n_clusters,
    )


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
        Column names: y, x (K), excluded instruments z (L >= K), included controls w.
    effects
        Absorbed effects in pyfixest syntax (``["city", "year"]``).
    vcov
        ``"hetero"`` (HC1) or ``"cluster:<column>"`` (CRV1); also used by the diagnostics.
    convention
        ``"ivreghdfe"`` (KP rk LM as ranktest returns it) or ``"xtivreg2"`` (LM times
        ``(N - n_units) / N``, ``effects[0]`` being the unit). The rk Wald F is the same.

    Returns
    -------
    IVFit
        ``first_stage[x]`` is the first-stage table (instruments, controls, Constant, R2) plus
        ``partial_r2`` and ``first_stage_f`` rows; ``second_stage`` the 2SLS table; and
        ``diagnostics`` holds ``kp_rk_lm``, ``kp_rk_lm_p``, ``kp_rk_lm_df``, ``kp_rk_wald_f``
        and ``stock_yogo_10pct`` (NaN when not tabulated).
    """
    if convention not in ("ivreghdfe", "xtivreg2"):
        raise ValueError(f"convention must be 'ivreghdfe' or 'xtivreg2', not '{convention}'")
    overlap = set(endogenous) & set(exogenous + instruments)
    if overlap:
        raise ValueError(f"{sorted(overlap)} listed both as endogenous and as exogenous")
    if len(instruments) < len(endogenous):
        raise ValueError(f"{len(instruments)} instrument(s) {instruments} for "
                         f"{len(endogenous)} endogenous regressor(s) {endogenous}")
    cluster = vcov.split(":", 1)[1] if vcov.startswith("cluster:") else None
    used = [outcome, *endogenous, *instruments, *exogenous,
            *[p for e in effects for p in e.split("^")], *([cluster] if cluster else [])]
    missing = [c for c in dict.fromkeys(used) if c not in frame.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the data")
    data = frame[list(dict.fromkeys(used))].dropna().reset_index(drop=True)

    first_stage = {}
    for name in endogenous:
        table = fit_twfe(data, name, [*instruments, *exogenous], effects, vcov=vcov).tidy()
        first_stage[name] = table
    formula = (f"{outcome} ~ {' + '.join(exogenous) if exogenous else '1'}"
               f" | {' + '.join(effects)} | {' + '.join(endogenous)} ~ {' + '.join(instruments)}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*singleton.*")
        fit = pf.feols(formula, data=data, vcov=pyfixest_vcov(vcov))
    second = _pyfixest_table(fit)
    order = [*endogenous, *exogenous]
    second = second.set_index("term").loc[order].reset_index()
    n_obs = int(fit._N)
    df_k = int(fit._df_k) if hasattr(fit, "_df_k") else None
    if len(effects) == 2 and "^" not in "".join(effects):
        constant = _xtreg_iv_constant(data, outcome, endogenous, instruments, exogenous,
                                      effects, vcov)
        second = pd.concat([second, constant], ignore_index=True)
    resid = np.asarray(fit.resid(), float)
    y = data[outcome].to_numpy(float)
    r2 = 1.0 - resid @ resid / np.sum((y - y.mean()) ** 2)
    second = pd.concat([second, pd.DataFrame({"term": ["R2"], "estimate": [r2]})],
                       ignore_index=True)
    second["n_obs"] = n_obs

    x_tilde = partial_out(data, list(endogenous), list(exogenous), list(effects))
    z_tilde = partial_out(data, list(instruments), list(exogenous), list(effects))
    clusters = data[cluster].to_numpy() if cluster else None
    rank = kleibergen_paap(x_tilde, z_tilde, clusters=clusters)
    n_excluded = len(instruments)
    if df_k is None:
        df_k = _df_k(data, len(instruments) + len(exogenous), effects, cluster)
    if cluster is None:
        wald_f = rank.wald / n_obs * (n_obs - df_k) / n_excluded
        lm = rank.lm
        if convention == "xtivreg2":
            lm *= (n_obs - data[effects[0]].nunique()) / n_obs
    else:
        g = rank.n_clusters
        wald_f = rank.wald / (n_obs - 1) * (n_obs - df_k) * (g - 1) / g / n_excluded
        lm = rank.lm
    try:
        sy10 = stock_yogo_critical_value(len(endogenous), n_excluded, 0.10)
    except KeyError:
        sy10 = float("nan")
    diagnostics = {
        "kp_rk_lm": lm,
        "kp_rk_lm_p": float(stats.chi2.sf(lm, rank.df)),
        "kp_rk_lm_df": float(rank.df),
        "kp_rk_wald_f": wald_f,
        "stock_yogo_10pct": sy10,
    }
    for j, name in enumerate(endogenous):
        first_stage[name] = _add_first_stage_rows(first_stage[name], x_tilde[:, j], z_tilde,
                                                  n_obs, instruments)
    return IVFit(
        outcome=outcome, endogenous=tuple(endogenous), instruments=tuple(instruments),
        exogenous=tuple(exogenous), effects=tuple(effects), vcov=vcov,
        first_stage=first_stage, second_stage=second[TIDY_COLUMNS], diagnostics=diagnostics,
        n_obs=n_obs, extras={"rank_test": rank, "df_k": df_k},
    )


def _pyfixest_table(fit) -> pd.DataFrame:
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


def _df_k(data: pd.DataFrame, n_slopes: int, effects: list[str], cluster: str | None) -> int:
    """Parameters counted in the small-sample constant: slopes plus absorbed levels (minus one
    per extra effect); levels of effects nested in the cluster are left out (fixest's
    ``k_fixef="nonnested"``)."""
    levels = 0
    for index, effect in enumerate(effects):
        codes = effect_codes(data, effect)
        count = len(np.unique(codes)) - (1 if index > 0 else 0)
        if cluster is not None:
            nested = pd.Series(data[cluster].to_numpy()).groupby(codes).nunique().max() == 1
            if nested:
                count = 1 if index == 0 else 0
        levels += count
    return n_slopes + levels


def _add_first_stage_rows(table: pd.DataFrame, x_tilde: np.ndarray, z_tilde: np.ndarray,
                          n_obs: int, instruments: list[str]) -> pd.DataFrame:
    """Partial R2 of the excluded instruments and the first-stage Wald F on them."""
    coef, *_ = np.linalg.lstsq(z_tilde, x_tilde, rcond=None)
    fitted = z_tilde @ coef
    partial_r2 = float(fitted @ fitted / (x_tilde @ x_tilde))
    indexed = table.set_index("term")
    # Robust F from the first-stage table's own standard errors (exact for one instrument).
    if len(instruments) == 1:
        f_stat = float(indexed.loc[instruments[0], "stat"] ** 2)
    else:
        f_stat = float("nan")
    extra = pd.DataFrame({"term": ["partial_r2", "first_stage_f"],
                          "estimate": [partial_r2, f_stat], "n_obs": [n_obs, n_obs]})
    return pd.concat([table, extra], ignore_index=True)[TIDY_COLUMNS]


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
    """``"hetero"`` or the cluster column of a ``"cluster:<col>"`` vcov string."""
    if vcov in ("hetero", "HC1"):
        return "hetero"
    if vcov.startswith("cluster:"):
        return vcov
    raise ValueError(f"IV standard errors must be 'hetero' or 'cluster:<col>', not '{vcov}'")


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
    else:
        meat = scores.T @ scores * n / dof
    return coef, bread @ meat @ bread, dof

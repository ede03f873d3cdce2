"""Difference and system GMM for dynamic panels, one- or two-step, as ``xtabond2`` runs them.

Model
-----
    y_it = sum_l rho_l y_i,t-l + sum_j sum_{l in lags_j} b_jl x_j,i,t-l + d_t + a_i + e_it

estimated from the differenced equations alone (Arellano & Bond 1991, difference GMM,
``xtabond2 ..., nolevel``) or from the differenced and level equations stacked (Arellano &
Bover 1995; Blundell & Bond 1998, system GMM). The instruments are built in
:mod:`models.gmm.design`.

Steps
-----
Step one weights the moments with ``(sum_i Z_i' H Z_i)^-1``, H having 2 on the diagonal and -1
beside it in the differenced block, the identity in the level block and -1 / +1 between a
difference and the levels it spans (``xtabond2``'s default ``h(3)``). Step two weights with
``(sum_i Z_i' u1_i u1_i' Z_i)^-1`` from the step-one residuals (a generalised inverse where
that matrix is singular, as ``xtabond2``). Standard errors: one-step robust (the sandwich
with the same cluster-by-unit moment covariance, ``xtabond2 ..., robust``) or two-step with
Windmeijer's (2005) finite-sample correction (``twostep robust``); z tests.

Tests
-----
Arellano-Bond AR(m) in the differenced residuals of the step reported. Hansen's J is the
two-step criterion, ``(Z'u2)' (sum_i Z_i' u1_i u1_i' Z_i)^-1 (Z'u2)``; Sargan's statistic is
``(Z'u1)' (sum_i Z_i' H Z_i)^-1 (Z'u1) / s2``, the one-step criterion scaled by the one-step
residual variance, s2 = sum (Delta u1)^2 / (2 N), N the reported observations. Both are chi2
with (linearly independent instruments - parameters) degrees of freedom.

Reported N: the level-equation observations for system GMM, the differenced ones for
difference GMM, as ``xtabond2`` prints "Number of obs".

References: Arellano & Bond (1991), Rev. Econ. Stud. 58, 277-297; Blundell & Bond (1998),
J. Econometrics 87, 115-143; Windmeijer (2005), J. Econometrics 126, 25-51; Roodman (2009),
Stata Journal 9, 86-136.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from data.errors import DataError
from models.gmm.design import Design, balanced_cube, build_design, parse_lagged, term_name

TIDY_COLUMNS = ["term", "estimate", "std_error", "ci_low", "ci_high", "stat", "p_value", "n_obs"]


@dataclass(frozen=True)
class DynamicGMMFit:
    """Difference or system GMM estimates, their covariance and the specification tests."""

    outcome: str
    terms: tuple[str, ...]
    beta: np.ndarray
    cov: np.ndarray
    beta_one_step: np.ndarray
    cov_one_step: np.ndarray
    ar: dict[int, tuple[float, float]]
    hansen: tuple[float, int, float]
    sargan: tuple[float, int, float]
    n_instruments: int
    n_units: int
    n_obs_level: int
    n_obs_diff: int
    instruments: tuple[str, ...] = field(default_factory=tuple)
    estimator: str = "system"
    steps: int = 2
    outcome_lags: tuple[int, ...] = (1,)
    small: bool = False

    @property
    def n_obs(self) -> int:
        """xtabond2's "Number of obs": level rows (system), differenced rows (difference)."""
        return self.n_obs_level if self.estimator == "system" else self.n_obs_diff

    @property
    def std_errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def coef(self, term: str) -> float:
        return float(self.beta[self.terms.index(term)])

    def combination(self, weights: dict[str, float]) -> tuple[float, float]:
        """Estimate and standard error of sum_j w_j beta_j."""
        vector = np.zeros(len(self.terms))
        for term, weight in weights.items():
            vector[self.terms.index(term)] = weight
        return float(vector @ self.beta), float(np.sqrt(vector @ self.cov @ vector))

    def long_run(self, regressor: str) -> tuple[float, float]:
        """Long-run effect sum_l b_l / (1 - sum_l rho_l) of ``regressor`` (all its lags) and
        its delta-method standard error."""
        rho_terms = [term_name(self.outcome, lag) for lag in self.outcome_lags]
        names = [t for t in self.terms if parse_lagged(t)[0] == regressor
                 and t not in rho_terms]
        if not names:
            raise KeyError(f"'{regressor}' is not a regressor of this model")
        persistence = sum(self.coef(t) for t in rho_terms)
        short = sum(self.coef(n) for n in names)
        gradient = np.zeros(len(self.terms))
        for name in names:
            gradient[self.terms.index(name)] = 1.0 / (1.0 - persistence)
        for term in rho_terms:
            gradient[self.terms.index(term)] = short / (1.0 - persistence) ** 2
        return short / (1.0 - persistence), float(np.sqrt(gradient @ self.cov @ gradient))

    def tidy(self, include_dummies: bool = False) -> pd.DataFrame:
        """Coefficients (z tests and normal 95% intervals; t with G - 1 df under ``small``),
        then AR(1), AR(2), Hansen J, Sargan and the instrument count."""
        se = self.std_errors
        z = self.beta / se
        reference = stats.t(self.n_units - 1) if self.small else stats.norm()
        crit = reference.ppf(0.975)
        table = pd.DataFrame({
            "term": list(self.terms), "estimate": self.beta, "std_error": se,
            "ci_low": self.beta - crit * se, "ci_high": self.beta + crit * se,
            "stat": z, "p_value": 2 * reference.sf(np.abs(z)),
        })
        if not include_dummies:
            table = table[~table["term"].str.startswith("_year_")]
        table["term"] = table["term"].replace({"_con": "Constant"})
        tests = pd.DataFrame({
            "term": ["ar1", "ar2", "hansen_j", "sargan", "n_instruments"],
            "estimate": [np.nan, np.nan, np.nan, np.nan, float(self.n_instruments)],
            "stat": [self.ar[1][0], self.ar[2][0], self.hansen[0], self.sargan[0], np.nan],
            "p_value": [self.ar[1][1], self.ar[2][1], self.hansen[2], self.sargan[2], np.nan],
        })
        out = pd.concat([table, tests], ignore_index=True)
        out["n_obs"] = self.n_obs
        return out[TIDY_COLUMNS].reset_index(drop=True)


SystemGMMFit = DynamicGMMFit


def _lag_list(value, name: str) -> list[int]:
    lags = list(range(1, value + 1)) if isinstance(value, int) else [int(v) for v in value]
    if not lags or min(lags) < 0 or len(set(lags)) != len(lags):
        raise ValueError(f"lags of '{name}' must be distinct non-negative integers, not {value}")
    return sorted(lags)


def fit_dynamic_gmm(
    frame: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    *,
    outcome_lags: int | Sequence[int] = 1,
    lags: dict[str, Sequence[int]] | None = None,
    lagged: Sequence[str] = (),
    gmm: dict[str, tuple[int, int | None]] | None = None,
    iv: Sequence[str] | None = None,
    iv_diff: Sequence[str] | None = None,
    iv_level: Sequence[str] | None = None,
    unit: str = "city",
    time: str = "year",
    level: bool = True,
    time_dummies: bool = True,
    collapse: bool = True,
    steps: int = 2,
    exogenous_regressors: bool = True,
    small: bool = False,
    h: int = 3,
    ar_orders: int = 2,
) -> DynamicGMMFit:
    """Difference (``level=False``) or system GMM of a dynamic panel (module docstring).

    Parameters
    ----------
    frame
        Panel in long form, one row per (unit, time); periods consecutive integers.
    outcome
        y. ``outcome_lags``: how many lags enter (an int p: lags 1..p) or which ones.
    regressors
        x_j, each at lag 0 unless ``lags`` names its lags (``{"k": [0, 1, 2]}``);
        ``lagged`` is shorthand for lags [0, 1].
    gmm
        GMM-style variables and the lag ranges of their level instruments in the
        differenced equations, ``{name: (a, b)}`` (b None: all available lags); default
        ``{outcome: (2, 4)}``. The outcome's range must start at 2 or later.
    iv
        IV-style (exogenous) instruments, as names or ``"L1.w"``: Delta w in the differenced
        equations and w in the level equations, one column (``xtabond2``'s ``iv(w)``).
    iv_diff
        IV-style instruments of the differenced equations alone (``iv(w, eq(diff))``; what
        Stata's ``xtdpdsys`` does with the exogenous regressors).
    iv_level
        IV-style instruments of the level equations alone (``iv(w, eq(level))``, w in levels;
        system GMM only).
    exogenous_regressors
        True: every regressor term that is not GMM-style is taken as exogenous and added to
        the IV-style instruments (after ``iv``), at the lags it enters with. False: only
        ``gmm`` and ``iv`` instrument, as in an ``xtabond2`` command line.
    small
        ``xtabond2``'s ``small``: the covariance times ``G / (G - 1) * N / (N - k)``, G units,
        N the reported observations and k the number of coefficients less one, in system and
        in difference GMM alike (the constant that reproduces ``xtabond2 ..., twostep robust
        small`` and Roodman's (2009) ``nolevel robust small`` on the Arellano-Bond data to
        the printed seven digits, ``tests/models/gmm``), and t tests with G - 1 degrees of
        freedom.
    h
        ``xtabond2``'s ``h(#)``, the one-step weight of the stacked errors: 3 (default) as in
        the module docstring; 2 without the blocks between differences and levels (what
        Stata's ``xtdpdsys`` uses); 1 the identity.
    ar_orders
        Arellano-Bond tests of orders 1..ar_orders (at least 2).
    level
        True: system GMM (level equations and a constant); False: difference GMM.
    time_dummies
        Year dummies (the periods of the differenced equations) as regressors and IV-style
        instruments; or pass your own dummy columns among the regressors.
    collapse
        One instrument per lag instead of one per lag and period (Roodman 2009).
    steps
        1 (one-step, robust errors) or 2 (two-step, Windmeijer errors).

    Returns
    -------
    DynamicGMMFit
        Terms: the outcome's lags (``L1.y``, ``L2.y``), each regressor at its lags (``w``,
        ``L1.w``), year dummies ``_year_<t>``, and ``_con`` (system GMM).
    """
    if steps not in (1, 2):
        raise ValueError(f"steps must be 1 or 2, not {steps}")
    if h not in (1, 2, 3):
        raise ValueError(f"h must be 1, 2 or 3 (xtabond2's h()), not {h}")
    if ar_orders < 2:
        raise ValueError(f"ar_orders must be at least 2, not {ar_orders}")
    regressors = list(regressors)
    y_lags = _lag_list(outcome_lags, outcome)
    if 0 in y_lags:
        raise ValueError(f"outcome lags must start at 1, not {y_lags}")
    lags = {name: _lag_list(value, name) for name, value in (lags or {}).items()}
    unknown = [name for name in [*lags, *lagged] if name not in regressors]
    if unknown:
        raise ValueError(f"lags given for {unknown}, which are not among the regressors "
                         f"{regressors}")
    for name in lagged:
        lags[name] = sorted(set(lags.get(name, [0])) | {0, 1})
    if outcome in regressors:
        raise ValueError(f"the outcome '{outcome}' enters through outcome_lags, not as a "
                         "regressor")
    gmm = dict(gmm) if gmm is not None else {outcome: (2, 4)}
    for name, (low, high) in gmm.items():
        if high is not None and high < low:
            raise ValueError(f"GMM lag range of '{name}' is empty: ({low}, {high})")
        if low < 0:
            raise ValueError(f"GMM lags of '{name}' must be non-negative, not {low}")
    if outcome in gmm and gmm[outcome][0] < 2:
        raise ValueError(f"instruments of the lagged outcome must start at lag 2 or later, "
                         f"not {gmm[outcome][0]}")

    x_terms = [(outcome, lag) for lag in y_lags]
    for name in regressors:
        x_terms += [(name, lag) for lag in lags.get(name, [0])]
    iv_terms = [parse_lagged(term) for term in (iv or [])]
    iv_diff_terms = [parse_lagged(term) for term in (iv_diff or [])]
    iv_level_terms = [parse_lagged(term) for term in (iv_level or [])]
    if iv_level_terms and not level:
        raise ValueError("iv_level instruments the level equations, which difference GMM "
                         "(level=False) does not have")
    iv_style = [*iv_terms, *iv_diff_terms, *iv_level_terms]
    both = sorted({name for name, _ in iv_style} & set(gmm))
    if both:
        raise ValueError(f"{both} cannot be both GMM-style and IV-style instruments")
    for name, lag in x_terms[len(y_lags):] if exogenous_regressors else []:
        if name not in gmm and (name, lag) not in iv_style:
            iv_terms.append((name, lag))

    names = list(dict.fromkeys([outcome, *regressors, *gmm,
                                *(n for n, _ in [*iv_terms, *iv_diff_terms, *iv_level_terms])]))
    cube, periods, _units = balanced_cube(frame, unit, time, names)
    column = {name: cube[:, :, k] for k, name in enumerate(names)}
    design = build_design(column, periods, outcome, x_terms, gmm, iv_terms,
                          iv_diff_terms=iv_diff_terms, iv_level_terms=iv_level_terms,
                          level=level,
                          time_dummies=time_dummies, collapse=collapse)
    if design.z.shape[1] < design.x.shape[2]:
        raise DataError(f"{design.z.shape[1]} instruments for {design.x.shape[2]} parameters "
                        "[rule: at least as many instruments as parameters]")
    return _estimate(design, outcome, tuple(y_lags), level, steps, cube.shape[0], small, h,
                     ar_orders)


def fit_system_gmm(frame: pd.DataFrame, outcome: str, regressors: Sequence[str], *,
                   lagged: Sequence[str] = (), gmm=None, iv=None, unit: str = "city",
                   time: str = "year", time_dummies: bool = True,
                   collapse: bool = True) -> DynamicGMMFit:
    """Two-step system GMM with one lag of the outcome: :func:`fit_dynamic_gmm` with
    ``level=True, steps=2, outcome_lags=1`` (Zhu 2025, Table 4 column 4)."""
    return fit_dynamic_gmm(frame, outcome, regressors, lagged=lagged, gmm=gmm, iv=iv,
                           unit=unit, time=time, time_dummies=time_dummies, collapse=collapse)


def _h_matrix(n_diff: int, n_level: int, kind: int = 3) -> np.ndarray:
    """Step-one weight of the stacked (differenced, level) errors, xtabond2's ``h(kind)``."""
    size = n_diff + n_level
    if kind == 1:
        return np.eye(size)
    h = np.zeros((size, size))
    i, j = np.indices(h.shape)
    h[(i == j) & (i < n_diff)] = 2
    h[(i == j - 1) & (j < n_diff)] = -1
    h[(j == i - 1) & (i < n_diff)] = -1
    h[(i == j) & (i >= n_diff)] = 1
    h[(i == j + n_diff) & (j < n_diff)] = -1
    h[(i == 1 + j + n_diff) & (j < n_diff)] = 1
    h[(j == i + n_diff) & (i < n_diff)] = -1
    h[(j == 1 + i + n_diff) & (i < n_diff)] = 1
    if kind == 2:
        h[:n_diff, n_diff:] = 0.0
        h[n_diff:, :n_diff] = 0.0
    return h


def _estimate(design: Design, outcome: str, y_lags: tuple[int, ...], level: bool, steps: int,
              n_units: int, small: bool, h_kind: int, ar_orders: int) -> DynamicGMMFit:
    y, x, z = design.y, design.x, design.z
    h = _h_matrix(design.n_diff, design.n_level, h_kind)
    zx = np.einsum("nlr,nrk->lk", z, x)
    zy = np.einsum("nlr,nr->l", z, y)
    w1 = np.einsum("nlr,rs,nms->lm", z, h, z)
    step1 = _gmm_step(w1, zx, zy, z, x, y)
    vcov1 = n_units * step1["mxw"] @ (step1["zuuz"] / n_units) @ step1["mxw"].T
    step2 = _gmm_step(step1["zuuz"] / n_units, zx, zy, z, x, y)
    vcov2 = _windmeijer(step2, step1, vcov1, z, x, n_units)

    n_params = x.shape[2]
    # xtabond2 counts linearly independent instruments: differenced year dummies sum to zero,
    # so a full set of them (iv(yr*) with nolevel) carries one column too many.
    n_instruments = int(np.linalg.matrix_rank(z.transpose(0, 2, 1).reshape(-1, z.shape[1])))
    df = n_instruments - n_params
    zs2 = step2["zs"]
    j_stat = float(zs2 @ step2["w_inv"] @ zs2) / n_units
    sargan = _sargan(step1, design, w1)
    reported, cov = (step2, vcov2) if steps == 2 else (step1, vcov1)
    ar = {m: _ar_test(reported, cov, x, design.n_diff, m) for m in range(1, ar_orders + 1)}
    n_obs_level = int(design.used[:, design.n_diff:].sum())
    n_obs_diff = int(design.used[:, :design.n_diff].sum())
    if small:
        n_obs = n_obs_level if level else n_obs_diff
        # xtabond2 subtracts one coefficient also under nolevel, where there is no constant.
        slopes = n_params - 1
        cov = cov * n_units / (n_units - 1) * n_obs / (n_obs - slopes)
    return DynamicGMMFit(
        outcome=outcome, terms=design.terms, beta=reported["beta"], cov=cov,
        beta_one_step=step1["beta"], cov_one_step=vcov1, ar=ar,
        hansen=(j_stat, df, float(stats.chi2.sf(j_stat, df))),
        sargan=(sargan, df, float(stats.chi2.sf(sargan, df))),
        n_instruments=n_instruments, n_units=n_units,
        n_obs_level=n_obs_level, n_obs_diff=n_obs_diff,
        instruments=design.instruments, estimator="system" if level else "difference",
        steps=steps, outcome_lags=y_lags, small=small,
    )


def _sargan(step1: dict, design: Design, w1: np.ndarray) -> float:
    """The one-step criterion over the one-step error variance (see the module docstring)."""
    resid = step1["resid"]
    used = design.used
    diffs = resid[:, :design.n_diff][used[:, :design.n_diff]]
    # xtabond2: half the mean squared differenced residual, the mean taken over the reported
    # observations (the level ones in system GMM); matched to Roodman's (2009) printed
    # Sargan statistics of both estimators.
    n_reported = int(used[:, design.n_diff:].sum()) if design.n_level else diffs.size
    s2 = float(diffs @ diffs) / (2 * n_reported)
    zs = step1["zs"]
    return float(zs @ np.linalg.pinv(w1) @ zs) / s2


def _gmm_step(w, zx, zy, z, x, y) -> dict:
    """beta = (X'Z W^-1 Z'X)^-1 X'Z W^-1 Z'y and the moments of its residuals."""
    w_inv = np.linalg.pinv(w)
    xz = zx.T
    m = np.linalg.pinv(xz @ w_inv @ zx)
    mxw = m @ xz @ w_inv
    beta = mxw @ zy
    resid = y - np.einsum("nrk,k->nr", x, beta)
    zs_units = np.einsum("nlr,nr->nl", z, resid)
    return {"w_inv": w_inv, "m": m, "mxw": mxw, "beta": beta, "resid": resid,
            "zs_units": zs_units, "zs": zs_units.sum(axis=0), "zuuz": zs_units.T @ zs_units}


def _windmeijer(step2: dict, step1: dict, vcov1: np.ndarray, z, x, n_units: int) -> np.ndarray:
    """Windmeijer (2005) corrected covariance of the two-step estimator."""
    zx_units = np.einsum("nlr,nrk->nkl", z, x)  # Z_i' x_ij per unit and column
    zu1 = step1["zs_units"]  # Z_i' u1_i
    c = step2["w_inv"] @ step2["zs"]
    uc = zu1 @ c
    xc = zx_units @ c
    # Row j: sum_i Z_i'(x_ij u_i' + u_i x_ij') Z_i c
    zxz_c = np.einsum("nkl,n->kl", zx_units, uc) + np.einsum("nl,nk->kl", zu1, xc)
    d = step2["mxw"] @ zxz_c.T / n_units
    dm = d @ step2["m"]
    return n_units * step2["m"] + n_units * dm + n_units * dm.T + d @ vcov1 @ d.T


def _ar_test(step: dict, vcov: np.ndarray, x: np.ndarray, n_diff: int, order: int):
    """Arellano-Bond test of order ``order`` in the differenced residuals: (z, p)."""
    resid = step["resid"][:, :n_diff]
    x_diff = x[:, :n_diff, :]
    lagged_resid = np.zeros_like(resid)
    lagged_resid[:, order:] = resid[:, :-order]
    d0_units = np.einsum("nr,nr->n", lagged_resid, resid)
    d0 = d0_units.sum()
    d1 = (d0_units ** 2).sum()
    ex = np.einsum("nr,nrk->k", lagged_resid, x_diff)
    temp3 = step["zs_units"].T @ d0_units
    d2 = -2.0 * ex @ step["mxw"] @ temp3
    d3 = ex @ vcov @ ex
    value = float(d0 / np.sqrt(d1 + d2 + d3))
    return value, float(2 * stats.norm.sf(abs(value)))

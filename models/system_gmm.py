"""Blundell-Bond system GMM for a dynamic panel, two-step with Windmeijer-corrected errors.

Model
-----
    y_it = rho y_i,t-1 + x_it' b + x_i,t-1' b1 + d_t + a_i + e_it

(Zhu, Leng & Zhang 2025, Table 4 column 4: ln GDP on its lag, the AI firm measure and its
lag, controls and year effects.) ``lagged`` names the regressors that also enter at lag one.

Moment conditions (Arellano & Bover 1995; Blundell & Bond 1998), stacked per unit as in
Roodman's ``xtabond2`` and pydynpd:

* differenced equations, t = t_d..T: E[v_i,t-k Delta e_it] = 0 for every GMM-style variable v
  and k in its lag range [a, b] (``gmm``: the outcome with a >= 2; an endogenous regressor
  likewise);
* level equations, t = t_l..T: E[Delta v_i,t-a+1 (a_i + e_it)] = 0;
* IV-style (exogenous) variables w: Delta w_it instruments the differenced and w_it the level
  equation, as one instrument column; year dummies are IV-style; the level equation has a
  constant.

``collapse`` keeps one instrument per lag (Roodman 2009) instead of one per lag and period.
Step one weights with H (2 / -1 on the differenced block, identity on the levels, -1 / +1
between a difference and the levels it spans); step two with the inverse of
sum_i Z_i' u_i u_i' Z_i / N from the step-one residuals. Standard errors of step two carry
Windmeijer's (2005) finite-sample correction. Tests: Arellano-Bond AR(1) and AR(2) in the
differenced residuals and Hansen's J of the over-identifying restrictions.

The construction follows pydynpd 0.2 (``abond``) line by line, so the two agree to rounding on
the same data and instrument set (``tests/test_system_gmm.py``). Reported N is the number of
level-equation observations, as Stata's ``xtabond2`` reports for system GMM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from data.errors import DataError

TIDY_COLUMNS = ["term", "estimate", "std_error", "ci_low", "ci_high", "stat", "p_value", "n_obs"]


@dataclass(frozen=True)
class SystemGMMFit:
    """Two-step system GMM estimates, their Windmeijer covariance and the specification tests."""

    outcome: str
    terms: tuple[str, ...]
    beta: np.ndarray
    cov: np.ndarray
    beta_one_step: np.ndarray
    cov_one_step: np.ndarray
    ar: dict[int, tuple[float, float]]
    hansen: tuple[float, int, float]
    n_instruments: int
    n_units: int
    n_obs_level: int
    n_obs_diff: int
    instruments: tuple[str, ...] = field(default_factory=tuple)

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
        """Long-run effect (b + b1) / (1 - rho) of ``regressor`` and its delta-method SE."""
        rho = self.coef(f"L1.{self.outcome}")
        names = [regressor] + ([f"L1.{regressor}"] if f"L1.{regressor}" in self.terms else [])
        short = sum(self.coef(n) for n in names)
        gradient = np.zeros(len(self.terms))
        for name in names:
            gradient[self.terms.index(name)] = 1.0 / (1.0 - rho)
        gradient[self.terms.index(f"L1.{self.outcome}")] = short / (1.0 - rho) ** 2
        return short / (1.0 - rho), float(np.sqrt(gradient @ self.cov @ gradient))

    def tidy(self, include_dummies: bool = False) -> pd.DataFrame:
        """Coefficients (z tests, normal 95% intervals), then AR(1), AR(2) and Hansen J rows."""
        se = self.std_errors
        z = self.beta / se
        crit = stats.norm.ppf(0.975)
        table = pd.DataFrame({
            "term": list(self.terms), "estimate": self.beta, "std_error": se,
            "ci_low": self.beta - crit * se, "ci_high": self.beta + crit * se,
            "stat": z, "p_value": 2 * stats.norm.sf(np.abs(z)),
        })
        if not include_dummies:
            table = table[~table["term"].str.startswith("_year_")]
        table["term"] = table["term"].replace({"_con": "Constant"})
        tests = pd.DataFrame({
            "term": ["ar1", "ar2", "hansen_j", "n_instruments"],
            "estimate": [np.nan, np.nan, np.nan, float(self.n_instruments)],
            "stat": [self.ar[1][0], self.ar[2][0], self.hansen[0], np.nan],
            "p_value": [self.ar[1][1], self.ar[2][1], self.hansen[2], np.nan],
        })
        out = pd.concat([table, tests], ignore_index=True)
        out["n_obs"] = self.n_obs_level
        return out[TIDY_COLUMNS].reset_index(drop=True)


def _balanced_cube(
    frame: pd.DataFrame, unit: str, time: str, variables: list[str]
) -> tuple[np.ndarray, list[int]]:
    """Values on the full unit x period grid (N, T, V), NaN where a row is absent."""
    for name in [unit, time, *variables]:
        if name not in frame.columns:
            raise DataError(f"system GMM needs column '{name}' [rule: required columns]")
    if frame.duplicated([unit, time]).any():
        dup = frame.loc[frame.duplicated([unit, time]), [unit, time]].head(3).to_dict("records")
        raise DataError(f"rows {dup} repeat a ({unit}, {time}) pair [rule: one row per pair]")
    periods = sorted(int(p) for p in frame[time].unique())
    if periods != list(range(periods[0], periods[-1] + 1)):
        raise DataError(f"column '{time}' has gaps ({periods}); lags need consecutive periods "
                        "[rule: consecutive periods]")
    units = sorted(frame[unit].unique())
    grid = pd.MultiIndex.from_product([units, periods], names=[unit, time])
    values = (frame.set_index([unit, time])[variables].astype(float).reindex(grid)
              .to_numpy().reshape(len(units), len(periods), len(variables)))
    return values, periods


def _lagged(values: np.ndarray, lag: int) -> np.ndarray:
    """x_{t-lag} on the (N, T) grid, NaN where t - lag < 0."""
    out = np.full_like(values, np.nan)
    if lag == 0:
        return values.copy()
    out[:, lag:] = values[:, :-lag]
    return out


def _h_matrix(n_diff: int, n_level: int) -> np.ndarray:
    """Step-one weight of the stacked (differenced, level) errors, as pydynpd / xtabond2."""
    size = n_diff + n_level
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
    return h


def fit_system_gmm(
    frame: pd.DataFrame,
    outcome: str,
    regressors: list[str] | tuple[str, ...],
    *,
    lagged: list[str] | tuple[str, ...] = (),
    gmm: dict[str, tuple[int, int | None]] | None = None,
    iv: list[str] | tuple[str, ...] | None = None,
    unit: str = "city",
    time: str = "year",
    time_dummies: bool = True,
    collapse: bool = True,
) -> SystemGMMFit:
    """Two-step system GMM of y_it = rho y_i,t-1 + x_it' b + x_i,t-1' b1 + d_t + a_i + e_it.

    Parameters
    ----------
    frame
        Panel in long form, one row per (unit, time); periods consecutive.
    outcome
        y; its first lag always enters.
    regressors
        Contemporaneous regressors x_it.
    lagged
        Regressors that also enter at lag one (x_i,t-1).
    gmm
        GMM-style variables and their lag ranges ``{name: (a, b)}`` for the differenced
        equations (b None: all available lags); default ``{outcome: (2, 4)}``. The outcome's
        range must start at 2 or later.
    iv
        IV-style (exogenous) variables; regressors that are not GMM-style are always added
        (after these), and the lag of a lagged IV-style regressor too.
    time_dummies
        Year dummies (all periods of the differenced equations) as regressors and IV-style
        instruments.
    collapse
        One instrument per lag instead of one per lag and period.

    Returns
    -------
    SystemGMMFit
        Terms ``L1.<outcome>``, then each regressor (followed by ``L1.<name>`` when lagged),
        year dummies ``_year_<t>``, and ``_con``.
    """
    regressors = list(regressors)
    lagged = list(lagged)
    unknown = [name for name in lagged if name not in regressors]
    if unknown:
        raise ValueError(f"lagged regressors {unknown} are not among the regressors")
    gmm = dict(gmm) if gmm is not None else {outcome: (2, 4)}
    if outcome in gmm and gmm[outcome][0] < 2:
        raise ValueError(f"instruments of the lagged outcome must start at lag 2 or later, "
                         f"not {gmm[outcome][0]}")
    # Regressors neither GMM- nor IV-style instrument themselves, after the named ones.
    iv_names = list(dict.fromkeys([*(iv or []), *(r for r in regressors if r not in gmm)]))
    both = sorted(set(iv_names) & set(gmm))
    if both:
        raise ValueError(f"{both} cannot be both GMM-style and IV-style instruments")
    # The lag of an IV-style regressor is IV-style too.
    iv_terms = [(name, 0) for name in iv_names]
    for name in lagged:
        if name in iv_names:
            iv_terms.insert(iv_terms.index((name, 0)) + 1, (name, 1))

    names = list(dict.fromkeys([outcome, *regressors, *gmm, *iv_names]))
    cube, periods = _balanced_cube(frame, unit, time, names)
    n_units, n_periods, _ = cube.shape
    column = {name: cube[:, :, k] for k, name in enumerate(names)}

    x_terms = [(outcome, 1)]
    for name in regressors:
        x_terms.append((name, 0))
        if name in lagged:
            x_terms.append((name, 1))
    max_lag = max(lag for _, lag in x_terms + iv_terms)
    level_min = [max(a - 1, 0) for a, _ in gmm.values()]
    first_level = max([max_lag, *level_min])
    first_diff = first_level + 1
    if first_diff + 2 > n_periods - 1:
        raise DataError(f"{n_periods} periods are too few for this model "
                        "[rule: enough periods for lags and differences]")
    diff_t = np.arange(first_diff, n_periods)
    level_t = np.arange(first_level, n_periods)
    n_diff, n_level = len(diff_t), len(level_t)

    dummies = []
    if time_dummies:
        for t in diff_t:
            dummy = np.zeros((n_units, n_periods))
            dummy[:, t] = 1.0
            dummies.append((f"_year_{periods[t]}", dummy))

    def series(name: str, lag: int) -> np.ndarray:
        return _lagged(column[name], lag)

    def stacked(values: np.ndarray) -> np.ndarray:
        """(N, T) -> (N, n_diff + n_level): differences at diff_t, then levels at level_t."""
        delta = values - _lagged(values, 1)
        return np.concatenate([delta[:, diff_t], values[:, level_t]], axis=1)

    y = stacked(series(outcome, 0))
    x_parts = [stacked(series(name, lag)) for name, lag in x_terms]
    x_parts += [stacked(dummy) for _, dummy in dummies]
    constant = np.concatenate([np.zeros((n_units, n_diff)), np.ones((n_units, n_level))], 1)
    x = np.stack([*x_parts, constant], axis=2)
    terms = [f"L{lag}.{name}" if lag else name for name, lag in x_terms]
    terms += [name for name, _ in dummies] + ["_con"]

    z_rows, labels = _instrument_rows(column, gmm, iv_terms, dummies, diff_t, level_t,
                                      n_periods, collapse, series)
    z = np.stack(z_rows, axis=1)  # (N, L, R)
    z[np.isnan(z)] = 0.0
    missing = np.isnan(x).any(axis=2) | np.isnan(y)
    x[missing] = 0.0
    y[missing] = 0.0
    z[np.broadcast_to(missing[:, None, :], z.shape)] = 0.0

    h = _h_matrix(n_diff, n_level)
    zx = np.einsum("nlr,nrk->lk", z, x)
    zy = np.einsum("nlr,nr->l", z, y)
    w1 = np.einsum("nlr,rs,nms->lm", z, h, z)
    step1 = _gmm_step(w1, zx, zy, z, x, y)
    vcov1 = n_units * step1["mxw"] @ (step1["zuuz"] / n_units) @ step1["mxw"].T
    step2 = _gmm_step(step1["zuuz"] / n_units, zx, zy, z, x, y)
    vcov2 = _windmeijer(step2, step1, vcov1, z, x, n_units)

    zs2 = step2["zs"]
    j_stat = float(zs2 @ step2["w_inv"] @ zs2) / n_units
    j_df = z.shape[1] - x.shape[2]
    ar = {m: _ar_test(step2, vcov2, x, n_diff, m) for m in (1, 2)}
    return SystemGMMFit(
        outcome=outcome, terms=tuple(terms), beta=step2["beta"], cov=vcov2,
        beta_one_step=step1["beta"], cov_one_step=vcov1, ar=ar,
        hansen=(j_stat, j_df, float(stats.chi2.sf(j_stat, j_df))),
        n_instruments=int(z.shape[1]), n_units=n_units,
        n_obs_level=int((~missing[:, n_diff:]).sum()),
        n_obs_diff=int((~missing[:, :n_diff]).sum()), instruments=tuple(labels),
    )


def _instrument_rows(column, gmm, iv_terms, dummies, diff_t, level_t, n_periods, collapse,
                     series):
    """Instrument rows (each (N, R)) in pydynpd's order: GMM-style for the differenced
    equations, IV-style, GMM-style for the levels, constant."""
    n_units = next(iter(column.values())).shape[0]
    n_diff, n_level = len(diff_t), len(level_t)
    rows, labels = [], []
    for name, (low, high) in gmm.items():
        high = n_periods if high is None else high
        values = column[name]
        if collapse:
            for lag in range(low, min(high, n_periods - 1) + 1):
                row = np.full((n_units, n_diff + n_level), np.nan)
                for j, t in enumerate(diff_t):
                    if t - lag >= 0:
                        row[:, j] = values[:, t - lag]
                rows.append(row)
                labels.append(f"gmm_diff L{lag}.{name}")
        else:
            for j, t in enumerate(diff_t):
                for lag in range(low, min(high, t) + 1):
                    row = np.full((n_units, n_diff + n_level), np.nan)
                    row[:, j] = values[:, t - lag]
                    rows.append(row)
                    labels.append(f"gmm_diff L{lag}.{name} t{t}")
    iv_series = [(f"{name}" + (f" L{lag}" if lag else ""), series(name, lag))
                 for name, lag in iv_terms] + list(dummies)
    for label, values in iv_series:
        delta = values - _lagged(values, 1)
        rows.append(np.concatenate([delta[:, diff_t], values[:, level_t]], axis=1))
        labels.append(f"iv {label}")
    for name, (low, _high) in gmm.items():
        lag = max(low - 1, 0)
        values = column[name]
        delta = values - _lagged(values, 1)
        collapsed = np.full((n_units, n_diff + n_level), np.nan)
        for i, t in enumerate(level_t):
            source = t - lag
            if source < 1:
                continue
            if collapse:
                collapsed[:, n_diff + i] = delta[:, source]
            else:
                row = np.full((n_units, n_diff + n_level), np.nan)
                row[:, n_diff + i] = delta[:, source]
                rows.append(row)
                labels.append(f"gmm_level D.L{lag}.{name} t{t}")
        if collapse:
            rows.append(collapsed)
            labels.append(f"gmm_level D.L{lag}.{name}")
    constant = np.concatenate([np.zeros((n_units, n_diff)), np.ones((n_units, n_level))], 1)
    rows.append(constant)
    labels.append("constant (levels)")
    return rows, labels


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
    lagged = np.zeros_like(resid)
    lagged[:, order:] = resid[:, :-order]
    d0_units = np.einsum("nr,nr->n", lagged, resid)
    d0 = d0_units.sum()
    d1 = (d0_units ** 2).sum()
    ex = np.einsum("nr,nrk->k", lagged, x_diff)
    temp3 = step["zs_units"].T @ d0_units
    d2 = -2.0 * ex @ step["mxw"] @ temp3
    d3 = ex @ vcov @ ex
    value = float(d0 / np.sqrt(d1 + d2 + d3))
    return value, float(2 * stats.norm.sf(abs(value)))

"""Identification and over-identification tests of linear IV, as ``ivreg2`` / ``ivreghdfe``
report them: Kleibergen-Paap rk LM and Wald statistics, the Cragg-Donald statistic, Hansen's J,
and the Stock-Yogo critical values. The conventions (degrees-of-freedom constants) are in
:mod:`models.iv.tsls`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg

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



def hansen_j(outcome: np.ndarray, regressors: np.ndarray, instruments: np.ndarray,
             clusters: np.ndarray | None = None) -> tuple[float, int]:
    """Hansen's J of the over-identifying restrictions, as ``ivreg2`` reports it after 2SLS.

    ``S = (1/N) sum_i u_i^2 z_i z_i'`` (cluster sums ``Z_g' u_g`` in place of ``z_i u_i`` when
    clustered) from the 2SLS residuals u, no small-sample constant; then the efficient GMM
    estimate with weight ``S^-1`` and ``J = N gbar' S^-1 gbar`` at it, ``gbar = Z'e / N``.
    The arrays must already have the absorbed effects removed; ``regressors`` holds the
    endogenous and the included exogenous columns, ``instruments`` the excluded and the
    included exogenous ones. Returns (J, L - K); J is 0 with 0 degrees of freedom when the
    model is exactly identified.
    """
    y = np.asarray(outcome, float)
    x = np.asarray(regressors, float)
    z = np.asarray(instruments, float)
    n = len(y)
    df = z.shape[1] - x.shape[1]
    if df == 0:
        return 0.0, 0
    zx, zy = z.T @ x, z.T @ y
    zz_inv = np.linalg.pinv(z.T @ z)
    beta = np.linalg.solve(zx.T @ zz_inv @ zx, zx.T @ zz_inv @ zy)

    def moment_cov(resid: np.ndarray) -> np.ndarray:
        scores = z * resid[:, None]
        if clusters is not None:
            scores = pd.DataFrame(scores).groupby(np.asarray(clusters)).sum().to_numpy()
        return scores.T @ scores / n

    weight = np.linalg.pinv(moment_cov(y - x @ beta))
    efficient = np.linalg.solve(zx.T @ weight @ zx, zx.T @ weight @ zy)
    gbar = z.T @ (y - x @ efficient) / n
    return float(n * gbar @ weight @ gbar), int(df)

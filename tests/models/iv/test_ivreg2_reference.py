"""Panel 2SLS against stored Stata ``ivreg2`` output (``data/files/reference/ivreg2``, sources
in its README): two endogenous regressors and four excluded instruments (robust and iid), and
one endogenous regressor with clustered errors; coefficients, standard errors, Kleibergen-Paap
rk LM and Wald F, Anderson LM, Cragg-Donald F and Hansen's J."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import linalg

from models.iv.tsls import fit_panel_iv
from models.panel.fe import partial_out

REFERENCE = Path(__file__).resolve().parents[3] / "data" / "files" / "reference"
FOLDER = REFERENCE / "ivreg2"
ENDOGENOUS, INSTRUMENTS, EXOGENOUS = ["endo1", "endo2"], ["z1", "z2", "z3", "z4"], ["x1", "x2"]
# Stata estimated on the data before exporting it at 8 significant digits (README).
RTOL = 2e-6


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(FOLDER / "sim_multi_endo.csv")


@pytest.fixture(scope="module")
def stata() -> pd.DataFrame:
    return pd.read_csv(FOLDER / "ivreg2.csv", comment="#")


def _reference(stata: pd.DataFrame, model: str) -> tuple[pd.DataFrame, dict[str, float]]:
    rows = stata[stata["model"] == model].drop(columns="data")
    table = rows[rows["quantity"].isin(["coef", "se"])].pivot(index="term", columns="quantity",
                                                              values="value")
    scalars = dict(zip(rows.loc[rows["term"].isna(), "quantity"],
                       rows.loc[rows["term"].isna(), "value"], strict=True))
    return table, scalars


def _assert_second_stage(fit, table: pd.DataFrame) -> None:
    ours = fit.second_stage.set_index("term").rename(index={"Constant": "_cons"})
    np.testing.assert_allclose(ours.loc[table.index, "estimate"], table["coef"], rtol=RTOL)
    np.testing.assert_allclose(ours.loc[table.index, "std_error"], table["se"], rtol=RTOL)


def test_robust_two_endogenous_over_identified_matches_ivreg2(data, stata):
    """``robust small``: rk LM (chi2(3)), rk Wald F, Cragg-Donald F and Hansen J (chi2(2))."""
    table, printed = _reference(stata, "robust_small")
    fit = fit_panel_iv(data, "y", ENDOGENOUS, INSTRUMENTS, EXOGENOUS, [], vcov="hetero")
    assert fit.diagnostics["kp_rk_lm_df"] == printed["iddf"] == 3
    _assert_second_stage(fit, table)
    stats = fit.diagnostics
    np.testing.assert_allclose(stats["kp_rk_lm"], printed["idstat"], rtol=RTOL)
    np.testing.assert_allclose(stats["kp_rk_lm_p"], printed["idp"], rtol=1e-4)
    np.testing.assert_allclose(stats["kp_rk_wald_f"], printed["widstat"], rtol=RTOL)
    np.testing.assert_allclose(stats["cragg_donald_f"], printed["cdf"], rtol=RTOL)
    assert stats["hansen_j_df"] == printed["jdf"] == 2
    np.testing.assert_allclose(stats["hansen_j"], printed["j"], rtol=1e-5)
    np.testing.assert_allclose(stats["hansen_j_p"], printed["jp"], rtol=1e-5)
    # Robust errors move the identification statistics away from their iid values.
    assert abs(stats["kp_rk_wald_f"] - stats["cragg_donald_f"]) > 1.0


def test_iid_two_endogenous_matches_ivreg2(data, stata):
    table, printed = _reference(stata, "iid_small")
    fit = fit_panel_iv(data, "y", ENDOGENOUS, INSTRUMENTS, EXOGENOUS, [], vcov="iid")
    _assert_second_stage(fit, table)
    np.testing.assert_allclose(fit.diagnostics["kp_rk_lm"], printed["idstat"], rtol=RTOL)
    np.testing.assert_allclose(fit.diagnostics["cragg_donald_f"], printed["cdf"], rtol=RTOL)
    np.testing.assert_allclose(fit.diagnostics["kp_rk_wald_f"], printed["widstat"], rtol=RTOL)


def test_singleton_clusters_reproduce_the_robust_ivreg2_statistics(data, stata):
    """With one observation per cluster the clustered score covariance is the robust one, and
    ivreg2's clustered rk F constant, chi2 / (N - 1) (N - L) (G - 1) / G / L1, equals its
    robust one, chi2 / N (N - L) / L1, at G = N: the cluster path with K = 2 must give the
    published robust rk LM, rk Wald F and J (no published clustered K = 2 output was found)."""
    _, printed = _reference(stata, "robust_small")
    fit = fit_panel_iv(data.assign(row=np.arange(len(data))), "y", ENDOGENOUS, INSTRUMENTS,
                       EXOGENOUS, [], vcov="cluster:row")
    np.testing.assert_allclose(fit.diagnostics["kp_rk_lm"], printed["idstat"], rtol=RTOL)
    np.testing.assert_allclose(fit.diagnostics["kp_rk_wald_f"], printed["widstat"], rtol=RTOL)
    np.testing.assert_allclose(fit.diagnostics["hansen_j"], printed["j"], rtol=1e-5)


def test_clustered_over_identified_matches_ivreg2(stata):
    """``small cluster(cluster_id)``, 50 clusters, K = 1, L = 2: the cluster-sum score
    covariance and ivreg2's clustered constants in the rk LM, rk Wald F, J and the SEs."""
    table, printed = _reference(stata, "cluster_small")
    data = pd.read_csv(FOLDER / "sim_cluster.csv")
    fit = fit_panel_iv(data, "y", ["endo1"], ["z1", "z2"], ["x1"], [],
                       vcov="cluster:cluster_id")
    _assert_second_stage(fit, table)
    stats = fit.diagnostics
    assert printed["N_clust"] == data["cluster_id"].nunique() == 50
    assert stats["kp_rk_lm_df"] == printed["iddf"] == 2
    np.testing.assert_allclose(stats["kp_rk_lm"], printed["idstat"], rtol=RTOL)
    np.testing.assert_allclose(stats["kp_rk_wald_f"], printed["widstat"], rtol=RTOL)
    np.testing.assert_allclose(stats["cragg_donald_f"], printed["cdf"], rtol=RTOL)
    np.testing.assert_allclose(stats["hansen_j"], printed["j"], rtol=1e-5)
    # Clustering matters here: the robust statistic is another number.
    robust = fit_panel_iv(data, "y", ["endo1"], ["z1", "z2"], ["x1"], [], vcov="hetero")
    assert abs(robust.diagnostics["kp_rk_lm"] - printed["idstat"]) > 1.0


def _kp_rk(x: np.ndarray, z: np.ndarray, groups: np.ndarray, residuals: np.ndarray) -> float:
    """Kleibergen & Paap (2006, section 2) rk statistic of H0: rank(Pi) = K - 1, written here
    from the paper with symmetric square roots (the module under test uses Cholesky factors):
    Theta = (Z'Z)^1/2 Pi (X'X)^-1/2 = U S V', lambda = (B_perp kron A_perp') vec(Theta),
    rk = lambda' (Phi W Phi')^-1 lambda, W the cluster-robust covariance of vec(Theta) from
    the scores residuals_i kron z_i summed by group."""
    n, k = x.shape
    pi = np.linalg.solve(z.T @ z, z.T @ x)
    g_half = linalg.sqrtm(z.T @ z).real
    f_half = linalg.inv(linalg.sqrtm(x.T @ x).real)
    theta = g_half @ pi @ f_half
    u, _, vt = np.linalg.svd(theta)
    v = vt.T
    u12, u22 = u[:k - 1, k - 1:], u[k - 1:, k - 1:]
    v12, v22 = v[:k - 1, k - 1:], v[k - 1:, k - 1:]
    a_perp = np.vstack([u12, u22]) @ np.linalg.inv(u22) @ linalg.sqrtm(u22 @ u22.T).real
    b_perp = linalg.sqrtm(v22 @ v22.T).real @ np.linalg.inv(v22.T) @ np.hstack([v12.T, v22.T])
    phi = np.kron(b_perp, a_perp.T)
    lam = phi @ theta.reshape(-1, order="F")
    scores = np.stack([np.kron(residuals[i], z[i]) for i in range(n)])
    sums = pd.DataFrame(scores).groupby(groups).sum().to_numpy()
    bread = np.kron(np.eye(k), np.linalg.inv(z.T @ z))
    w = np.kron(f_half.T, g_half) @ bread @ (sums.T @ sums) @ bread @ np.kron(f_half, g_half.T)
    return float(lam @ np.linalg.solve(phi @ w @ phi.T, lam))


def _partialled(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    frame = data.assign(const=1.0)
    return (np.asarray(partial_out(frame, ENDOGENOUS, [*EXOGENOUS, "const"], [])),
            np.asarray(partial_out(frame, INSTRUMENTS, [*EXOGENOUS, "const"], [])))


def test_kp_written_from_the_paper_reproduces_ivreg2_then_checks_fifty_clusters(data, stata):
    """The formula above first reproduces ivreg2's robust rk LM and Wald F at K = 2 (one
    group per row; Wald F = chi2 / N (N - L) / L1, L = 7 instruments with the constant), then
    gives the module's statistics with 50 clusters of 20 rows, ivreg2's clustered constant
    chi2 / (N - 1) (N - L) (G - 1) / G / L1 on the Wald version."""
    _, printed = _reference(stata, "robust_small")
    x, z = _partialled(data)
    first_stage = x - z @ np.linalg.lstsq(z, x, rcond=None)[0]
    n, n_all, n_excluded = len(data), len(INSTRUMENTS) + len(EXOGENOUS) + 1, len(INSTRUMENTS)
    rows = np.arange(n)
    np.testing.assert_allclose(_kp_rk(x, z, rows, x), printed["idstat"], rtol=RTOL)
    np.testing.assert_allclose(_kp_rk(x, z, rows, first_stage) / n * (n - n_all) / n_excluded,
                               printed["widstat"], rtol=RTOL)
    groups = rows // 20
    fit = fit_panel_iv(data.assign(group=groups), "y", ENDOGENOUS, INSTRUMENTS, EXOGENOUS, [],
                       vcov="cluster:group")
    n_groups = 50
    np.testing.assert_allclose(fit.diagnostics["kp_rk_lm"], _kp_rk(x, z, groups, x),
                               rtol=1e-9)
    wald = _kp_rk(x, z, groups, first_stage)
    np.testing.assert_allclose(
        fit.diagnostics["kp_rk_wald_f"],
        wald / (n - 1) * (n - n_all) * (n_groups - 1) / n_groups / n_excluded, rtol=1e-9)
    assert abs(fit.diagnostics["kp_rk_lm"] - printed["idstat"]) > 10

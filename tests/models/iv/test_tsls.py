"""Panel 2SLS and Kleibergen-Paap diagnostics against linearmodels, pyfixest and closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from linearmodels.iv import IV2SLS
from threadpoolctl import threadpool_limits

from inference.datasets import default_data_path
from models.iv.diagnostics import kleibergen_paap, stock_yogo_critical_value
from models.iv.tsls import fit_panel_iv, two_stage_least_squares
from models.panel.fe import partial_out

CONTROLS = ["Eco", "Huc", "Edu", "Fis", "Gov"]
EFFECTS = ["city", "year"]
IV_FORMULA = "Inn ~ Eco + Huc + Edu + Fis + Gov | city + year | AI ~ IV"


@pytest.fixture(scope="module", autouse=True)
def _single_threaded_blas():
    """linearmodels' many small SVDs crawl when BLAS threads compete for a loaded machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    # The first 60 cities: small enough for linearmodels with explicit city dummies.
    full = pd.read_csv(default_data_path("zhao2025"))
    keep = full["city"].drop_duplicates().iloc[:60]
    return full[full["city"].isin(keep)].reset_index(drop=True)


@pytest.fixture(scope="module")
def robust_fit(panel):
    return fit_panel_iv(panel, "Inn", ["AI"], ["IV"], CONTROLS, EFFECTS, vcov="hetero")


@pytest.fixture(scope="module")
def clustered_fit(panel):
    return fit_panel_iv(panel, "Inn", ["AI"], ["IV"], CONTROLS, EFFECTS, vcov="cluster:city")


@pytest.fixture(scope="module")
def dummies(panel) -> pd.DataFrame:
    city = pd.get_dummies(panel["city"], prefix="c", drop_first=True, dtype=float)
    year = pd.get_dummies(panel["year"], prefix="y", drop_first=True, dtype=float)
    return pd.concat([city, year], axis=1).assign(const=1.0)


def _linearmodels_iv(panel, dummies, **fit_args):
    exog = pd.concat([panel[CONTROLS], dummies], axis=1)
    model = IV2SLS(panel["Inn"], exog, panel[["AI"]], panel[["IV"]])
    return model.fit(**fit_args)


def test_2sls_hc1_equals_linearmodels_with_dummies(panel, robust_fit, dummies):
    ours = robust_fit.second_stage.set_index("term")
    # debiased=True scales the White sandwich by N / (N - k) with every dummy counted: HC1.
    peer = _linearmodels_iv(panel, dummies, cov_type="robust", debiased=True)
    terms = ["AI", *CONTROLS]
    np.testing.assert_allclose(ours.loc[terms, "estimate"], peer.params[terms], rtol=1e-8)
    np.testing.assert_allclose(ours.loc[terms, "std_error"], peer.std_errors[terms], rtol=1e-8)


def test_2sls_clustered_equals_linearmodels_up_to_the_dof_constant(panel, clustered_fit,
                                                                   dummies):
    ours = clustered_fit.second_stage.set_index("term")
    peer = _linearmodels_iv(panel, dummies, cov_type="clustered", clusters=panel["city"],
                            debiased=True)
    terms = ["AI", *CONTROLS]
    np.testing.assert_allclose(ours.loc[terms, "estimate"], peer.params[terms], rtol=1e-8)
    # linearmodels counts the city dummies in k; city is nested in the cluster, so we (and
    # pyfixest, fixest, ivreghdfe) count it as one parameter: k = 6 slopes + 1 + 11 years.
    n, n_cities = len(panel), panel["city"].nunique()
    k_all = 6 + n_cities + 11
    expected = np.sqrt((n - k_all) / (n - 18))
    ratio = (ours.loc[terms, "std_error"] / peer.std_errors[terms]).to_numpy()
    np.testing.assert_allclose(ratio, expected, rtol=1e-8)


def test_2sls_equals_pyfixest(panel, clustered_fit):
    peer = pf.feols(IV_FORMULA, data=panel, vcov={"CRV1": "city"}).tidy()
    ours = clustered_fit.second_stage.set_index("term")
    np.testing.assert_allclose(ours.loc[peer.index, "estimate"], peer["Estimate"], rtol=1e-10)
    np.testing.assert_allclose(ours.loc[peer.index, "std_error"], peer["Std. Error"],
                               rtol=1e-10)


def test_xtreg_constant_is_mean_of_y_minus_fitted_slopes(panel, robust_fit, dummies):
    peer = _linearmodels_iv(panel, dummies, cov_type="robust", debiased=True)
    year_terms = [c for c in dummies.columns if c.startswith("y_")]
    slopes = ["AI", *CONTROLS, *year_terms]
    design = pd.concat([panel[["AI", *CONTROLS]], dummies[year_terms]], axis=1)
    expected = (panel["Inn"] - design[slopes] @ peer.params[slopes]).mean()
    constant = robust_fit.second_stage.set_index("term").loc["Constant", "estimate"]
    np.testing.assert_allclose(constant, expected, rtol=1e-8)


def test_recentred_2sls_sandwich_reproduces_the_slope_standard_errors(panel, robust_fit):
    """The constant's sandwich is the slopes' sandwich: check it on the slopes."""
    groups = panel["city"].to_numpy()
    year = pd.get_dummies(panel["year"], drop_first=True, dtype=float).to_numpy()

    def recentre(values):
        means = pd.DataFrame(values).groupby(groups).transform("mean").to_numpy()
        return values - means + values.mean(axis=0)

    w = np.column_stack([panel[CONTROLS].to_numpy(float), year])
    ones = np.ones((len(panel), 1))
    x = np.column_stack([recentre(np.column_stack([panel["AI"], w])), ones])
    z = np.column_stack([recentre(np.column_stack([panel["IV"], w])), ones])
    y = recentre(panel[["Inn"]].to_numpy(float))[:, 0]
    coef, cov, _ = two_stage_least_squares(y, x, z, "hetero", panel, groups)
    ours = robust_fit.second_stage.set_index("term")
    np.testing.assert_allclose(coef[0], ours.loc["AI", "estimate"], rtol=1e-8)
    np.testing.assert_allclose(np.sqrt(cov[0, 0]), ours.loc["AI", "std_error"], rtol=1e-8)


def test_first_stage_table_equals_linearmodels(panel, robust_fit, dummies):
    peer = _linearmodels_iv(panel, dummies, cov_type="robust", debiased=True).first_stage
    peer_params = peer.individual["AI"].params
    peer_se = peer.individual["AI"].std_errors
    ours = robust_fit.first_stage["AI"].set_index("term")
    np.testing.assert_allclose(ours.loc["IV", "estimate"], peer_params["IV"], rtol=1e-8)
    np.testing.assert_allclose(ours.loc["IV", "std_error"], peer_se["IV"], rtol=1e-8)
    np.testing.assert_allclose(ours.loc["partial_r2", "estimate"],
                               peer.diagnostics.loc["AI", "partial.rsquared"], rtol=1e-8)


def test_kp_wald_f_equals_robust_first_stage_f(panel, robust_fit, clustered_fit):
    """One endogenous regressor, one instrument: ivreg2's rk Wald F is the HC1 / CRV1
    first-stage F of the excluded instrument (pyfixest computes it independently)."""
    for fit, vcov in ((robust_fit, "hetero"), (clustered_fit, {"CRV1": "city"})):
        peer = pf.feols(IV_FORMULA, data=panel, vcov=vcov)
        peer.IV_Diag()
        np.testing.assert_allclose(fit.diagnostics["kp_rk_wald_f"], peer._f_stat_1st_stage,
                                   rtol=1e-6)
        t_iv = fit.first_stage["AI"].set_index("term").loc["IV", "stat"]
        np.testing.assert_allclose(fit.diagnostics["kp_rk_wald_f"], t_iv ** 2, rtol=1e-6)


def test_raw_rk_wald_equals_linearmodels_first_stage_wald(panel, robust_fit):
    x = partial_out(panel, ["AI"], CONTROLS, EFFECTS)
    z = partial_out(panel, ["IV"], CONTROLS, EFFECTS)
    y = partial_out(panel, ["Inn"], CONTROLS, EFFECTS)
    peer = IV2SLS(pd.Series(y[:, 0]), None, pd.DataFrame(x, columns=["AI"]),
                  pd.DataFrame(z, columns=["IV"])).fit(cov_type="robust", debiased=False)
    wald = peer.first_stage.diagnostics.loc["AI", "f.stat"]
    np.testing.assert_allclose(robust_fit.extras["rank_test"].wald, wald, rtol=1e-6)
    # Anderson's LM (iid) is N times the partial R2 of the first stage.
    anderson = kleibergen_paap(x, z, covariance="iid").lm
    partial = peer.first_stage.diagnostics.loc["AI", "partial.rsquared"]
    np.testing.assert_allclose(anderson, len(panel) * partial, rtol=1e-6)


def test_kp_lm_equals_robust_score_statistic(panel, robust_fit):
    x = partial_out(panel, ["AI"], CONTROLS, EFFECTS)[:, 0]
    z = partial_out(panel, ["IV"], CONTROLS, EFFECTS)[:, 0]
    hand = (z @ x) ** 2 / np.sum(z ** 2 * x ** 2)
    np.testing.assert_allclose(robust_fit.diagnostics["kp_rk_lm"], hand, rtol=1e-6)
    assert robust_fit.diagnostics["kp_rk_lm_df"] == 1
    clusters = panel["city"].to_numpy()
    sums = pd.Series(z * x).groupby(clusters).sum().to_numpy()
    clustered = kleibergen_paap(x[:, None], z[:, None], clusters=clusters).lm
    np.testing.assert_allclose(clustered, (z @ x) ** 2 / np.sum(sums ** 2), rtol=1e-6)


def test_kp_lm_two_instruments_equals_score_test():
    rng = np.random.default_rng(7)
    n = 500
    z = rng.normal(size=(n, 2))
    x = 0.1 * z[:, 0] + rng.normal(size=n) * (1 + np.abs(z[:, 1]))
    z, x = z - z.mean(axis=0), x - x.mean()
    score = z.T @ x
    meat = (z * x[:, None] ** 2).T @ z
    hand = score @ np.linalg.solve(meat, score)
    rank = kleibergen_paap(x[:, None], z)
    np.testing.assert_allclose(rank.lm, hand, rtol=1e-8)
    assert rank.df == 2


def test_kp_general_formula_gives_anderson_lm_with_two_endogenous():
    """With W = I / N the rk statistic for rank K - 1 is N times the smallest squared
    canonical correlation (Anderson 1951), computed here by an eigenvalue problem."""
    rng = np.random.default_rng(11)
    n = 800
    z = rng.normal(size=(n, 3))
    x = z @ np.array([[0.5, 0.1], [0.2, 0.05], [0.0, 0.3]]) + rng.normal(size=(n, 2))
    z, x = z - z.mean(axis=0), x - x.mean(axis=0)
    matrix = np.linalg.solve(x.T @ x, x.T @ z @ np.linalg.solve(z.T @ z, z.T @ x))
    smallest = np.min(np.linalg.eigvals(matrix).real)
    rank = kleibergen_paap(x, z, covariance="iid")
    np.testing.assert_allclose(rank.lm, n * smallest, rtol=1e-8)
    np.testing.assert_allclose(rank.wald, n * smallest / (1 - smallest), rtol=1e-8)
    assert rank.df == 2


def test_stock_yogo_lookup():
    assert stock_yogo_critical_value(1, 1) == 16.38
    assert stock_yogo_critical_value(1, 3, 0.15) == 12.83
    assert stock_yogo_critical_value(2, 2) == 7.03
    with pytest.raises(KeyError, match="no Stock-Yogo"):
        stock_yogo_critical_value(3, 3)


def test_diagnostics_as_published_terms(robust_fit):
    tidy = robust_fit.tidy().set_index("term")
    for term in ("kp_rk_lm", "kp_rk_lm_p", "kp_rk_wald_f", "stock_yogo_10pct", "Constant",
                 "R2", "AI"):
        assert np.isfinite(tidy.loc[term, "estimate"]), term
    assert tidy.loc["stock_yogo_10pct", "estimate"] == 16.38


def test_bad_input_is_named(panel):
    with pytest.raises(KeyError, match="nope"):
        fit_panel_iv(panel, "Inn", ["AI"], ["nope"], CONTROLS, EFFECTS)
    with pytest.raises(ValueError, match="endogenous"):
        fit_panel_iv(panel, "Inn", ["AI"], ["IV"], ["AI", *CONTROLS], EFFECTS)

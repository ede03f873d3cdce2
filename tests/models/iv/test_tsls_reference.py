"""Panel 2SLS with K >= 1 endogenous regressors and its diagnostics, against Stata's ivregress
output stored as a fixture, and against linearmodels and pyfixest on the same data.

The data: linearmodels' simulated IV data set (600 rows, 120 clusters of 5), with
``cluster_id`` as the absorbed effect where a test needs one. See
``data/files/reference/ivregress_simulated/README.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from linearmodels.iv import IV2SLS, IVGMM
from threadpoolctl import threadpool_limits

from models.iv.diagnostics import hansen_j
from models.iv.tsls import fit_panel_iv
from models.panel.fe import partial_out

REFERENCE = Path(__file__).resolve().parents[3] / "data" / "files" / "reference"
SIMULATED = REFERENCE / "ivregress_simulated"
EXOG = ["x3", "x4", "x5"]


@pytest.fixture(scope="module", autouse=True)
def _single_threaded_blas():
    """linearmodels' many small SVDs crawl when BLAS threads compete for a loaded machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return pd.read_csv(SIMULATED / "simulated.csv")


@pytest.fixture(scope="module")
def stata() -> pd.DataFrame:
    return pd.read_csv(SIMULATED / "stata_ivregress.csv", comment="#")


def test_2sls_matches_stata_ivregress_small(simulated, stata):
    """One and two endogenous regressors; unadjusted, robust and clustered, each with Stata's
    small-sample constants: every coefficient and standard error to the printed 12 digits."""
    assert stata["model"].nunique() == 5
    for (_, depvar, endogenous, vcov), ref in stata.groupby(
            ["model", "depvar", "endogenous", "vcov"], sort=False):
        fit = fit_panel_iv(simulated, depvar, endogenous.split(), ["z1", "z2"], EXOG, [],
                           vcov=vcov)
        ours = fit.second_stage.set_index("term").rename(index={"Constant": "_cons"})
        ref = ref.set_index("term")
        np.testing.assert_allclose(ours.loc[ref.index, "estimate"], ref["estimate"],
                                   rtol=5e-10, err_msg=f"{endogenous} {vcov}")
        np.testing.assert_allclose(ours.loc[ref.index, "std_error"], np.sqrt(ref["variance"]),
                                   rtol=5e-9, err_msg=f"{endogenous} {vcov}")


def _dummies(frame: pd.DataFrame) -> pd.DataFrame:
    dummies = pd.get_dummies(frame["cluster_id"], prefix="c", drop_first=True, dtype=float)
    return pd.concat([frame[EXOG], dummies], axis=1).assign(const=1.0)


def _instrumented(simulated: pd.DataFrame) -> pd.DataFrame:
    """A third instrument (z1 * z2) makes the two-endogenous model over-identified."""
    return simulated.assign(z3=simulated["z1"] * simulated["z2"])


def test_two_endogenous_with_absorbed_effect_equal_linearmodels_with_dummies(simulated):
    data = _instrumented(simulated)
    endog, instr = ["x1", "x2"], ["z1", "z2", "z3"]
    ours = fit_panel_iv(data, "y_robust", endog, instr, EXOG, ["cluster_id"], vcov="hetero")
    peer = IV2SLS(data["y_robust"], _dummies(data), data[endog], data[instr]).fit(
        cov_type="robust", debiased=True)
    table = ours.second_stage.set_index("term")
    terms = [*endog, *EXOG]
    np.testing.assert_allclose(table.loc[terms, "estimate"], peer.params[terms], rtol=1e-9)
    np.testing.assert_allclose(table.loc[terms, "std_error"], peer.std_errors[terms], rtol=1e-8)
    # The first stages, one per endogenous regressor.
    for name in endog:
        first = ours.first_stage[name].set_index("term")
        individual = peer.first_stage.individual[name]
        np.testing.assert_allclose(first.loc[instr, "estimate"], individual.params[instr],
                                   rtol=1e-8)
        np.testing.assert_allclose(first.loc[instr, "std_error"],
                                   individual.std_errors[instr], rtol=1e-8)
        np.testing.assert_allclose(first.loc["partial_r2", "estimate"],
                                   peer.first_stage.diagnostics.loc[name, "partial.rsquared"],
                                   rtol=1e-8)
        # linearmodels' f.stat is the Wald chi2 of the excluded instruments (HC1 here).
        np.testing.assert_allclose(first.loc["first_stage_f", "estimate"] * len(instr),
                                   peer.first_stage.diagnostics.loc[name, "f.stat"],
                                   rtol=1e-7)


def test_two_endogenous_clustered_equal_linearmodels_up_to_the_nested_effect(simulated):
    data = _instrumented(simulated)
    endog, instr = ["x1", "x2"], ["z1", "z2", "z3"]
    ours = fit_panel_iv(data, "y_clustered", endog, instr, EXOG, ["cluster_id"],
                        vcov="cluster:cluster_id")
    peer = IV2SLS(data["y_clustered"], _dummies(data), data[endog], data[instr]).fit(
        cov_type="clustered", clusters=data["cluster_id"], debiased=True)
    table = ours.second_stage.set_index("term")
    terms = [*endog, *EXOG]
    np.testing.assert_allclose(table.loc[terms, "estimate"], peer.params[terms], rtol=1e-9)
    # The effect is nested in the cluster: one parameter for us (and Stata's reghdfe), all 120
    # dummies for linearmodels.
    n = len(data)
    expected = np.sqrt((n - (5 + 120)) / (n - (5 + 1)))
    np.testing.assert_allclose(table.loc[terms, "std_error"] / peer.std_errors[terms],
                               expected, rtol=1e-8)


@pytest.mark.parametrize("vcov", ["hetero", "cluster:cluster_id"])
def test_kp_wald_f_over_identified_equals_robust_first_stage_f(simulated, vcov):
    """K = 1, L = 2: ivreg2's rk Wald F is the robust first-stage F of the excluded
    instruments, whose small-sample constant counts the first stage's parameters (instruments,
    controls, absorbed levels), not the second stage's: pyfixest computes it independently."""
    ours = fit_panel_iv(simulated, "y_robust", ["x1"], ["z1", "z2"], EXOG, ["cluster_id"],
                        vcov=vcov)
    peer_vcov = "hetero" if vcov == "hetero" else {"CRV1": "cluster_id"}
    peer = pf.feols("y_robust ~ x3 + x4 + x5 | cluster_id | x1 ~ z1 + z2", data=simulated,
                    vcov=peer_vcov)
    peer.IV_Diag()
    np.testing.assert_allclose(ours.diagnostics["kp_rk_wald_f"], peer._f_stat_1st_stage,
                               rtol=1e-7)
    first = ours.first_stage["x1"].set_index("term").loc["first_stage_f", "estimate"]
    np.testing.assert_allclose(first, peer._f_stat_1st_stage, rtol=1e-7)
    if vcov == "hetero":
        # The second stage has one parameter fewer than the first: the old constant was off by
        # (N - k_first) / (N - k_second), 600 - 125 against 600 - 124 here.
        assert ours.extras["df_k"] == ours.extras["df_k_second"] + 1


def test_cragg_donald_f_one_endogenous_equals_classical_first_stage_f(simulated):
    ours = fit_panel_iv(simulated, "y_robust", ["x1"], ["z1", "z2"], EXOG, ["cluster_id"])
    peer = pf.feols("y_robust ~ x3 + x4 + x5 | cluster_id | x1 ~ z1 + z2", data=simulated,
                    vcov="iid")
    peer.IV_Diag()
    np.testing.assert_allclose(ours.diagnostics["cragg_donald_f"], peer._f_stat_1st_stage,
                               rtol=1e-7)


def test_cragg_donald_f_two_endogenous_equals_stock_yogo_g_min(simulated):
    """Stock & Yogo (2005) eq. (3.4): g_min, the smallest eigenvalue of
    Sigma_VV^-1/2' X~' P_Z~ X~ Sigma_VV^-1/2 / L with Sigma_VV = X~' M_Z~ X~ / (N - k)."""
    data = _instrumented(simulated)
    endog, instr = ["x1", "x2"], ["z1", "z2", "z3"]
    ours = fit_panel_iv(data, "y_robust", endog, instr, EXOG, ["cluster_id"])
    x = partial_out(data, endog, EXOG, ["cluster_id"])
    z = partial_out(data, instr, EXOG, ["cluster_id"])
    fitted = z @ np.linalg.lstsq(z, x, rcond=None)[0]
    k = len(instr) + len(EXOG) + data["cluster_id"].nunique()
    sigma = (x - fitted).T @ (x - fitted) / (len(data) - k)
    root = np.linalg.inv(np.linalg.cholesky(sigma))
    g_min = np.linalg.eigvalsh(root @ (fitted.T @ fitted) @ root.T).min() / len(instr)
    np.testing.assert_allclose(ours.diagnostics["cragg_donald_f"], g_min, rtol=1e-8)
    assert ours.diagnostics["stock_yogo_10pct"] == 13.43  # Stock-Yogo Table 5.2, K=2, L=3


@pytest.mark.parametrize("clustered", [False, True])
def test_hansen_j_equals_linearmodels_two_step_gmm(simulated, clustered):
    """ivreg2's J after 2SLS: the efficient-GMM criterion with the 2SLS moment covariance,
    linearmodels' IVGMM (two steps) on the same within-transformed data."""
    data = _instrumented(simulated)
    endog, instr = ["x1", "x2"], ["z1", "z2", "z3"]
    vcov = "cluster:cluster_id" if clustered else "hetero"
    ours = fit_panel_iv(data, "y_robust", endog, instr, EXOG, ["cluster_id"], vcov=vcov)
    within = pd.DataFrame(partial_out(data, ["y_robust", *endog, *EXOG, *instr], [],
                                      ["cluster_id"]),
                          columns=["y_robust", *endog, *EXOG, *instr])
    options = ({"weight_type": "clustered", "clusters": data["cluster_id"].to_numpy()}
               if clustered else {"weight_type": "robust"})
    peer = IVGMM(within["y_robust"], within[EXOG], within[endog], within[instr],
                 **options).fit(iter_limit=2)
    np.testing.assert_allclose(ours.diagnostics["hansen_j"], peer.j_stat.stat, rtol=1e-8)
    assert ours.diagnostics["hansen_j_df"] == peer.j_stat.df == 1
    np.testing.assert_allclose(ours.diagnostics["hansen_j_p"], peer.j_stat.pval, rtol=1e-6)


def test_hansen_j_is_zero_when_exactly_identified(simulated):
    y = simulated["y_robust"].to_numpy()
    x = simulated[["x1", "x2", *EXOG]].to_numpy()
    z = simulated[["z1", "z2", *EXOG]].to_numpy()
    assert hansen_j(y, x, z) == (0.0, 0)
    fit = fit_panel_iv(simulated, "y_robust", ["x1", "x2"], ["z1", "z2"], EXOG, [])
    assert "hansen_j" not in fit.diagnostics


def test_bad_input_names_the_rule(simulated):
    with pytest.raises(ValueError, match="underidentified"):
        fit_panel_iv(simulated, "y_robust", ["x1", "x2"], ["z1"], EXOG, [])
    with pytest.raises(ValueError, match="z2b.*collinear"):
        fit_panel_iv(simulated.assign(z2b=2 * simulated["z2"]), "y_robust", ["x1"],
                     ["z1", "z2", "z2b"], EXOG, [])
    with pytest.raises(ValueError, match="both as excluded instrument and as control"):
        fit_panel_iv(simulated, "y_robust", ["x1"], ["z1", "x3"], EXOG, [])
    with pytest.raises(ValueError, match="'iid' or 'cluster"):
        fit_panel_iv(simulated, "y_robust", ["x1"], ["z1"], EXOG, [], vcov="HC3")

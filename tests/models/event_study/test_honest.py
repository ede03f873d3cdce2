"""Honest confidence sets against HonestDiD's R output for the Benzarti & Carloni (2019)
example (fixture ``honestdid_bcdata.json``, source named inside) and against known results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from models.event_study.honest import (
    conditional_cs_delta_rm,
    conditional_cs_delta_sd,
    flci_delta_sd,
    folded_normal_quantile,
    original_cs,
    sensitivity_results,
)

FIXTURE = json.loads((Path(__file__).with_name("honestdid_bcdata.json")).read_text())
BETA = np.array(FIXTURE["betahat"])
SIGMA = np.array(FIXTURE["sigma"])
PRE, POST = FIXTURE["numPrePeriods"], FIXTURE["numPostPeriods"]
R = FIXTURE["r_output"]
# HonestDiD's grid for Delta^RM: 1,000 points on +/- 20 sd of the target, so its ends are
# rounded inward by up to one step; its FLCI uses a folded-normal quantile from 10^6 draws
# (about 0.1% noise) and its C-LF set a least-favourable value from 1,000 draws.
R_GRID_STEP = 40 * np.sqrt(SIGMA[PRE, PRE]) / 999
FLCI_TOL = 1e-3  # about 5% of the target's standard error (0.019)
RM_TOL = 2e-3


def test_original_interval_matches_honestdid():
    lb, ub = original_cs(BETA, SIGMA, PRE, POST)
    assert lb == pytest.approx(R["originalCS"]["lb"], abs=1e-12)
    assert ub == pytest.approx(R["originalCS"]["ub"], abs=1e-12)


@pytest.mark.parametrize("index", range(4))
def test_flci_matches_honestdid(index):
    table = R["deltaSD_FLCI"]
    result = flci_delta_sd(BETA, SIGMA, PRE, POST, table["M"][index])
    assert result["lb"] == pytest.approx(table["lb"][index], abs=FLCI_TOL)
    assert result["ub"] == pytest.approx(table["ub"][index], abs=FLCI_TOL)


def test_flci_half_length_at_m0_matches_honestdid():
    result = flci_delta_sd(BETA, SIGMA, PRE, POST, 0.0)
    assert result["half_length"] == pytest.approx(R["flci_M0"]["optimalHalfLength"], rel=3e-3)


@pytest.mark.parametrize("index", range(4))
def test_relative_magnitudes_set_matches_honestdid(index):
    table = R["deltaRM_CLF"]
    result = conditional_cs_delta_rm(BETA, SIGMA, PRE, POST, table["Mbar"][index],
                                     grid_points=101)
    # Refined ends lie within one of HonestDiD's grid steps outside its rounded ends.
    assert table["lb"][index] - R_GRID_STEP - RM_TOL <= result["lb"] <= table["lb"][index] + RM_TOL
    assert table["ub"][index] - RM_TOL <= result["ub"] <= table["ub"][index] + R_GRID_STEP + RM_TOL


def test_relative_magnitudes_on_honestdid_grid():
    table = R["deltaRM_CLF"]
    result = conditional_cs_delta_rm(BETA, SIGMA, PRE, POST, table["Mbar"][0], refine=False)
    assert result["lb"] == pytest.approx(table["lb"][0], abs=RM_TOL)
    assert result["ub"] == pytest.approx(table["ub"][0], abs=RM_TOL)


def test_delta_sd_zero_extrapolates_a_linear_pre_trend():
    # beta = linear trend through the reference period + effects: the M = 0 interval is
    # centred on the effect whatever the covariance.
    times = np.r_[-4, -3, -2, -1, 1, 2, 3]
    tau = np.r_[0, 0, 0, 0, 0.3, 0.5, 0.2]
    beta = 0.07 * times + tau
    l_vec = np.full(3, 1 / 3)
    result = flci_delta_sd(beta, SIGMA[1:, 1:], 4, 3, 0.0, l_vec)
    assert result["estimate"] == pytest.approx(tau[4:].mean(), abs=1e-9)


def test_delta_sd_zero_with_independent_errors_is_ols_extrapolation():
    # Sigma = s^2 I: the best unbiased estimator under a linear trend through delta_0 = 0
    # subtracts the slope fitted through the origin on the pre-periods.
    rng = np.random.default_rng(3)
    beta = rng.normal(size=7)
    sigma = 0.04 * np.eye(7)
    t_pre, t_post = np.arange(-4, 0), np.arange(1, 4)
    l_vec = np.array([0.2, 0.3, 0.5])
    slope = t_pre @ beta[:4] / (t_pre @ t_pre)
    weights = np.r_[-(l_vec @ t_post) * t_pre / (t_pre @ t_pre), l_vec]
    result = flci_delta_sd(beta, sigma, 4, 3, 0.0, l_vec)
    assert result["estimate"] == pytest.approx(l_vec @ beta[4:] - slope * (l_vec @ t_post))
    assert result["half_length"] == pytest.approx(
        stats.norm.ppf(0.975) * np.sqrt(weights @ sigma @ weights), rel=1e-7)


def test_sets_widen_with_the_bound():
    results = sensitivity_results(BETA, SIGMA, PRE, POST, np.full(POST, 1 / POST),
                                  m_values=(0, 0.02, 0.05), mbar_values=(0, 0.5, 1),
                                  grid_points=51)
    for kind in ("DeltaSD", "DeltaRM"):
        sets = [r for r in results if r.restriction == kind]
        for narrow, wide in zip(sets, sets[1:], strict=False):
            assert wide.lb <= narrow.lb + 1e-6 and wide.ub >= narrow.ub - 1e-6


def test_folded_normal_quantile():
    assert folded_normal_quantile(0.95, 0.0) == pytest.approx(stats.norm.ppf(0.975))
    c = folded_normal_quantile(0.9, 1.5)
    assert stats.norm.cdf(c - 1.5) - stats.norm.cdf(-c - 1.5) == pytest.approx(0.9)


@pytest.mark.parametrize(("kwargs", "rule"), [
    ({"betahat": BETA[:-1]}, "one coefficient per event period"),
    ({"sigma": SIGMA[:-1]}, "covariance conformable"),
    ({"l_vec": np.ones(3)}, "one weight per post period"),
    ({"M": -0.1}, r"Delta\^SD"),
    ({"alpha": 1.5}, "test size"),
])
def test_bad_input_names_the_rule(kwargs, rule):
    args = {"betahat": BETA, "sigma": SIGMA, "n_pre": PRE, "n_post": POST, "M": 0.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=rule):
        flci_delta_sd(**args)
    with pytest.raises(ValueError, match=r"Delta\^RM"):
        conditional_cs_delta_rm(BETA, SIGMA, PRE, POST, -1.0)


@pytest.mark.parametrize(("p", "low", "high"), [
    (0.95, -1, 2), (0.95, 0.5, np.inf), (0.955, 3, 5), (0.9, -np.inf, 1.2), (0.95, -20, -9),
    (0.95, 9, 12), (0.95, -np.inf, np.inf), (0.99, -3, -1)])
def test_truncated_normal_quantile_equals_scipy(p, low, high):
    from models.event_study.arp import _truncated_quantile

    assert _truncated_quantile(p, low, high) == pytest.approx(
        stats.truncnorm.ppf(p, low, high), rel=1e-10)


R2 = FIXTURE["r_output_2"]


@pytest.mark.parametrize("index", range(3))
def test_flci_matches_honestdid_at_larger_m(index):
    table = R2["flci"]
    result = flci_delta_sd(BETA, SIGMA, PRE, POST, table["M"][index])
    assert result["lb"] == pytest.approx(table["lb"][index], abs=FLCI_TOL)
    assert result["ub"] == pytest.approx(table["ub"][index], abs=FLCI_TOL)
    assert result["half_length"] == pytest.approx(table["half_length"][index], rel=3e-3)


def test_flci_weights_match_honestdid():
    # At M = 0.1 the optimal estimator is beta_{-1} + beta_1: HonestDiD's weights
    # 0, 0, 0, 1, 1, 0, 0, 0.
    result = flci_delta_sd(BETA, SIGMA, PRE, POST, 0.1)
    assert result["weights"] == pytest.approx(R2["flci"]["optimalVec_M0.1"], abs=1e-6)


def test_conditional_test_matches_honestdid_exactly():
    # No simulation in the purely conditional ARP test: the accepted grid points coincide.
    table = R2["conditional_deltaSD_ARP"]
    small = table["grid200"]
    result = conditional_cs_delta_sd(BETA, SIGMA, PRE, POST, small["M"], grid_points=200)
    assert (result["lb"], result["ub"]) == pytest.approx((small["lb"], small["ub"]), abs=1e-9)
    full = table["grid1000"]
    for m, lb, ub in zip(full["M"], full["lb"], full["ub"], strict=True):
        result = conditional_cs_delta_sd(BETA, SIGMA, PRE, POST, m)
        assert (result["lb"], result["ub"]) == pytest.approx((lb, ub), abs=1e-9)


def test_moment_lp_matches_honestdid():
    from models.event_study.arp import MomentProblem

    lp = R2["test_delta_lp_fn"]
    problem = MomentProblem(np.array(lp["X"]), np.array(lp["sigma"]))
    eta, dual = problem.eta(np.array(lp["y"]))
    assert eta == pytest.approx(lp["eta"], abs=1e-8)
    assert dual == pytest.approx(lp["lambda"], abs=1e-8)


def test_moment_lp_without_vertex_enumeration_agrees(monkeypatch):
    import models.event_study.arp as arp

    lp = R2["test_delta_lp_fn"]
    monkeypatch.setattr(arp, "MAX_VERTEX_SUBSETS", 0)
    problem = arp.MomentProblem(np.array(lp["X"]), np.array(lp["sigma"]))
    assert problem.vertices is None
    eta, dual = problem.eta(np.array(lp["y"]))
    assert eta == pytest.approx(lp["eta"], abs=1e-8)
    assert dual == pytest.approx(lp["lambda"], abs=1e-7)
    small = R2["conditional_deltaSD_ARP"]["grid200"]
    result = conditional_cs_delta_sd(BETA, SIGMA, PRE, POST, small["M"], grid_points=200)
    assert (result["lb"], result["ub"]) == pytest.approx((small["lb"], small["ub"]), abs=1e-9)


@pytest.mark.parametrize("mbar", [0.0, 0.5, 2.0])
def test_relative_magnitudes_set_shrinks_to_the_identified_set(mbar):
    # Without sampling noise the confidence set is the identified set: for the average
    # post effect, l'beta_post +/- Mbar x (largest pre-period difference) x sum_t l_t t
    # (models.event_study.summaries, checked there against every vertex of the box).
    from models.event_study.summaries import relative_magnitude_bounds

    years = FIXTURE["timeVec"]
    reference = FIXTURE["referencePeriod"]
    low, high = relative_magnitude_bounds(BETA, years, reference, mbar)
    l_vec = np.full(POST, 1 / POST)
    result = conditional_cs_delta_rm(BETA, SIGMA * 1e-12, PRE, POST, mbar, l_vec,
                                     grid_lb=float(low) - 0.05, grid_ub=float(high) + 0.05)
    assert (result["lb"], result["ub"]) == pytest.approx((low, high), abs=1e-4)


def test_delta_sd_set_shrinks_to_the_linear_extrapolation_at_m0():
    result = flci_delta_sd(BETA, SIGMA * 1e-12, PRE, POST, 0.0)
    assert result["half_length"] < 1e-4


@pytest.mark.parametrize("mbar", [0.0, 1.0])
def test_one_post_period_shrinks_to_the_identified_set(mbar):
    # One post period: no nuisance parameter; the set is beta_1 -/+ Mbar x the largest
    # pre-period difference.
    from models.event_study.summaries import relative_magnitude_bounds

    beta, sigma = BETA[:PRE + 1], SIGMA[:PRE + 1, :PRE + 1]
    low, high = relative_magnitude_bounds(beta, FIXTURE["timeVec"][:PRE + 1],
                                          FIXTURE["referencePeriod"], mbar)
    result = conditional_cs_delta_rm(beta, sigma * 1e-12, PRE, 1, mbar, grid_lb=-1, grid_ub=1)
    assert (result["lb"], result["ub"]) == pytest.approx((low, high), abs=1e-4)
    noisy = conditional_cs_delta_rm(beta, sigma, PRE, 1, mbar)
    assert noisy["lb"] < low and noisy["ub"] > high

"""Hansen threshold estimator on simulated panels with known thresholds, and against brute force
OLS and pyfixest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from models.threshold.hansen import fit_panel_threshold


def simulate(n_units: int = 150, n_periods: int = 8, thresholds=(0.4,), slopes=(1.0, 2.0),
             beta: float = 0.5, year_effects: bool = False, noise: float = 0.5,
             seed: int = 0) -> pd.DataFrame:
    """y_it = mu_i + lambda_t + beta w_it + x_it slope_{regime(q_it)} + e_it."""
    rng = np.random.default_rng(seed)
    size = n_units * n_periods
    frame = pd.DataFrame({
        "unit": np.repeat(np.arange(n_units), n_periods),
        "year": np.tile(np.arange(2000, 2000 + n_periods), n_units),
        "w": rng.normal(size=size),
        "x": rng.normal(1.0, 1.0, size=size),
        "z": rng.normal(size=size),
        "q": rng.uniform(0.0, 1.0, size=size),
    })
    regime = np.searchsorted(np.asarray(thresholds), frame["q"].to_numpy(), side="right")
    unit_effect = rng.normal(0.0, 2.0, n_units)[frame["unit"]]
    year_effect = (3.0 * np.sin(frame["year"].to_numpy()) if year_effects else 0.0)
    frame["y"] = (unit_effect + year_effect + beta * frame["w"]
                  + np.asarray(slopes)[regime] * frame["x"] + noise * rng.normal(size=size))
    return frame


def brute_force_rss(frame: pd.DataFrame, thresholds, regime, fixed, demean: str,
                    time: bool = False) -> float:
    """Explicit OLS on the demeaned regime-split design (optionally with year dummies)."""
    frame = frame.sort_values(["unit", "year"]).copy()
    bounds = [-np.inf, *sorted(thresholds), np.inf]
    names = list(fixed)
    if time:
        for year in sorted(frame["year"].unique())[1:]:
            frame[f"d{year}"] = (frame["year"] == year).astype(float)
            names.append(f"d{year}")
    for j, (low, high) in enumerate(zip(bounds[:-1], bounds[1:])):
        for column in regime:
            frame[f"{column}{j}"] = frame[column] * ((frame["q"] >= low) & (frame["q"] < high))
            names.append(f"{column}{j}")
    columns = ["y", *names]
    demeaned = frame[columns] - frame.groupby("unit")[columns].transform("mean")
    if demean == "hansen":
        demeaned = demeaned[frame["year"] != frame["year"].max()]
    design, outcome = demeaned[names].to_numpy(), demeaned["y"].to_numpy()
    coef, *_ = np.linalg.lstsq(design, outcome, rcond=None)
    residual = outcome - design @ coef
    return float(residual @ residual)


def fit(frame: pd.DataFrame, **options):
    settings = dict(y="y", regime="x", threshold="q", fixed=["w"], unit="unit", period="year",
                    n_boot=0)
    settings.update(options)
    return fit_panel_threshold(frame, **settings)


@pytest.mark.parametrize("demean", ["hansen", "all"])
def test_single_threshold_lands_on_truth(demean):
    result = fit(simulate(seed=1), demean=demean)
    gamma = result.thresholds[0]
    assert abs(gamma - 0.4) < 0.01
    low, high = result.threshold_ci("gamma_1", 0.95)
    # q < g splits the sample as the truth does for the smallest candidate at or above 0.4
    candidates = result.rss_curve("single")["gamma"]
    assert low <= candidates[candidates >= 0.4].min() <= high
    assert high - low < 0.05
    slopes = result.coefficients.set_index("term")["estimate"]
    assert slopes["x_regime1"] == pytest.approx(1.0, abs=0.06)
    assert slopes["x_regime2"] == pytest.approx(2.0, abs=0.06)
    assert slopes["w"] == pytest.approx(0.5, abs=0.05)


def test_double_threshold_lands_on_truth():
    frame = simulate(n_units=200, thresholds=(0.3, 0.7), slopes=(1.0, 2.0, 0.5), seed=2)
    result = fit(frame, n_thresholds=2)
    assert np.allclose(result.thresholds, (0.3, 0.7), atol=0.01)
    slopes = result.coefficients.set_index("term")["estimate"]
    assert [slopes[f"x_regime{j}"] for j in (1, 2, 3)] == pytest.approx([1.0, 2.0, 0.5],
                                                                         abs=0.08)


def test_triple_threshold_lands_on_truth():
    frame = simulate(n_units=300, thresholds=(0.2, 0.5, 0.8), slopes=(1.0, 2.0, 0.5, 1.5),
                     seed=8)
    result = fit(frame, n_thresholds=3, n_boot=50)
    assert np.allclose(result.thresholds, (0.2, 0.5, 0.8), atol=0.01)
    tidy = result.tidy().set_index("term")
    assert [tidy.loc[f"x_regime{j}", "estimate"] for j in (1, 2, 3, 4)] == pytest.approx(
        [1.0, 2.0, 0.5, 1.5], abs=0.08)
    assert tidy.loc["F_triple", "p_value"] < 0.05
    for j in (1, 2, 3):
        assert tidy.loc[f"gamma_{j}", "ci_low"] <= result.thresholds[j - 1] <= tidy.loc[
            f"gamma_{j}", "ci_high"]


@pytest.mark.parametrize("demean", ["hansen", "all"])
def test_rss_profiles_equal_brute_force(demean):
    """Two regime regressors, year dummies and an existing threshold: every path of the
    cumulative-sum algebra against one explicit regression per candidate."""
    frame = simulate(n_units=60, n_periods=6, thresholds=(0.3, 0.7), slopes=(1.0, 2.0, 0.5),
                     year_effects=True, seed=3)
    result = fit(frame, regime=["x", "z"], n_thresholds=2, demean=demean, time=True,
                 grid_size=100)
    first = result.stages["single"].estimate
    for stage, existing in (("single", ()), ("double", (first,))):
        curve = result.rss_curve(stage)
        for index in (0, len(curve) // 3, len(curve) - 1):
            gamma = curve["gamma"].iloc[index]
            expected = brute_force_rss(frame, (*existing, gamma), ["x", "z"], ["w"], demean,
                                       time=True)
            assert curve["rss"].iloc[index] == pytest.approx(expected, rel=1e-10, abs=1e-10)


def test_two_way_slopes_equal_pyfixest():
    frame = simulate(n_units=80, n_periods=7, year_effects=True, seed=4)
    result = fit(frame, demean="all", time=True)
    gamma = result.thresholds[0]
    assert abs(gamma - 0.4) < 0.02
    frame["x_regime1"] = frame["x"] * (frame["q"] < gamma)
    frame["x_regime2"] = frame["x"] * (frame["q"] >= gamma)
    formula = "y ~ w + x_regime1 + x_regime2 | unit + year"
    peer = pf.feols(formula, data=frame, vcov="iid")
    table = result.coefficients.set_index("term")
    for term, value in peer.coef().items():
        assert table.loc[term, "estimate"] == pytest.approx(value, rel=1e-8), term
    assert result.rss == pytest.approx(float(np.sum(peer.resid() ** 2)), rel=1e-8)
    terms = list(peer.coef().index)
    np.testing.assert_allclose(table.loc[terms, "se_ols"], peer.se(), rtol=1e-8)
    clustered = pf.feols(formula, data=frame, vcov={"CRV1": "unit"})
    np.testing.assert_allclose(table.loc[terms, "se_cluster"], clustered.se(), rtol=1e-8)
    # pyfixest's "hetero" is HC1 with every absorbed effect counted; ours is Hansen's HC0
    hetero = pf.feols(formula, data=frame, vcov="hetero")
    rows, n_coef = result.n_rows, len(table)
    hc1_factor = np.sqrt(rows / (rows - result.n_units - n_coef))
    np.testing.assert_allclose(table.loc[terms, "se_white"] * hc1_factor, hetero.se(),
                               rtol=1e-8)
    kinds = result.coefficients.set_index("term")["kind"]
    assert kinds["year_2001"] == "time_effect" and kinds["x_regime1"] == "slope"


def test_bootstrap_rejects_a_real_threshold_and_not_a_fake_one():
    strong = fit(simulate(n_units=80, slopes=(1.0, 1.6), seed=5), n_boot=100, seed=11)
    assert strong.tests["single"].p_value < 0.01
    null = fit(simulate(n_units=80, slopes=(1.0, 1.0), seed=6), n_boot=100, seed=12)
    assert null.tests["single"].p_value > 0.05
    assert null.tests["single"].statistic < null.tests["single"].critical_values[1]


def test_bootstrap_is_reproducible_with_a_seed():
    frame = simulate(n_units=50, seed=7)
    first = fit(frame, n_boot=50, seed=3).tests["single"].draws
    again = fit(frame, n_boot=50, seed=3).tests["single"].draws
    other = fit(frame, n_boot=50, seed=4).tests["single"].draws
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_bad_input_is_named():
    frame = simulate(n_units=10, n_periods=4)
    with pytest.raises(ValueError, match="'nope'"):
        fit(frame, fixed=["nope"])
    with pytest.raises(ValueError, match="balanced"):
        fit(frame.iloc[1:])
    broken = frame.copy()
    broken.loc[5, "q"] = np.nan
    with pytest.raises(ValueError, match="column 'q'.*\\[5\\]"):
        fit(broken)
    with pytest.raises(ValueError, match="rows with index \\[40\\] repeat"):
        fit(pd.concat([frame, frame.iloc[[3]]], ignore_index=True))
    shifted = frame.copy()
    shifted.loc[shifted["unit"] == 2, "year"] += 1
    with pytest.raises(ValueError, match="balanced.*have \\[4, 4"):
        fit(shifted)
    with pytest.raises(ValueError, match="demean"):
        fit(frame, demean="first")
    with pytest.raises(ValueError, match="collinear"):
        fit(frame.assign(c=frame["unit"] * 1.0), fixed=["w", "c"])

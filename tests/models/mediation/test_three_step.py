"""Three-step mediation against pyfixest, the Sobel formula by hand, and simulation truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from scipy import stats

from inference.datasets import default_data_path
from models.mediation.three_step import bootstrap_indirect, fit_mediation, sobel_test

CONTROLS = ["Eco", "Huc", "Edu", "Fis", "Gov"]
RHS = " + ".join(CONTROLS)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(default_data_path("zhao2025"))


@pytest.fixture(scope="module")
def fit_va(panel):
    return fit_mediation(panel, "Inn", "AI", "Va", CONTROLS, ["city", "year"], n_boot=200,
                         seed=3)


def simulate_panel(seed: int, a: float, b: float, direct: float, n_units: int = 80,
                   n_periods: int = 5) -> pd.DataFrame:
    """x -> m -> y with unit and period effects and errors correlated within units."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(n_periods), n_units)
    unit_effect = rng.normal(size=(3, n_units))[:, unit]
    period_effect = rng.normal(size=(3, n_periods))[:, period]
    shock = rng.normal(size=(2, n_units))[:, unit]  # within-unit error correlation
    x = unit_effect[0] + period_effect[0] + rng.normal(size=unit.size)
    w = rng.normal(size=unit.size)
    m = a * x + 0.3 * w + unit_effect[1] + period_effect[1] + shock[0] + rng.normal(
        size=unit.size) * (1 + 0.5 * np.abs(x))
    y = direct * x + b * m + 0.2 * w + unit_effect[2] + period_effect[2] + shock[1] \
        + rng.normal(size=unit.size)
    return pd.DataFrame({"unit": unit, "period": period, "x": x, "m": m, "y": y, "w": w})


def test_steps_equal_pyfixest(panel, fit_va):
    effects = " | city + year"
    total = pf.feols(f"Inn ~ AI + {RHS}{effects}", data=panel, vcov="hetero")
    a_path = pf.feols(f"Va ~ AI + {RHS}{effects}", data=panel, vcov="hetero")
    b_path = pf.feols(f"Inn ~ AI + Va + {RHS}{effects}", data=panel, vcov="hetero")
    np.testing.assert_allclose(fit_va.total.coef("AI"), total.coef()["AI"], rtol=1e-8)
    np.testing.assert_allclose(fit_va.a, a_path.coef()["AI"], rtol=1e-8)
    np.testing.assert_allclose(fit_va.b, b_path.coef()["Va"], rtol=1e-8)
    np.testing.assert_allclose(fit_va.direct, b_path.coef()["AI"], rtol=1e-8)
    # OLS on the same rows: total = direct + a b exactly.
    np.testing.assert_allclose(fit_va.total.coef("AI"), fit_va.direct + fit_va.indirect,
                               rtol=1e-8)
    # Sobel by hand from pyfixest's HC1 standard errors.
    se_a, se_b = a_path.se()["AI"], b_path.se()["Va"]
    a, b = a_path.coef()["AI"], b_path.coef()["Va"]
    se = np.sqrt(b ** 2 * se_a ** 2 + a ** 2 * se_b ** 2)
    np.testing.assert_allclose(fit_va.sobel_se, se, rtol=1e-8)
    np.testing.assert_allclose(fit_va.sobel_z, a * b / se, rtol=1e-8)
    np.testing.assert_allclose(fit_va.sobel_p, 2 * stats.norm.sf(abs(a * b / se)), rtol=1e-8)


def test_sobel_formula():
    se, z, p = sobel_test(0.5, 0.1, 0.4, 0.2)
    assert se == pytest.approx(np.sqrt(0.16 * 0.01 + 0.25 * 0.04))
    assert z == pytest.approx(0.2 / se)
    assert p == pytest.approx(2 * (1 - stats.norm.cdf(0.2 / se)))


def test_effects_table_routes_bootstrap_interval(fit_va):
    table = fit_va.effects_table().set_index("term")
    row = table.loc["indirect_Va"]
    assert row["estimate"] == pytest.approx(fit_va.a * fit_va.b)
    assert row["ci_low"] == pytest.approx(np.percentile(fit_va.boot_draws, 2.5))
    assert row["ci_high"] == pytest.approx(np.percentile(fit_va.boot_draws, 97.5))
    assert table.loc["sobel_z_Va", "estimate"] == pytest.approx(fit_va.sobel_z)


def test_vectorised_bootstrap_equals_refit_loop():
    frame = simulate_panel(1, a=0.5, b=0.4, direct=0.2, n_units=30)
    args = (frame, "y", "x", "m", ["w"], "unit", "period")
    fast = bootstrap_indirect(*args, n_boot=15, seed=9, vectorised=True)
    slow = bootstrap_indirect(*args, n_boot=15, seed=9, vectorised=False)
    np.testing.assert_allclose(fast, slow, rtol=1e-8)


def test_unbalanced_panel_uses_the_refit_loop():
    frame = simulate_panel(2, a=0.5, b=0.4, direct=0.2, n_units=30).iloc[3:]
    draws = bootstrap_indirect(frame, "y", "x", "m", ["w"], "unit", "period", n_boot=10)
    assert draws.shape == (10,) and np.all(np.isfinite(draws))
    with pytest.raises(ValueError, match="balanced"):
        bootstrap_indirect(frame, "y", "x", "m", ["w"], "unit", "period", n_boot=10,
                           vectorised=True)


def test_bootstrap_interval_covers_the_true_indirect_effect():
    a, b = 0.5, 0.4
    covered, widths, sobel_ses, boot_ses = [], [], [], []
    for seed in range(40):
        frame = simulate_panel(100 + seed, a=a, b=b, direct=0.2)
        fit = fit_mediation(frame, "y", "x", "m", ["w"], ["unit", "period"], n_boot=299,
                            seed=seed)
        covered.append(fit.ci_low <= a * b <= fit.ci_high)
        widths.append(fit.ci_high - fit.ci_low)
        sobel_ses.append(fit.sobel_se)
        boot_ses.append(np.std(fit.boot_draws, ddof=1))
    coverage = np.mean(covered)
    assert 0.85 <= coverage <= 1.0, coverage
    assert np.all(np.array(widths) > 0)
    # The cluster bootstrap and the (HC1) Sobel errors are of the same order here.
    assert 0.7 < np.median(np.array(boot_ses) / np.array(sobel_ses)) < 1.6

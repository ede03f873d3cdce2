"""Selection ratio against two pyfixest fits; Oster (2019) against its cubic and simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from inference.datasets import default_data_path
from models.selection_ratio import (
    OsterInputs,
    fit_selection_ratio,
    oster_beta_star,
    oster_bias_roots,
    oster_delta,
    selection_ratio,
)

CONTROLS = ["Eco", "Huc", "Edu", "Fis", "Gov"]


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(default_data_path("zhao2025"))


@pytest.fixture(scope="module")
def simulated() -> tuple[pd.DataFrame, float]:
    """Oster's setting with delta = 1: x loads equally on the observed control w1 and the
    unobserved w2, which enter y with equal weight and are independent."""
    rng = np.random.default_rng(2019)
    n = 200_000
    w1, w2, u, e = rng.normal(size=(4, n))
    beta = 0.5
    x = w1 + w2 + u
    y = beta * x + w1 + w2 + e
    return pd.DataFrame({"y": y, "x": x, "w1": w1, "w2": w2}), beta


def test_ratio_equals_hand_computation_from_two_pyfixest_fits(panel):
    fit = fit_selection_ratio(panel, "Inn", "AI", CONTROLS, ["city", "year"])
    full = pf.feols("Inn ~ AI + Eco + Huc + Edu + Fis + Gov | city + year", data=panel,
                    vcov="hetero").coef()["AI"]
    restricted = pf.feols("Inn ~ AI | city + year", data=panel, vcov="hetero").coef()["AI"]
    np.testing.assert_allclose(fit.ratio, full / (restricted - full), rtol=1e-8)
    tidy = fit.tidy().set_index("term")
    np.testing.assert_allclose(tidy.loc["AI", "estimate"], full, rtol=1e-8)
    np.testing.assert_allclose(tidy.loc["beta_restricted", "estimate"], restricted, rtol=1e-8)
    assert tidy.loc["oster_r_max", "estimate"] == pytest.approx(min(1.3 * fit.full.r2, 1.0))


def test_published_ratio_arithmetic():
    # Table 4 column 3 prints 3.1357 next to beta_F = 0.2720: it implies beta_R = 0.3587.
    assert selection_ratio(0.2720, 0.2720 * (1 + 1 / 3.1357)) == pytest.approx(3.1357)


def test_oster_delta_makes_the_cubic_root_zero(simulated):
    frame, _ = simulated
    fit = fit_selection_ratio(frame, "y", "x", ["w1"], [])
    r_max = fit.r_max
    delta = oster_delta(fit.oster, r_max, beta=0.0)
    roots = oster_bias_roots(fit.oster, r_max, delta)
    # A root nu = beta_t - beta* = beta_t, i.e. beta* = 0, solved numerically by np.roots.
    assert np.min(np.abs(roots - fit.oster.beta_full)) < 1e-8
    # And for another target: the delta for beta = 0.2 gives beta* = 0.2.
    delta = oster_delta(fit.oster, r_max, beta=0.2)
    roots = oster_bias_roots(fit.oster, r_max, delta)
    assert np.min(np.abs(fit.oster.beta_full - roots - 0.2)) < 1e-8


def test_oster_recovers_the_true_effect_in_simulation(simulated):
    frame, beta = simulated
    fit = fit_selection_ratio(frame, "y", "x", ["w1"], [])
    full_r2 = float(pf.feols("y ~ x + w1 + w2", data=frame)._r2)
    # With R_max the R2 of the long regression and delta = 1, beta* is the true effect...
    assert oster_beta_star(fit.oster, full_r2, delta=1.0) == pytest.approx(beta, abs=0.01)
    # ... and the delta that yields the true effect is 1.
    assert oster_delta(fit.oster, full_r2, beta=beta) == pytest.approx(1.0, abs=0.03)
    # The controlled estimate itself is biased (the check has power).
    assert abs(fit.oster.beta_full - beta) > 0.1


def test_delta_one_quadratic_matches_nearby_cubic():
    moments = OsterInputs(beta_restricted=0.40, beta_full=0.30, r2_restricted=0.20,
                          r2_full=0.35, var_y=2.0, var_x=1.0, var_x_resid=0.8)
    at_one = oster_beta_star(moments, 0.455, delta=1.0)
    near = oster_beta_star(moments, 0.455, delta=1.0 + 1e-7)
    assert at_one == pytest.approx(near, abs=1e-5)
    # The adjustment moves away from beta_restricted, as the bias runs from beta_o to beta_t.
    assert at_one < moments.beta_full

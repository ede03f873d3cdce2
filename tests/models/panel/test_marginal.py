"""The marginalised Gaussian TWFE log density: sufficient statistics and the fused Op.

Both are held to the brute-force density: for each unit, y_i ~ N(eta_i, sigma^2 I +
unit_sd^2 11') with eta_it = alpha + x~_it' beta + (xbar_i - xbar)' lambda + tau_t.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from models.panel.design import prepare_panel
from models.panel.marginal import SufficientStats, marginal_normal_logp
from models.panel.marginal_op import marginal_normal_logp_fused


def _unbalanced_panel(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for unit in range(40):
        # Units observed 3 to 8 of 8 years, so several group sizes T_i occur.
        years = np.sort(rng.choice(8, size=rng.integers(3, 9), replace=False))
        for year in years:
            rows.append({"unit": f"u{unit}", "year": 2000 + int(year)})
    df = pd.DataFrame(rows)
    df["x1"] = rng.normal(size=len(df)) + 0.1 * df["unit"].str[1:].astype(int)
    df["x2"] = rng.normal(size=len(df))
    df["y"] = 1.0 + 0.5 * df["x1"] - 0.3 * df["x2"] + rng.normal(size=len(df))
    return df


def _brute_force(design, alpha, beta, lam, tau, sigma, unit_sd) -> float:
    eta = alpha + design.x_within @ beta + (design.unit_means @ lam)[design.unit_idx]
    if tau is not None:
        eta = eta + tau[design.time_idx]
    total = 0.0
    for unit in range(len(design.unit_labels)):
        rows = design.unit_idx == unit
        cov = sigma**2 * np.eye(rows.sum()) + unit_sd**2
        total += st.multivariate_normal(eta[rows], cov).logpdf(design.y[rows])
    return float(total)


def _evaluate(design, params, fused: bool, mode: str):
    import pytensor
    import pytensor.tensor as pt

    alpha, beta, lam, tau, sigma, unit_sd = (pt.dscalar("alpha"), pt.dvector("beta"),
                                             pt.dvector("lam"), pt.dvector("tau"),
                                             pt.dscalar("sigma"), pt.dscalar("unit_sd"))
    has_time = design.time_idx is not None
    logp_fn = marginal_normal_logp_fused if fused else marginal_normal_logp
    value = logp_fn(SufficientStats.from_design(design), alpha, beta, lam,
                    tau if has_time else None, sigma, unit_sd)
    inputs = [alpha, beta, lam, sigma, unit_sd] + ([tau] if has_time else [])
    grads = pytensor.grad(value, inputs)
    function = pytensor.function(inputs, [value, *grads], mode=mode, on_unused_input="ignore")
    args = [params["alpha"], params["beta"], params["lam"], params["sigma"], params["unit_sd"]]
    if has_time:
        args.append(params["tau"])
    return [np.asarray(v) for v in function(*args)]


@pytest.mark.parametrize("time", ["year", None])
def test_sufficient_statistics_density_equals_brute_force(time):
    design = prepare_panel(_unbalanced_panel(), "y", ["x1", "x2"], "unit", time)
    rng = np.random.default_rng(0)
    n_years = len(design.time_labels) if time else 0
    tau = rng.normal(0, 0.3, n_years)
    params = {"alpha": 0.7, "beta": np.array([0.4, -0.2]), "lam": np.array([0.3, 0.1]),
              "tau": tau - tau.mean() if n_years else tau, "sigma": 0.9, "unit_sd": 0.6}
    expected = _brute_force(design, params["alpha"], params["beta"], params["lam"],
                            params["tau"] if time else None, params["sigma"], params["unit_sd"])
    assert len(np.unique(SufficientStats.from_design(design).group_rows)) > 1
    symbolic = _evaluate(design, params, fused=False, mode="FAST_COMPILE")
    assert float(symbolic[0]) == pytest.approx(expected, rel=1e-11)


@pytest.mark.parametrize("time", ["year", None])
@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
def test_fused_op_equals_symbolic_density_and_gradient(time, mode):
    design = prepare_panel(_unbalanced_panel(), "y", ["x1", "x2"], "unit", time)
    rng = np.random.default_rng(1)
    n_years = len(design.time_labels) if time else 0
    params = {"alpha": -0.4, "beta": np.array([0.9, 0.2]), "lam": np.array([-0.5, 0.6]),
              "tau": rng.normal(0, 0.5, n_years), "sigma": 1.3, "unit_sd": 0.25}
    reference = _evaluate(design, params, fused=False, mode="FAST_COMPILE")
    fused = _evaluate(design, params, fused=True, mode=mode)
    assert len(fused) == len(reference)
    for got, want in zip(fused, reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)

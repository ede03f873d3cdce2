"""Bayesian IV: exactness of the demeaned likelihood, agreement with 2SLS, recovery of truth.

The simulated panel has a strong instrument, endogeneity (corr(u, v) = 0.5) and unit effects
that load on x, z and the control, so TWFE OLS is biased upward and its interval misses the
true slope. Sampling tests are marked slow (the model's numba compilation takes 15-60 s); the
fast tests check the log density against brute-force computations.
"""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import pandas as pd
import pyfixest as pf
import pytensor
import pytest
from scipy import stats

from models.bayes.priors import PriorSpecError
from models.iv.bayes import IVPriors, _resolve, build_iv_model, fit_bayes_iv, prepare_iv
from tests.models.bayes.stored_checks import assert_reloads_the_same

TRUE = {"beta": 0.3, "pi": 1.0, "rho": 0.5, "gamma": 0.4, "delta": 0.5}
N_UNITS, N_YEARS = 200, 8
FAST = {"draws": 500, "tune": 500, "chains": 4}


def simulate_panel(seed: int = 21, n_units: int = N_UNITS, n_years: int = N_YEARS):
    """x = 1.0 z + 0.5 w + a_i + d_t + v;  y = 0.3 x + 0.4 w + b_i + c_t + u;
    (u, v) standard bivariate normal with correlation 0.5."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_years)
    year = np.tile(np.arange(2011, 2011 + n_years), n_units)
    effect = rng.normal(0.0, 1.0, n_units)[unit]
    z = 0.8 * effect + rng.normal(0.0, 1.0, unit.size)
    w = -0.5 * effect + rng.normal(0.0, 1.0, unit.size)
    errors = rng.multivariate_normal([0, 0], [[1.0, TRUE["rho"]], [TRUE["rho"], 1.0]],
                                     unit.size)
    u, v = errors[:, 0], errors[:, 1]
    x = (TRUE["pi"] * z + TRUE["delta"] * w + 1.5 * effect + 0.1 * (year - 2011) + v)
    y = TRUE["beta"] * x + TRUE["gamma"] * w + effect + 0.05 * (year - 2011) + u
    return pd.DataFrame({"unit": unit, "year": year, "z": z, "w": w, "x": x, "y": y})


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return simulate_panel()


@pytest.fixture(scope="module")
def fit(panel):
    return fit_bayes_iv(panel, "y", "x", ["z"], ["w"], "unit", "year", seed=5, **FAST)


def _potential(model, name: str, values: dict) -> float:
    graph = model.replace_rvs_by_values([model[name]])
    function = pytensor.function(model.value_vars, graph, mode="FAST_COMPILE",
                                 on_unused_input="ignore")
    return float(np.asarray(function(**{v.name: values[v.name] for v in model.value_vars})[0]))


def _point(beta, pi, gamma, delta, s_u, s_v, rho) -> dict:
    return {"beta": beta, "first_stage": np.array([pi]), "control_outcome": np.array([gamma]),
            "control_first": np.array([delta]), "sigma_outcome_log__": np.log(s_u),
            "sigma_first_log__": np.log(s_v),
            "rho_unit_logodds__": np.log((1 + rho) / (1 - rho))}


def test_demeaned_likelihood_is_the_effects_integrated_likelihood():
    """On a tiny panel, integrate the unit and year effects of both equations out of the
    full-data Gaussian likelihood (flat priors, exact Gaussian integral): differences between
    parameter points equal those of the model's within likelihood."""
    frame = simulate_panel(seed=3, n_units=5, n_years=4)
    design = prepare_iv(frame, "y", "x", ["z"], ["w"], "unit", "year")
    model = build_iv_model(design, _resolve(IVPriors(), design)[0])
    units = pd.get_dummies(frame["unit"], dtype=float).to_numpy()
    years = pd.get_dummies(frame["year"], dtype=float).to_numpy()[:, 1:]
    dummies = np.column_stack([units, years])
    n = len(frame)

    def integrated(beta, pi, gamma, delta, s_u, s_v, rho) -> float:
        u = frame["y"] - beta * frame["x"] - gamma * frame["w"]
        v = frame["x"] - pi * frame["z"] - delta * frame["w"]
        sigma = np.array([[s_u**2, rho * s_u * s_v], [rho * s_u * s_v, s_v**2]])
        cov = np.kron(sigma, np.eye(n))
        design_full = np.kron(np.eye(2), dummies)
        precision = np.linalg.inv(cov)
        resid = np.concatenate([u, v])
        gram = design_full.T @ precision @ design_full
        coef = np.linalg.solve(gram, design_full.T @ precision @ resid)
        gls = resid - design_full @ coef
        k = design_full.shape[1]
        return float(-0.5 * (2 * n - k) * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(cov)[1]
                     - 0.5 * np.linalg.slogdet(gram)[1] - 0.5 * gls @ precision @ gls)

    first = (0.2, 0.9, 0.3, 0.6, 1.1, 0.8, 0.4)
    second = (0.5, 1.3, 0.1, 0.2, 0.7, 1.4, -0.3)
    name = "y_x_joint"
    model_diff = (_potential(model, name, _point(*first))
                  - _potential(model, name, _point(*second)))
    exact_diff = integrated(*first) - integrated(*second)
    assert model_diff == pytest.approx(exact_diff, rel=1e-9)


def test_model_density_equals_pointwise_bivariate_normal(panel):
    """The model's sufficient-statistic density equals the sum over observations of the
    bivariate normal density of the within residuals, after the n -> n - r correction."""
    design = prepare_iv(panel, "y", "x", ["z"], ["w"], "unit", "year")
    model = build_iv_model(design, _resolve(IVPriors(), design)[0])
    beta, pi, gamma, delta, s_u, s_v, rho = 0.35, 0.9, 0.3, 0.45, 1.1, 0.9, 0.3
    data = design.data
    u = data[:, 0] - beta * data[:, 1] - gamma * data[:, 3]
    v = data[:, 1] - pi * data[:, 2] - delta * data[:, 3]
    sigma = np.array([[s_u**2, rho * s_u * s_v], [rho * s_u * s_v, s_v**2]])
    pointwise = stats.multivariate_normal([0, 0], sigma).logpdf(np.column_stack([u, v])).sum()
    r = design.fe_rank
    expected = pointwise + 0.5 * r * np.linalg.slogdet(sigma)[1] + r * np.log(2 * np.pi)
    value = _potential(model, "y_x_joint", _point(beta, pi, gamma, delta, s_u, s_v, rho))
    assert value == pytest.approx(expected, rel=1e-10)


@pytest.mark.slow
def test_posterior_agrees_with_2sls_and_covers_truth_where_ols_does_not(fit, panel):
    tsls = pf.feols("y ~ w | unit + year | x ~ z", data=panel, vcov="iid")
    ols = pf.feols("y ~ x + w | unit + year", data=panel, vcov="iid")
    # linearmodels on the two-way demeaned data gives the same 2SLS point estimate.
    from linearmodels.iv import IV2SLS

    design = prepare_iv(panel, "y", "x", ["z"], ["w"], "unit", "year")
    data = pd.DataFrame(design.data, columns=["y", "x", "z", "w"])
    lm = IV2SLS(data["y"], data[["w"]], data[["x"]], data[["z"]]).fit(cov_type="unadjusted")
    assert lm.params["x"] == pytest.approx(tsls.coef()["x"], abs=1e-8)

    table = fit.tidy().set_index("term")
    beta = table.loc["x"]
    assert abs(beta["estimate"] - tsls.coef()["x"]) < 0.25 * beta["std_error"]
    assert abs(beta["std_error"] / tsls.se()["x"] - 1.0) < 0.2
    assert beta["ci_low"] < TRUE["beta"] < beta["ci_high"]
    ols_low, ols_high = ols.confint().loc["x"]
    assert not ols_low < TRUE["beta"] < ols_high
    rho = table.loc["rho"]
    assert rho["ci_low"] < TRUE["rho"] < rho["ci_high"] and rho["ci_low"] > 0.2
    assert table.loc["z", "ci_low"] < TRUE["pi"] < table.loc["z", "ci_high"]
    assert fit.converged, fit.convergence_problems()


@pytest.mark.slow
def test_iv_fit_stores_loglik_log_prior_and_provenance(fit, panel, tmp_path):
    assert fit.idata.log_likelihood["y"].shape[-1] == len(panel)
    assert {"beta", "first_stage", "rho_unit", "sigma_outcome"} <= set(
        fit.idata.log_prior.data_vars)
    assert np.isfinite(az.loo(fit.idata, var_name="y").elpd_loo)
    stored = az.from_netcdf(str(fit.save_netcdf(tmp_path / "iv.nc")))
    attrs = stored.posterior.attrs
    assert attrs["model"] == "bayes_iv"
    assert json.loads(attrs["priors"])["rho"]["prior"].startswith("lkj(2)")
    assert json.loads(attrs["spec"])["instruments"] == ["z"]
    stages = fit.tidy().set_index("term")["stage"]
    assert stages["z"] == "first" and stages["x"] == "second" and stages["rho"] == "errors"


def test_priors_parse_roles_and_reject_bad_rho():
    priors = IVPriors.parse(["slope.x=normal(0, 1)", "first_stage=normal(0, 5)",
                             "rho=lkj(1)", "unit_sd=halfnormal(1)"])
    assert str(dict(priors.slope_terms)["x"]) == "normal(0, 1)"
    assert str(priors.first_stage) == "normal(0, 5)" and priors.rho_eta == 1.0
    with pytest.raises(PriorSpecError, match="lkj"):
        IVPriors.parse(["rho=normal(0, 1)"])
    with pytest.raises(PriorSpecError, match="positive"):
        IVPriors.parse(["sigma=normal(0, 1)"])


def test_bad_input_names_the_column(panel):
    with pytest.raises(ValueError, match="also listed as an instrument"):
        prepare_iv(panel, "y", "x", ["x"], ["w"], "unit", "year")
    with pytest.raises(ValueError, match="'nope'"):
        prepare_iv(panel, "y", "x", ["nope"], ["w"], "unit", "year")
    with pytest.raises(ValueError, match="at least one instrument"):
        prepare_iv(panel, "y", "x", [], ["w"], "unit", "year")


def test_saved_fit_recomputes_the_log_likelihood_to_the_same_loo(fit, tmp_path):
    assert_reloads_the_same(fit, tmp_path / "iv.nc")

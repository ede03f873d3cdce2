"""Posterior predictive draws of the Bayesian IV model: replicates of the endogenous
regressor and the outcome in levels, effects included, from the joint model's likelihood."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.iv.bayes import fit_bayes_iv, prepare_iv
from models.iv.predictive import add_iv_predictive
from tests.models.predictive_checks import (
    assert_flagged,
    assert_replicates_match,
    flat_effects_excess,
    point_posterior,
)

TRUE = {"beta": 0.3, "pi": 1.0, "delta": 0.5, "gamma": 0.4, "rho": 0.5}


def simulate(seed: int, skewed: bool = False, sigma_u: float = 1.0, n_units: int = 150,
             n_years: int = 8):
    """x = z + 0.5 w + 1.5 f_i + 0.1 t + v, y = 0.3 x + 0.4 w + f_i + 0.05 t + u, sd(v) = 1,
    sd(u) = ``sigma_u``, corr(u, v) = 0.5; ``skewed``: the part of u not explained by v is a
    centred exponential (same mean, variance and correlation, skewness 1.3 for u), which the
    model cannot produce."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_years)
    year = np.tile(np.arange(n_years), n_units)
    effect = rng.normal(0.0, 1.0, n_units)[unit]
    z = 0.8 * effect + rng.normal(size=unit.size)
    w = -0.5 * effect + rng.normal(size=unit.size)
    v = rng.normal(size=unit.size)
    shock = rng.exponential(size=unit.size) - 1.0 if skewed else rng.normal(size=unit.size)
    u = sigma_u * (TRUE["rho"] * v + np.sqrt(1 - TRUE["rho"] ** 2) * shock)
    x = TRUE["pi"] * z + TRUE["delta"] * w + 1.5 * effect + 0.1 * year + v
    y = TRUE["beta"] * x + TRUE["gamma"] * w + effect + 0.05 * year + u
    return pd.DataFrame({"unit": unit, "year": year, "z": z, "w": w, "x": x, "y": y})


def _at_truth(frame, sigma_u: float = 1.0):
    design = prepare_iv(frame, "y", "x", ["z"], ["w"], "unit", "year")
    idata = point_posterior(
        {"beta": TRUE["beta"], "first_stage": [TRUE["pi"]], "control_first": [TRUE["delta"]],
         "control_outcome": [TRUE["gamma"]], "sigma_outcome": sigma_u, "sigma_first": 1.0,
         "rho": TRUE["rho"]},
        coords={"instrument": ["z"], "control": ["w"]},
        dims={"first_stage": ["instrument"], "control_first": ["control"],
              "control_outcome": ["control"]})
    add_iv_predictive(idata, design, seed=3)
    return idata, design


def test_replicates_of_both_equations_match_the_data_when_the_model_is_right():
    frame = simulate(1)
    idata, design = _at_truth(frame)
    replicates = idata.posterior_predictive
    assert replicates["y"].dtype == np.float32 and replicates["x"].shape[-1] == design.n_obs
    # observed_data holds the data in levels, not demeaned.
    np.testing.assert_allclose(idata.observed_data["y"].values, frame["y"].to_numpy())
    beta, rho = TRUE["beta"], TRUE["rho"]
    # Reduced-form error variances: x's is v's, y's is that of beta v + u.
    error_variance = {"x": 1.0, "y": beta**2 + 2 * beta * rho + 1.0}
    for variable in ("y", "x"):
        excess = flat_effects_excess(error_variance[variable], design.fe_rank, design.n_obs)
        assert_replicates_match(idata, variable, ("mean", "sd", "skewness", "kurtosis"),
                                excess_variance=excess)
    # The replicated system keeps the endogeneity: within residuals of the replicates
    # correlate as rho says.
    y_rep = replicates["y"].values.reshape(-1, design.n_obs)
    x_rep = replicates["x"].values.reshape(-1, design.n_obs)
    raw = design.raw
    u = y_rep - TRUE["beta"] * x_rep - TRUE["gamma"] * raw[:, 3]
    v = x_rep - TRUE["pi"] * raw[:, 2] - TRUE["delta"] * raw[:, 3]
    from models.panel.design import demean

    within = demean(np.column_stack([u[:20].T, v[:20].T]), design.unit_idx, design.time_idx)
    corr = [np.corrcoef(within[:, j], within[:, 20 + j])[0, 1] for j in range(20)]
    assert abs(np.mean(corr) - TRUE["rho"]) < 0.03


def test_skewed_outcome_errors_are_flagged_in_the_outcome_only():
    # Errors large beside the effects and regressors, so that their skewness shows in y.
    idata, design = _at_truth(simulate(2, skewed=True, sigma_u=2.0), sigma_u=2.0)
    assert assert_flagged(idata, "y", "skewness") == 0.0
    excess = flat_effects_excess(1.0, design.fe_rank, design.n_obs)
    assert_replicates_match(idata, "x", ("mean", "sd", "skewness"), excess_variance=excess)
    assert_replicates_match(idata, "y", ("mean",))


@pytest.mark.slow
def test_fit_saves_replicates_with_the_data(tmp_path):
    import arviz as az

    frame = simulate(4)
    fit = fit_bayes_iv(frame, "y", "x", ["z"], ["w"], "unit", "year", draws=200, tune=200,
                       chains=2, seed=5)
    path = fit.save_netcdf(tmp_path / "iv.nc")
    saved = az.from_netcdf(path)
    assert {"posterior_predictive", "observed_data"} <= set(saved.groups())
    assert saved.posterior_predictive["y"].dtype == np.float32
    assert saved.posterior_predictive.sizes["chain"] * saved.posterior_predictive.sizes[
        "draw"] == 100
    for variable in ("y", "x"):
        assert_replicates_match(saved, variable, ("mean", "skewness"))

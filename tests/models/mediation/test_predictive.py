"""Posterior predictive draws of the Bayesian mediation model: replicates of every mediator
and the outcome in levels, each equation's effects included, from the joint likelihood."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.mediation.bayes import fit_bayes_mediation
from models.mediation.design import prepare_mediation
from models.mediation.predictive import add_mediation_predictive
from tests.models.predictive_checks import (
    assert_flagged,
    assert_replicates_match,
    flat_effects_excess,
    point_posterior,
)

A, B, C, CORR, SD_M = (0.5, 0.3), (0.4, -0.3), 0.2, 0.3, (1.0, 0.8)


def simulate(seed: int, skewed_m2: bool = False, n_units: int = 150, n_years: int = 8):
    """m1 = 0.5 x + 0.2 w + 2 f_i + e1, m2 = 0.3 x - 0.1 w - f_i + 0.05 t + e2,
    y = 0.2 x + 0.4 m1 - 0.3 m2 + 0.3 w + 1.5 f_i + u; sd(e1, e2, u) = (1, 0.8, 1),
    corr(e1, e2) = 0.3. ``skewed_m2``: the part of e2 not explained by e1 is a centred
    exponential (same moments to second order), which the model cannot produce."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_years)
    t = np.tile(np.arange(n_years), n_units)
    effect = rng.normal(size=n_units)[unit]
    w = 0.5 * effect + rng.normal(size=unit.size)
    x = effect + 0.3 * w + 0.1 * t + rng.normal(size=unit.size)
    z1 = rng.normal(size=unit.size)
    z2 = rng.exponential(size=unit.size) - 1.0 if skewed_m2 else rng.normal(size=unit.size)
    e1 = SD_M[0] * z1
    e2 = SD_M[1] * (CORR * z1 + np.sqrt(1 - CORR**2) * z2)
    m1 = A[0] * x + 0.2 * w + 2 * effect + e1
    m2 = A[1] * x - 0.1 * w - effect + 0.05 * t + e2
    y = C * x + B[0] * m1 + B[1] * m2 + 0.3 * w + 1.5 * effect + rng.normal(size=unit.size)
    return pd.DataFrame({"unit": unit, "year": t, "x": x, "w": w, "m1": m1, "m2": m2, "y": y})


def _at_truth(frame, mediators=("m1", "m2")):
    design = prepare_mediation(frame, "y", "x", list(mediators), ["w"], "unit", "year")
    k = [("m1", "m2").index(m) for m in mediators]
    values = {"a": [A[j] for j in k], "b": [B[j] for j in k], "direct": C,
              "control_mediator": [[0.2, -0.1][j] for j in k], "control_outcome": [0.3],
              "sigma_outcome": 1.0, "sigma_mediator": [SD_M[j] for j in k]}
    if len(mediators) > 1:
        values["mediator_corr"] = CORR
    else:
        # Alone, m2's error is its own; m1's part of it is no longer explained.
        values["b"] = [B[1]]
    idata = point_posterior(
        values, coords={"mediator": list(mediators), "control": ["w"],
                        "mediator_control": [f"{m}:w" for m in mediators]},
        dims={"a": ["mediator"], "b": ["mediator"], "sigma_mediator": ["mediator"],
              "control_mediator": ["mediator_control"], "control_outcome": ["control"]})
    add_mediation_predictive(idata, design, seed=4)
    return idata, design


def test_replicates_of_every_equation_match_the_data_when_the_model_is_right():
    frame = simulate(1)
    idata, design = _at_truth(frame)
    assert set(idata.posterior_predictive.data_vars) == {"y", "m1", "m2"}
    assert idata.posterior_predictive["m1"].dtype == np.float32
    np.testing.assert_allclose(idata.observed_data["m2"].values, frame["m2"].to_numpy())
    cov_m = np.array([[SD_M[0] ** 2, CORR * SD_M[0] * SD_M[1]],
                      [CORR * SD_M[0] * SD_M[1], SD_M[1] ** 2]])
    error_variance = {"m1": cov_m[0, 0], "m2": cov_m[1, 1],
                      "y": 1.0 + np.array(B) @ cov_m @ np.array(B)}
    for variable in ("y", "m1", "m2"):
        excess = flat_effects_excess(error_variance[variable], design.fe_rank, design.n_obs)
        assert_replicates_match(idata, variable, ("mean", "sd", "skewness", "kurtosis"),
                                excess_variance=excess)
    # The mediators' replicated within errors keep their correlation.
    from models.panel.design import demean

    reps = idata.posterior_predictive
    raw = design.raw
    e = [reps[m].values.reshape(-1, design.n_obs)[:20] - a * raw[:, 3] - d * raw[:, 4]
         for m, a, d in (("m1", A[0], 0.2), ("m2", A[1], -0.1))]
    within = demean(np.column_stack([e[0].T, e[1].T]), design.unit_idx, design.time_idx)
    corr = [np.corrcoef(within[:, j], within[:, 20 + j])[0, 1] for j in range(20)]
    assert abs(np.mean(corr) - CORR) < 0.03


def test_skewed_mediator_errors_are_flagged_for_that_mediator():
    idata, design = _at_truth(simulate(2, skewed_m2=True))
    assert assert_flagged(idata, "m2", "skewness") == 0.0
    excess = flat_effects_excess(SD_M[0] ** 2, design.fe_rank, design.n_obs)
    assert_replicates_match(idata, "m1", ("mean", "sd", "skewness"), excess_variance=excess)
    assert_replicates_match(idata, "m2", ("mean",))


@pytest.mark.slow
def test_fit_saves_replicates_of_the_outcome_and_each_mediator(tmp_path):
    import arviz as az

    frame = simulate(3)
    fit = fit_bayes_mediation(frame, "y", "x", ["m1", "m2"], ["w"], "unit", "year",
                              draws=200, tune=200, chains=2, seed=6)
    saved = az.from_netcdf(fit.save_netcdf(tmp_path / "mediation.nc"))
    assert set(saved.posterior_predictive.data_vars) == {"y", "m1", "m2"}
    assert set(saved.observed_data.data_vars) == {"y", "m1", "m2"}
    for variable in ("y", "m1", "m2"):
        assert_replicates_match(saved, variable, ("mean", "skewness"))

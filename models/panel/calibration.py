"""Simulation-based calibration of the Bayesian TWFE model (:mod:`models.panel.bayes`).

The design is one fixed balanced panel of :data:`N_UNITS` units and :data:`N_YEARS` years with
two regressors whose unit means vary with a unit-level trait (so the regressors are correlated
with the unit effects through the Mundlak term). Each simulation draws every parameter from
the fixed, proper priors :data:`PRIORS`, then the outcome from the model itself::

    u_i   = (xbar_i - xbar)' lambda + unit_sd z_i,   z_i ~ N(0, 1)
    tau   ~ ZeroSumNormal(year_sd)                   (iid normal draws minus their mean)
    y_it  = alpha + x~_it' beta + u_i + tau_t + e_it,   e_it ~ N(0, sigma)

and fits :func:`models.panel.bayes.fit_bayes_twfe` (the collapsed model, compiled once per
process and reused with new data for every simulation), gated on that fit's own convergence
checks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.bayes.calibration import CalibrationFit, Simulation, draw_prior
from models.bayes.panel_priors import PanelPriors

N_UNITS = 35
N_YEARS = 7
REGRESSORS = ("x1", "x2")
# Proper and fixed: a prior scaled from the simulated outcome would change with each
# simulation, and the ranks would not be uniform even for a correct fit.
PRIORS = {"intercept": "normal(0, 1)", "slope": "normal(0, 1)", "between": "normal(0, 1)",
          "sigma": "halfnormal(1)", "unit_sd": "halfnormal(1)", "year_sd": "halfnormal(0.5)"}
SAMPLING = {False: {"draws": 1000, "tune": 500, "chains": 4},
            True: {"draws": 500, "tune": 400, "chains": 4}}


def fixed_design(seed: int = 20181) -> pd.DataFrame:
    """The panel's units, years and regressors (the outcome column is a placeholder)."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(N_UNITS), N_YEARS)
    year = np.tile(2010 + np.arange(N_YEARS), N_UNITS)
    trait = rng.normal(size=N_UNITS)[unit]
    x1 = 0.7 * trait + rng.normal(size=unit.size)
    x2 = -0.4 * trait + 0.3 * x1 + rng.normal(size=unit.size)
    return pd.DataFrame({"unit": unit, "year": year, "x1": x1, "x2": x2, "y": 0.0})


class TwfeCalibration:
    """The TWFE family of simulation-based calibration (module docstring)."""

    name = "twfe"
    version = "1"
    parameters = ("slope_x1", "slope_x2", "sigma", "unit_sd", "year_sd")
    SAMPLING = SAMPLING

    def __init__(self, quick: bool = False):
        from models.panel.design import prepare_panel

        self.quick = quick
        self.sampling = dict(SAMPLING[bool(quick)])
        self.frame = fixed_design()
        self.priors = PanelPriors.from_mapping(PRIORS, source="calibration")
        self.design = prepare_panel(self.frame, "y", list(REGRESSORS), "unit", "year")

    def simulate(self, rng: np.random.Generator) -> Simulation:
        """Parameters from :data:`PRIORS`, then y from the model on the fixed design."""
        design, priors = self.design, self.priors
        slope = draw_prior(priors.slope, rng, len(REGRESSORS))
        between = draw_prior(priors.between, rng, len(REGRESSORS))
        alpha = float(draw_prior(priors.intercept, rng))
        sigma = float(draw_prior(priors.sigma, rng))
        unit_sd = float(draw_prior(priors.unit_sd, rng))
        year_sd = float(draw_prior(priors.year_sd, rng))
        unit_effect = design.unit_means @ between + unit_sd * rng.normal(size=N_UNITS)
        year_effect = rng.normal(0.0, year_sd, N_YEARS)
        year_effect -= year_effect.mean()
        y = (alpha + design.x_within @ slope + unit_effect[design.unit_idx]
             + year_effect[design.time_idx] + sigma * rng.normal(size=design.n_obs))
        truth = {"slope_x1": float(slope[0]), "slope_x2": float(slope[1]), "sigma": sigma,
                 "unit_sd": unit_sd, "year_sd": year_sd}
        return Simulation(truth, self.frame.assign(y=y))

    def fit(self, simulation: Simulation, seed: int, sampling: dict) -> CalibrationFit:
        """The collapsed TWFE posterior of the simulated panel (compiled model reused)."""
        from models.panel.bayes import fit_bayes_twfe

        fit = fit_bayes_twfe(simulation.data, "y", list(REGRESSORS), "unit", "year",
                             priors=self.priors, seed=seed, draws=sampling["draws"],
                             tune=sampling["tune"], chains=sampling["chains"])
        posterior = fit.idata.posterior
        draws = {f"slope_{name}": posterior["slope"].sel(coef=name).values.reshape(-1)
                 for name in REGRESSORS}
        for name in ("sigma", "unit_sd", "year_sd"):
            draws[name] = posterior[name].values.reshape(-1)
        return CalibrationFit(draws, fit.convergence_problems())

"""Simulation-based calibration of the single-threshold panel model (:mod:`models.threshold`).

Covariates, threshold variable and grid are held fixed: :data:`N_UNITS` x :data:`N_PERIODS`
balanced panel, a regime regressor x and a fixed regressor f both correlated with the unit
effects, and a threshold variable q. Each simulation draws the threshold uniformly over the
candidate grid (the model's ``uniform`` changepoint prior), the slopes (f, x below the
threshold, x above it) and sigma from :data:`PRIORS`, then

    y_it = u_i + f_it theta_f + x_it (theta_1 1[q_it < gamma] + theta_2 1[q_it >= gamma]) + e_it,

e_it ~ N(0, sigma). Under ``demean="all"`` the unit effects are removed by the within map, so
the model's likelihood is the exact density of the demeaned data whatever the unit effects
are. The fit is the PyMC model of :func:`models.threshold.bayes.fit_bayes_threshold`
(whitened slopes, the threshold summed out exactly), compiled once by nutpie and reused
through its shared data (``with_data``) for every simulation; the threshold is then drawn from
its exact conditional given each draw of the slopes and sigma.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.bayes.calibration import CalibrationFit, Simulation, draw_prior
from models.bayes.convergence import convergence_messages
from models.bayes.panel_priors import PanelPriors

N_UNITS = 30
N_PERIODS = 6
GRID_SIZE = 20
PRIORS = {"slope": "normal(0, 1)", "sigma": "halfnormal(1)"}
SAMPLING = {False: {"draws": 500, "tune": 400, "chains": 4},
            True: {"draws": 250, "tune": 300, "chains": 4}}


def fixed_panel(seed: int = 2024) -> tuple[pd.DataFrame, np.ndarray]:
    """The fixed design (``y`` a placeholder) and the unit effect of every row."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(N_UNITS), N_PERIODS)
    period = np.tile(np.arange(N_PERIODS), N_UNITS)
    effect = rng.normal(size=N_UNITS)[unit]
    frame = pd.DataFrame(dict(unit=unit, year=period,
                              q=rng.normal(size=unit.size) + 0.3 * effect,
                              x=rng.normal(size=unit.size) + 0.5 * effect,
                              f=rng.normal(size=unit.size), y=rng.normal(size=unit.size)))
    return frame, effect


class ThresholdCalibration:
    """The single-threshold family of simulation-based calibration (module docstring)."""

    name = "threshold"
    version = "1"
    parameters = ("gamma_1", "f", "x_regime1", "x_regime2", "sigma")
    # Its draws are grid values: ties in the ranks are broken at random, and the HDI holds
    # whole grid points, so it covers at least 94% of the time.
    discrete = ("gamma_1",)
    SAMPLING = SAMPLING

    def __init__(self, quick: bool = False):
        from models.threshold.data import threshold_log_prior
        from models.threshold.priors import resolve_slope_priors

        self.quick = quick
        self.frame, self.effect = fixed_panel()
        self.priors = PanelPriors.from_mapping(PRIORS, source="calibration")
        data = self.prepare(self.frame["y"].to_numpy())
        self.grid = data.grid
        self.log_prior = threshold_log_prior(data.grid, 1)
        self.resolved = resolve_slope_priors(self.priors, data, 1)
        self.terms = data.term_names(1)
        self._compiled = None

    def prepare(self, y: np.ndarray):
        """The threshold data (within map, grid, sufficient statistics) of outcome ``y``."""
        from models.threshold.data import prepare_threshold_data

        return prepare_threshold_data(self.frame.assign(y=y), y="y", regime="x", threshold="q",
                                      fixed=["f"], unit="unit", period="year", demean="all",
                                      grid_size=GRID_SIZE, trim=0.1)

    def model(self, data):
        """The shared-data PyMC model for ``data`` (whitened at its profile fit)."""
        from models.threshold.likelihood import profile_fit
        from models.threshold.model import build_threshold_model, whitening

        centre, chol = whitening(profile_fit(data, 1, self.log_prior))
        return build_threshold_model(data, 1, self.resolved, self.log_prior, centre, chol,
                                     shared=True)

    def compiled(self):
        """The nutpie-compiled model, built on the first call and reused after."""
        if self._compiled is None:
            from models.bayes.nutpie_compile import compile_model

            self._compiled = compile_model(self.model(self.prepare(self.frame["y"].to_numpy())))
        return self._compiled

    def simulate(self, rng: np.random.Generator) -> Simulation:
        """gamma uniform on the grid, slopes and sigma from :data:`PRIORS`, then y."""
        gamma = float(self.grid[int(rng.integers(0, self.grid.size))])
        theta = draw_prior(self.priors.slope, rng, 3)
        sigma = float(draw_prior(self.priors.sigma, rng))
        x, f, q = (self.frame[c].to_numpy() for c in ("x", "f", "q"))
        slope = np.where(q < gamma, theta[1], theta[2])
        y = self.effect + theta[0] * f + slope * x + sigma * rng.normal(size=q.size)
        truth = {"gamma_1": gamma, "f": float(theta[0]), "x_regime1": float(theta[1]),
                 "x_regime2": float(theta[2]), "sigma": sigma}
        return Simulation(truth, y)

    def fit(self, simulation: Simulation, seed: int, sampling: dict) -> CalibrationFit:
        """The threshold posterior of the simulated outcome, gated on the checks of
        :class:`models.threshold.bayes.BayesThresholdFit` (slopes and sigma; the thresholds
        are exact conditional draws)."""
        import arviz as az

        from models.bayes.sampler import run_nutpie
        from models.threshold.likelihood import profile_fit
        from models.threshold.model import shared_values, whitening
        from models.threshold.posterior import recover_thresholds

        data = self.prepare(np.asarray(simulation.data, dtype=float))
        centre, chol = whitening(profile_fit(data, 1, self.log_prior))
        updated = self.compiled().with_data(**shared_values(data, self.log_prior, centre,
                                                            chol, 1))
        idata, _ = run_nutpie(updated, sampling["draws"], sampling["tune"], sampling["chains"],
                              seed, False)
        posterior = idata.posterior
        slopes = posterior["slope"].values
        sigma = posterior["sigma"].values
        rng = np.random.default_rng([seed, 1])
        recovered = recover_thresholds(slopes.reshape(-1, len(self.terms)), sigma.reshape(-1),
                                       data, 1, self.log_prior, rng)
        draws = {term: slopes[..., j].reshape(-1) for j, term in enumerate(self.terms)}
        draws["sigma"] = sigma.reshape(-1)
        draws["gamma_1"] = data.grid[recovered["index"][:, 0]]
        rows = [(term, float(az.rhat(slopes[..., j])), float(az.ess(slopes[..., j])))
                for j, term in enumerate(self.terms)]
        rows.append(("sigma", float(az.rhat(sigma)), float(az.ess(sigma))))
        divergences = int(idata.sample_stats["diverging"].sum())
        bfmi = [float(v) for v in np.atleast_1d(az.bfmi(idata.sample_stats["energy"].values))]
        return CalibrationFit(draws, convergence_messages(rows, divergences, bfmi))

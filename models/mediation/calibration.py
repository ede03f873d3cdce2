"""Simulation-based calibration of the Bayesian mediation model (:mod:`models.mediation.model`).

The design is fixed: 36 units x 7 years, a treatment x and a control w drawn once from a
fixed seed. Each simulation draws every parameter from the fixed priors of :data:`PRIORS` and
then, for unit i and year t,

    m_it = a x_it + delta w_it + alpha_m,i + tau_m,t + e_it,      e_it ~ N(0, s_m^2),
    y_it = c x_it + b m_it + gamma w_it + alpha_i + tau_t + u_it,  u_it ~ N(0, s_y^2),

with the unit and year effects of both equations drawn afresh each time and independent
errors (sequential ignorability, the model's default). The model integrates the effects out
under flat priors, so its likelihood is the exact density of the two-way demeaned data; the
calibrated quantities are a, b, the direct effect c, the indirect effect a b and the two
residual sds. One compiled model (data containers, :func:`build_mediation_model`) serves
every simulation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.bayes.calibration import CALIBRATION_SAMPLING, CalibrationFit, Simulation, fixed_panel
from models.mediation.bayes import BayesMediationFit
from models.mediation.design import prepare_mediation
from models.mediation.model import build_mediation_model, model_data
from models.mediation.priors import MediationPriors, resolve_priors

# Fixed, proper priors: data-scaled defaults would move with each simulated outcome.
PRIORS = {
    "slope": "normal(0, 1)",
    "mediator_slope": "normal(0, 1)",
    "sigma": "halfnormal(1)",
    "mediator_sigma": "halfnormal(1)",
}
DESIGN_SEED = 20240612


class MediationCalibration:
    """Simulate from and fit the joint mediator / outcome model with one treatment x, one
    mediator m and one control w in both equations (module docstring), priors
    :data:`PRIORS`."""

    name = "mediation"
    parameters = ("a", "b", "direct", "indirect", "sigma_outcome", "sigma_mediator")

    def __init__(self, quick: bool = False):
        self.quick = quick
        self.n_units, self.n_years = (24, 6) if quick else (36, 7)
        rng = np.random.default_rng(DESIGN_SEED)
        n = self.n_units * self.n_years
        # The treatment correlates with the unit effects: only within variation identifies a.
        self.frame = fixed_panel(rng, self.n_units, self.n_years, {"x": 0.5, "w": 0.3})
        self.sampling = dict(CALIBRATION_SAMPLING[quick])
        design = self._design(rng.normal(size=n), rng.normal(size=n))
        self.resolved, self.priors = resolve_priors(MediationPriors.parse(PRIORS), design)
        self.model = build_mediation_model(design, self.resolved, data_containers=True)
        self._compiled = None

    def _design(self, y: np.ndarray, m: np.ndarray):
        return prepare_mediation(self.frame.assign(y=y, m=m), "y", "x", ["m"], ["w"], "unit",
                                 "year")

    @property
    def compiled(self):
        """The nutpie-compiled model, built on first use and shared by every fit."""
        if self._compiled is None:
            from models.bayes.nutpie_compile import compile_model

            self._compiled = compile_model(self.model)
        return self._compiled

    def simulate(self, rng: np.random.Generator) -> Simulation:
        """(a, delta, b, c, gamma, s_m, s_y) from :data:`PRIORS`, effects from N(0, 1), then
        the mediator and the outcome from their normal equations."""
        a, delta, b, direct, gamma = rng.normal(0.0, 1.0, size=5)
        sigma_m, sigma_y = np.abs(rng.normal(0.0, 1.0, size=2))
        unit, year = self.frame["unit"].to_numpy(), self.frame["year"].to_numpy()
        x, w = self.frame["x"].to_numpy(), self.frame["w"].to_numpy()
        n = unit.size
        unit_fx, year_fx = rng.normal(size=(2, self.n_units)), rng.normal(size=(2, self.n_years))
        m = a * x + delta * w + unit_fx[0][unit] + year_fx[0][year] + sigma_m * rng.normal(size=n)
        y = (direct * x + b * m + gamma * w + unit_fx[1][unit] + year_fx[1][year]
             + sigma_y * rng.normal(size=n))
        truth = {"a": a, "b": b, "direct": direct, "indirect": a * b, "sigma_outcome": sigma_y,
                 "sigma_mediator": sigma_m}
        return Simulation({k: float(v) for k, v in truth.items()},
                          {"y": y, "m": m, "delta": float(delta), "gamma": float(gamma)})

    def unconstrained_truth(self, simulation: Simulation) -> dict[str, np.ndarray]:
        """The true parameters as a point of the model's value variables (for its logp)."""
        truth, data = simulation.truth, simulation.data
        return {"a": np.array([truth["a"]]), "b": np.array([truth["b"]]),
                "direct": np.array(truth["direct"]),
                "control_mediator": np.array([data["delta"]]),
                "control_outcome": np.array([data["gamma"]]),
                "sigma_outcome_log__": np.log(truth["sigma_outcome"]),
                "sigma_mediator_log__": np.log([truth["sigma_mediator"]])}

    def data_values(self, simulation: Simulation) -> dict[str, np.ndarray]:
        """The model's data containers for one simulation."""
        return model_data(self._design(simulation.data["y"], simulation.data["m"]),
                          self.resolved)

    def fit(self, simulation: Simulation, seed: int, sampling: dict[str, Any] | None = None
            ) -> CalibrationFit:
        """Sample the compiled mediation model on ``simulation``; problems are those of
        :meth:`models.mediation.bayes.BayesMediationFit.convergence_problems`."""
        from models.bayes.sampler import run_nutpie

        settings = {**self.sampling, **(sampling or {})}
        design = self._design(simulation.data["y"], simulation.data["m"])
        compiled = self.compiled.with_data(**model_data(design, self.resolved))
        idata, seconds = run_nutpie(compiled, settings["draws"], settings["tune"],
                                    settings["chains"], seed, False)
        idata.posterior = idata.posterior.assign_coords(mediator=["m"], control=["w"],
                                                        mediator_control=["m:w"])
        spec = {"mediators": ["m"], "controls": ["w"], "outcome": "y", "n_obs": design.n_obs}
        fit = BayesMediationFit.record(idata, spec=spec, priors=self.priors,
                                       data_hash=design.data_hash, seed=seed,
                                       times={"sampling_s": seconds})
        post = idata.posterior
        draws = {name: post[name].values.reshape(-1) for name in self.parameters}
        return CalibrationFit(draws, fit.convergence_problems())

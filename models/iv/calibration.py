"""Simulation-based calibration of the Bayesian IV model (:mod:`models.iv.bayes`).

The design is fixed: 36 units x 7 years, one instrument z and one control w drawn once from
a fixed seed. Each simulation draws every parameter from the fixed priors of
:data:`PRIORS` and then, for unit i and year t,

    x_it = pi z_it + delta w_it + a_i + d_t + v_it,
    y_it = beta x_it + gamma w_it + b_i + c_t + u_it,
    (u_it, v_it) ~ N(0, [[s_u^2, rho s_u s_v], [rho s_u s_v, s_v^2]]),  (rho + 1) / 2 ~ Beta(2, 2),

with unit and year effects (a, d, b, c) drawn afresh each time. The model integrates the
effects out under flat priors, so its likelihood is the exact density of the two-way demeaned
data whatever the effects are: the posterior it samples is the one these simulations
calibrate. The model is compiled once with the cross-products in data containers
(:func:`models.iv.bayes.build_iv_model`) and each simulation only swaps them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.bayes.calibration import CALIBRATION_SAMPLING, CalibrationFit, Simulation, fixed_panel
from models.iv.bayes import (
    BayesIVFit,
    IVPriors,
    _resolve,
    build_iv_model,
    iv_model_data,
    prepare_iv,
)

# Fixed, proper priors: data-scaled defaults would move with each simulated outcome. The
# first stage is centred away from zero so the instrument is rarely weak: a weak instrument
# makes beta's posterior heavy-tailed, which is the sampler's problem, not the model's.
PRIORS = {
    "slope": "normal(0, 1)",
    "first_stage.z": "normal(1, 0.5)",
    "first_stage.w": "normal(0, 1)",
    "sigma": "halfnormal(1)",
    "first_stage_sigma": "halfnormal(1)",
    "rho": "lkj(2)",
}
DESIGN_SEED = 20240611


class IvCalibration:
    """Simulate from and fit the joint first-stage / outcome IV model with one endogenous
    regressor x, one instrument z and one control w (module docstring), priors
    :data:`PRIORS`."""

    name = "iv"
    parameters = ("beta", "first_stage", "rho", "sigma_outcome", "sigma_first")

    def __init__(self, quick: bool = False):
        self.quick = quick
        self.n_units, self.n_years = (24, 6) if quick else (36, 7)
        rng = np.random.default_rng(DESIGN_SEED)
        n = self.n_units * self.n_years
        # Instrument and control correlate with the unit effects, as panel instruments do.
        self.frame = fixed_panel(rng, self.n_units, self.n_years, {"z": 0.5, "w": 0.3})
        self.sampling = dict(CALIBRATION_SAMPLING[quick])
        design = self._design(np.zeros(n), rng.normal(size=n))
        self.resolved, self.priors = _resolve(IVPriors.parse(PRIORS), design)
        self.model = build_iv_model(design, self.resolved, data_containers=True)
        self._compiled = None

    def _design(self, y: np.ndarray, x: np.ndarray):
        return prepare_iv(self.frame.assign(y=y, x=x), "y", "x", ["z"], ["w"], "unit", "year")

    @property
    def compiled(self):
        """The nutpie-compiled model, built on first use and shared by every fit."""
        if self._compiled is None:
            from models.bayes.nutpie_compile import compile_model

            self._compiled = compile_model(self.model)
        return self._compiled

    def simulate(self, rng: np.random.Generator) -> Simulation:
        """(beta, gamma, pi, delta, s_u, s_v, rho) from :data:`PRIORS`, effects from N(0, 1),
        then (x, y) from the bivariate normal first stage and outcome equation."""
        beta, gamma = rng.normal(0.0, 1.0, size=2)
        pi = rng.normal(1.0, 0.5)
        delta = rng.normal(0.0, 1.0)
        sigma_u, sigma_v = np.abs(rng.normal(0.0, 1.0, size=2))
        rho = 2.0 * rng.beta(2.0, 2.0) - 1.0
        unit, year = self.frame["unit"].to_numpy(), self.frame["year"].to_numpy()
        n = unit.size
        effects = rng.normal(size=(2, self.n_units)), rng.normal(size=(2, self.n_years))
        v = sigma_v * rng.normal(size=n)
        # u given v: the conditional normal of the bivariate error.
        u = rho * sigma_u / sigma_v * v + sigma_u * np.sqrt(1.0 - rho**2) * rng.normal(size=n)
        z, w = self.frame["z"].to_numpy(), self.frame["w"].to_numpy()
        x = pi * z + delta * w + effects[0][0][unit] + effects[1][0][year] + v
        y = beta * x + gamma * w + effects[0][1][unit] + effects[1][1][year] + u
        truth = {"beta": beta, "first_stage": pi, "rho": rho, "sigma_outcome": sigma_u,
                 "sigma_first": sigma_v}
        return Simulation({k: float(v) for k, v in truth.items()},
                          {"y": y, "x": x, "gamma": float(gamma), "delta": float(delta)})

    def unconstrained_truth(self, simulation: Simulation) -> dict[str, np.ndarray]:
        """The true parameters as a point of the model's value variables (for its logp)."""
        truth, data = simulation.truth, simulation.data
        rho_unit = (truth["rho"] + 1.0) / 2.0
        return {"beta": np.array(truth["beta"]), "first_stage": np.array([truth["first_stage"]]),
                "control_outcome": np.array([data["gamma"]]),
                "control_first": np.array([data["delta"]]),
                "sigma_outcome_log__": np.log(truth["sigma_outcome"]),
                "sigma_first_log__": np.log(truth["sigma_first"]),
                "rho_unit_logodds__": np.log(rho_unit / (1.0 - rho_unit))}

    def data_values(self, simulation: Simulation) -> dict[str, np.ndarray]:
        """The model's data containers for one simulation."""
        return iv_model_data(self._design(simulation.data["y"], simulation.data["x"]))

    def fit(self, simulation: Simulation, seed: int, sampling: dict[str, Any] | None = None
            ) -> CalibrationFit:
        """Sample the compiled IV model on ``simulation``; problems are those of
        :meth:`models.iv.bayes.BayesIVFit.convergence_problems`."""
        from models.bayes.sampler import run_nutpie

        settings = {**self.sampling, **(sampling or {})}
        design = self._design(simulation.data["y"], simulation.data["x"])
        compiled = self.compiled.with_data(**iv_model_data(design))
        idata, seconds = run_nutpie(compiled, settings["draws"], settings["tune"],
                                    settings["chains"], seed, False)
        spec = {"instruments": ["z"], "endogenous": "x", "controls": ["w"],
                "n_obs": design.n_obs}
        fit = BayesIVFit.record(idata, spec=spec, priors=self.priors,
                                data_hash=design.data_hash, seed=seed,
                                times={"sampling_s": seconds})
        post = idata.posterior
        draws = {name: post[name].values.reshape(-1) for name in self.parameters}
        return CalibrationFit(draws, fit.convergence_problems())

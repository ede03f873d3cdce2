"""Simulation-based calibration (Talts et al. 2018; Modrak et al. 2023): what each model
family provides so one machinery can calibrate all of them.

A family's calibration object holds a fixed design (the panel's units, years and regressors),
draws the parameters from the family's priors and the outcome from the family's likelihood
(:meth:`CalibrationFamily.simulate`), and fits the family's own PyMC model to the simulated
outcome (:meth:`CalibrationFamily.fit`), compiling it once and swapping the data for each
simulation. If the fit is right, the rank of each true value among its posterior draws is
uniform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass
class Simulation:
    """One simulated data set: the true value of each calibrated parameter, and the data in
    whatever form the family's :meth:`~CalibrationFamily.fit` takes."""

    truth: dict[str, float]
    data: Any


@dataclass
class CalibrationFit:
    """A fit to one simulation: the posterior draws of each calibrated parameter (1-D, all
    chains pooled, the names of :attr:`Simulation.truth`) and the fit's own convergence
    problems (empty when it converged); a fit with problems is counted, not ranked."""

    draws: dict[str, np.ndarray]
    problems: list[str] = field(default_factory=list)


class CalibrationFamily(Protocol):
    """What a model family provides for simulation-based calibration."""

    name: str
    parameters: tuple[str, ...]

    def simulate(self, rng: np.random.Generator) -> Simulation:
        """Parameters from the family's priors, then the outcome from its likelihood on the
        fixed design."""
        ...

    def fit(self, simulation: Simulation, seed: int, sampling: dict) -> CalibrationFit:
        """The family's PyMC model fitted to ``simulation`` (compiled once per object)."""
        ...

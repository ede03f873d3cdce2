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

from models.bayes.priors import Prior


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
    # Optional: ``discrete`` names parameters whose draws lie on a grid (their HDI coverage is
    # tested one-sided), ``version`` changes when the simulator or the fit does (it keys the
    # stored results), ``SAMPLING`` = {quick: {"draws", "tune", "chains"}}.

    def simulate(self, rng: np.random.Generator) -> Simulation:
        """Parameters from the family's priors, then the outcome from its likelihood on the
        fixed design."""
        ...

    def fit(self, simulation: Simulation, seed: int, sampling: dict) -> CalibrationFit:
        """The family's PyMC model fitted to ``simulation`` (compiled once per object)."""
        ...


# The number of posterior draws each truth is ranked among: thinned to be close to independent,
# and L + 1 = 100 possible ranks divide evenly into the usual 5, 10 or 20 histogram bins.
RANKED_DRAWS = 99
HDI_PROB = 0.94


def thin(draws: np.ndarray, n: int = RANKED_DRAWS) -> np.ndarray:
    """``n`` draws evenly spaced through ``draws`` (1-D, chains pooled), so the ranked draws
    are spread over every chain and nearly independent even when consecutive draws are not."""
    draws = np.asarray(draws, dtype=float).reshape(-1)
    if draws.size < n:
        raise ValueError(f"{draws.size} posterior draws cannot be thinned to {n}: sample at "
                         f"least {n} draws in all")
    return draws[np.linspace(0, draws.size - 1, n).round().astype(int)]


def rank_of(truth: float, draws: np.ndarray, rng: np.random.Generator) -> int:
    """The rank of ``truth`` among ``draws``: the number of draws below it, with ties (a
    discrete parameter such as a threshold on a grid) broken uniformly at random, so the rank
    is uniform on 0..len(draws) when the posterior is right."""
    draws = np.asarray(draws, dtype=float)
    below = int(np.sum(draws < truth))
    ties = int(np.sum(draws == truth))
    return below + int(rng.integers(0, ties + 1))


def hdi(draws: np.ndarray, prob: float = HDI_PROB) -> tuple[float, float]:
    """The shortest interval holding ``prob`` of the draws (the highest-density interval of a
    unimodal posterior)."""
    ordered = np.sort(np.asarray(draws, dtype=float).reshape(-1))
    width = int(np.ceil(prob * ordered.size))
    if width >= ordered.size:
        return float(ordered[0]), float(ordered[-1])
    spans = ordered[width:] - ordered[:-width]
    start = int(np.argmin(spans))
    return float(ordered[start]), float(ordered[start + width])


def hdi_covers(truth: float, draws: np.ndarray, prob: float = HDI_PROB) -> bool:
    """Whether the ``prob`` HDI of ``draws`` holds ``truth``."""
    low, high = hdi(draws, prob)
    return bool(low <= truth <= high)


def draw_prior(prior: Prior, rng: np.random.Generator, size=None) -> np.ndarray:
    """Draws from ``prior`` in the parametrisation of the PyMC distribution it names (numpy
    generators; a family without one here is refused rather than approximated)."""
    p = prior.kwargs
    family = prior.family
    if family == "normal":
        return rng.normal(p["mu"], p["sigma"], size)
    if family == "halfnormal":
        return np.abs(rng.normal(0.0, p["sigma"], size))
    if family == "studentt":
        return p["mu"] + p["sigma"] * rng.standard_t(p["nu"], size)
    if family == "halfstudentt":
        return np.abs(p["sigma"] * rng.standard_t(p["nu"], size))
    if family == "exponential":
        return rng.exponential(1.0 / p["lam"], size)
    if family == "gamma":
        return rng.gamma(p["alpha"], 1.0 / p["beta"], size)
    if family == "lognormal":
        return np.exp(rng.normal(p["mu"], p["sigma"], size))
    raise ValueError(f"simulation from a {family} prior is not implemented; calibration "
                     "needs a proper prior with a simulator")


# Sampler settings of a calibration fit: the convergence checks ask for a bulk ESS of 400 for
# every term, which 4 x 500 draws miss in about a quarter of the IV fits.
CALIBRATION_SAMPLING = {True: {"draws": 500, "tune": 500, "chains": 2},
                        False: {"draws": 1000, "tune": 1000, "chains": 4}}


def fixed_panel(rng: np.random.Generator, n_units: int, n_years: int,
                loadings: dict[str, float]):
    """A balanced panel (``unit``, ``year``) whose regressors, each standard normal plus
    ``loading`` times a unit-level normal, correlate with the unit effects as panel regressors
    do. Draws the unit levels first, then each column in the order of ``loadings``."""
    import pandas as pd

    n = n_units * n_years
    unit = np.repeat(np.arange(n_units), n_years)
    year = np.tile(np.arange(n_years), n_units)
    level = rng.normal(size=n_units)[unit]
    columns = {name: rng.normal(size=n) + loading * level for name, loading in loadings.items()}
    return pd.DataFrame({"unit": unit, "year": year, **columns})

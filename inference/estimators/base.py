"""What every estimator adapter receives and returns.

An adapter module in :mod:`inference.estimators` declares ``KIND`` (the ``kind`` of the
registry specs it serves) and defines ``frequentist(sample, spec, settings)`` and/or
``bayesian(sample, spec, settings)``. Both return an :class:`Estimate`: a tidy table in the
results contract (``term, estimate, std_error, ci_low, ci_high, stat, p_value,
prob_positive, r_hat, ess_bulk, n_obs``; optional ``table``/``column`` route rows to other
tables of the paper; optional ``note``), the posterior fits to save, and figures written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from inference.priors import priors_for


class PosteriorFit(Protocol):
    """What the runner needs from a Bayesian fit."""

    @property
    def converged(self) -> bool: ...

    def convergence_problems(self) -> list[str]: ...

    def save_netcdf(self, path: str | Path) -> Path: ...


@dataclass(frozen=True)
class Settings:
    """Run-wide settings an adapter may use.

    ``sampling`` holds ``draws``, ``tune``, ``chains`` and, when the user set it,
    ``target_accept`` (keyword arguments of every Bayesian fit); ``priors`` is what the user gave
    for every model (the mapping of :func:`inference.priors.read_prior_entries`, a list of
    ``ROLE=DIST`` strings, a prior object, or None for the defaults), of which
    :meth:`priors_for` hands each family its own roles; ``out_dir`` is where figures go.
    """

    seed: int
    unit: str
    time: str
    quick: bool = False
    sampling: dict[str, float] = field(
        default_factory=lambda: {"draws": 1000, "tune": 1000, "chains": 4})
    priors: Any = None
    out_dir: Path = Path("reports")
    synthetic: bool = False

    def priors_for(self, family: str) -> Any:
        """The user's priors of one model family (:func:`inference.priors.priors_for`)."""
        return priors_for(self.priors, family)

    @property
    def figure_suffix(self) -> str:
        """Appended to every figure title so synthetic results are never shown bare."""
        return " (SYNTHETIC data)" if self.synthetic else ""


@dataclass
class Estimate:
    """An adapter's output for one specification."""

    tidy: pd.DataFrame
    fits: dict[str, PosteriorFit] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)


def convergence_note(term: str, problems: list[str]) -> str:
    """The convergence problems of ``term`` in words, and which other parameters of the same
    model failed (a model whose nuisance parameters have not mixed is not trusted either)."""
    own = [p for p in problems if re.search(rf"\bof {re.escape(term)} is\b", p)]
    others = sorted({m.group(1) for p in problems if p not in own
                     for m in [re.search(r"\bof (\S+) is\b", p)] if m})
    general = [p for p in problems if not re.search(r"\bof \S+ is\b", p)]
    parts = own + general
    if others:
        parts.append("other parameters of this model did not converge: " + ", ".join(others))
    return "; ".join(parts)

"""Statistical models: one subpackage per model family, its frequentist estimator beside its
Bayesian counterpart, and one wing for what every posterior shares.

============================  ==================================================================
``models.bayes``              prior grammar and panel priors, nutpie runner, trace conversion,
                              convergence checks, provenance, summary row, power-scaling, the
                              fused-Op base, and :class:`~models.bayes.fit.PosteriorFit`
``models.panel``              within (TWFE) estimator; hierarchical Bayesian TWFE
``models.threshold``          Hansen (1999) threshold search and bootstrap; Bayesian threshold
                              model with the thresholds marginalised; smooth transition
``models.iv``                 panel 2SLS with KP tests; Bayesian IV with correlated errors
``models.heterogeneity``      interacted TWFE; group-varying slopes under partial pooling
``models.mediation``          three-step mediation with Sobel and bootstrap
``models.event_study``        TWFE event study
``models.dea``                DEA efficiency scores
``models.gmm``                difference and system GMM for dynamic panels (xtabond2)
``models.selection_ratio``    Altonji-Elder-Taber and Oster selection ratios
============================  ==================================================================

Each subpackage names its public entry points; they load on first use, so that importing one
module of a family does not load the rest (numba and PyMC come only with the Bayesian half).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_entry_points(package: str, entry_points: Mapping[str, str]
                      ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a subpackage whose public names live in its modules
    (``{name: module}``): ``package.name`` imports ``package.module`` the first time."""

    def attribute(name: str) -> Any:
        module = entry_points.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module}"), name)

    def names() -> list[str]:
        return sorted(entry_points)

    return attribute, names

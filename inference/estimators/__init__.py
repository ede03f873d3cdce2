"""Estimator adapters by specification kind, discovered from the modules of this package.

Each module declares ``KIND`` and defines ``frequentist`` and/or ``bayesian`` (see
:mod:`inference.estimators.base`). ``FREQUENTIST[kind]`` and ``BAYESIAN[kind]`` map a spec's
``kind`` to the adapter that fits it. A module that keeps fits between specifications also
defines ``release()``, which ``RELEASE[kind]`` names: a run calls it once no specification of
that kind is left.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

import pandas as pd

from inference.estimators.base import Estimate, Settings

Adapter = Callable[[pd.DataFrame, object, Settings], Estimate]


def _discover() -> tuple[dict[str, Adapter], dict[str, Adapter], dict[str, Callable]]:
    frequentist: dict[str, Adapter] = {}
    bayesian: dict[str, Adapter] = {}
    release: dict[str, Callable[[], None]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if kind is None:
            continue
        for registry, attribute in ((frequentist, "frequentist"), (bayesian, "bayesian")):
            adapter = getattr(module, attribute, None)
            if adapter is None:
                continue
            if kind in registry:
                raise RuntimeError(f"two {attribute} adapters for kind '{kind}' "
                                   f"(second in {module.__name__})")
            registry[kind] = adapter
        if hasattr(module, "release"):
            release[kind] = module.release
    return frequentist, bayesian, release


FREQUENTIST, BAYESIAN, RELEASE = _discover()

__all__ = ["BAYESIAN", "FREQUENTIST", "RELEASE", "Estimate", "Settings"]

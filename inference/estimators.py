"""Frequentist estimators by specification kind: each maps (sample, spec) to a tidy table."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from inference.registry import Spec
from models.panel_fe import fit_twfe


def twfe(sample: pd.DataFrame, spec: Spec, settings: dict) -> pd.DataFrame:
    """Two-way (or any absorbed) fixed-effects regression of the spec's columns."""
    return fit_twfe(sample, spec.outcome, list(spec.regressors), list(spec.effects),
                    vcov=spec.vcov).tidy()


FREQUENTIST: dict[str, Callable[[pd.DataFrame, Spec, dict], pd.DataFrame]] = {
    "twfe": twfe,
}

"""Sample restrictions and variable transformations a specification asks for."""

from __future__ import annotations

import pandas as pd

from data.errors import DataError
from inference.registry import Spec


def winsorize(series: pd.Series, share: float) -> pd.Series:
    """Clip a series at its ``share`` and ``1 - share`` quantiles (two-sided winsorising)."""
    low, high = series.quantile([share, 1 - share])
    return series.clip(low, high)


def prepare_sample(frame: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Apply the spec's sample filter, then winsorise its outcome and regressors if asked.

    Returns a new frame; ``frame`` is not modified.
    """
    sample = frame
    if spec.sample:
        try:
            sample = frame.query(spec.sample)
        except Exception as exc:
            raise DataError(f"{spec.key}: sample rule '{spec.sample}' fails ({exc})") from exc
        if sample.empty:
            raise DataError(f"{spec.key}: sample rule '{spec.sample}' leaves no rows")
    sample = sample.copy()
    if spec.winsorize:
        for name in (spec.outcome, *spec.regressors):
            sample[name] = winsorize(sample[name], spec.winsorize)
    return sample

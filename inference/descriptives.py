"""Descriptive statistics in the shape of a study's summary table (e.g. zhao2025 Table 1)."""

from __future__ import annotations

import pandas as pd

MOMENTS = ("n", "mean", "sd", "min", "max")


def moments_table(frame: pd.DataFrame, variables: list[str]) -> pd.DataFrame:
    """Rows (column = statistic, term = variable, estimate = value) for n, mean, sd, min, max.

    The standard deviation uses the sample (n - 1) divisor, as Stata's ``summarize``.
    """
    rows = []
    for name in variables:
        if name not in frame:
            continue
        values = frame[name].astype(float)
        stats = {"n": values.count(), "mean": values.mean(), "sd": values.std(ddof=1),
                 "min": values.min(), "max": values.max()}
        rows.extend({"column": stat, "term": name, "estimate": float(stats[stat]),
                     "n_obs": int(values.count())} for stat in MOMENTS)
    return pd.DataFrame(rows)

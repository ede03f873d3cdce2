"""Descriptive statistics in the shape of a study's summary table (e.g. zhao2025 Table 1)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

MOMENTS = ("n", "mean", "sd", "min", "q25", "median", "q75", "max")


def moments_table(frame: pd.DataFrame, variables: Mapping[str, str] | list[str]) -> pd.DataFrame:
    """Rows (column = statistic, term = variable, estimate = value) for n, mean, sd, min, the
    quartiles and max.

    ``variables`` maps the printed name to the data column (a list when they coincide). The
    standard deviation uses the sample (n - 1) divisor, as Stata's ``summarize``; quartiles
    interpolate linearly between order statistics.
    """
    if not isinstance(variables, Mapping):
        variables = {name: name for name in variables}
    rows = []
    for printed, name in variables.items():
        if name not in frame:
            continue
        values = frame[name].astype(float)
        stats = {"n": values.count(), "mean": values.mean(), "sd": values.std(ddof=1),
                 "min": values.min(), "q25": values.quantile(0.25),
                 "median": values.median(), "q75": values.quantile(0.75), "max": values.max()}
        rows.extend({"column": stat, "term": printed, "estimate": float(stats[stat]),
                     "n_obs": int(values.count())} for stat in MOMENTS)
    return pd.DataFrame(rows)

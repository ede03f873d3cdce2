"""A simulated event-study panel with known truth (for recovery and coverage tests).

Units i = 1..N, years 2010..2010+T-1, Treat_i = 1 for the units above the median of a
unit-level variable v_i, which is correlated with the unit effect (so a plain random
intercept would be biased), one control x_it:

    normal:  y_it = 1 + a_i + l_t + b_t Treat_i + 0.3 x_it + e_it,  e ~ N(0, sigma)
    negbin:  count_it ~ NegBin(exp(0.5 + a_i + l_t + b_t Treat_i), size 8)

with a_i = 0.6 v_i + N(0, 0.5), l_t = 0.05 (t - 2010) and b_ref = 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TRUE_PATH = {2010: 0.02, 2011: -0.03, 2012: 0.0, 2013: 0.04, 2015: 0.15, 2016: 0.25,
             2017: 0.3}
REFERENCE = 2014


def simulate_event_panel(seed: int, n_units: int = 120, likelihood: str = "normal",
                         sigma: float = 0.3, path: dict[int, float] | None = None
                         ) -> pd.DataFrame:
    """One panel of the module's DGP; ``path`` maps every year but :data:`REFERENCE` to b."""
    path = dict(TRUE_PATH if path is None else path)
    years = sorted([*path, REFERENCE])
    rng = np.random.default_rng(seed)
    v = rng.normal(size=n_units)
    unit_effect = 0.6 * v + rng.normal(0.0, 0.5, n_units)
    unit = np.repeat(np.arange(n_units), len(years))
    year = np.tile(years, n_units)
    treat = (v > np.median(v)).astype(float)[unit]
    effect = np.array([path.get(int(t), 0.0) for t in year]) * treat
    eta = unit_effect[unit] + 0.05 * (year - years[0]) + effect
    frame = pd.DataFrame({"city": unit, "year": year, "v": v[unit]})
    if likelihood == "normal":
        frame["x"] = rng.normal(size=unit.size) + 0.3 * unit_effect[unit]
        frame["y"] = 1.0 + eta + 0.3 * frame["x"] + rng.normal(0.0, sigma, unit.size)
    else:
        mean = np.exp(0.5 + eta)
        frame["y"] = rng.negative_binomial(8.0, 8.0 / (8.0 + mean))
    return frame

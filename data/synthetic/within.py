r"""Two-way within (TWFE) transformation and slopes, used by the generators to calibrate their
panels and record pseudo-true slopes: closed form on a balanced panel, alternating projections
on an unbalanced one.

:math:`\tilde v_{it} = v_{it} - \bar v_{i\cdot} - \bar v_{\cdot t} + \bar v`, then
:math:`\hat b = (\tilde X'\tilde X)^{-1}\tilde X'\tilde y`; equal to the slopes of
``y ~ X | unit + year`` when every unit is observed once in every period.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def two_way_demean(values: np.ndarray, unit: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Remove unit and period means from each column of ``values`` (rows in the input order).

    Raises ValueError unless every unit is observed exactly once in every period.
    """
    values = np.asarray(values, dtype=float)
    matrix = values.reshape(len(values), -1)
    units, unit_codes = np.unique(unit, return_inverse=True)
    periods, time_codes = np.unique(time, return_inverse=True)
    cells = np.zeros((len(units), len(periods)), dtype=int)
    np.add.at(cells, (unit_codes, time_codes), 1)
    if not (cells == 1).all():
        raise ValueError("two-way demeaning needs a balanced panel: one row per unit and period")
    grid = np.empty((len(units), len(periods), matrix.shape[1]))
    grid[unit_codes, time_codes] = matrix
    demeaned = (
        grid
        - grid.mean(axis=1, keepdims=True)
        - grid.mean(axis=0, keepdims=True)
        + grid.mean(axis=(0, 1), keepdims=True)
    )
    return demeaned[unit_codes, time_codes].reshape(values.shape)


def within_slopes(
    y: np.ndarray, regressors: np.ndarray, unit: np.ndarray, time: np.ndarray
) -> np.ndarray:
    """Two-way fixed-effects (within) OLS slopes of ``y`` on ``regressors``."""
    demeaned = two_way_demean(np.column_stack([y, regressors]), unit, time)
    # Rows sorted by (unit, period) so that shipped truth files reproduce to the last bit.
    order = np.lexsort((np.unique(time, return_inverse=True)[1],
                        np.unique(unit, return_inverse=True)[1]))
    demeaned = demeaned[order]
    return np.linalg.lstsq(demeaned[:, 1:], demeaned[:, 0], rcond=None)[0]


def alternating_demean(matrix: np.ndarray, city: np.ndarray, year: np.ndarray, tol: float = 1e-13):
    """Two-way within transformation by alternating projections (exact for unbalanced panels)."""
    out = np.array(matrix, dtype=float, copy=True)
    if out.ndim == 1:
        out = out[:, None]
    n_city, n_year = city.max() + 1, year.max() + 1
    city_n = np.bincount(city, minlength=n_city)[:, None]
    year_n = np.bincount(year, minlength=n_year)[:, None]
    for _ in range(10_000):
        city_mean = np.zeros((n_city, out.shape[1]))
        np.add.at(city_mean, city, out)
        out -= (city_mean / city_n)[city]
        year_mean = np.zeros((n_year, out.shape[1]))
        np.add.at(year_mean, year, out)
        shift = (year_mean / year_n)[year]
        out -= shift
        if np.abs(shift).max() < tol:
            break
    return out


def codes(values: pd.Series) -> np.ndarray:
    """Integer codes 0..n-1 of ``values`` in sorted order."""
    return pd.factorize(values, sort=True)[0]


def within_columns(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """``columns`` of a city-year ``frame``, two-way demeaned by alternating projections."""
    return alternating_demean(frame[columns].to_numpy(float), codes(frame["city"]),
                              codes(frame["year"]))


def cluster_parts(x_within: np.ndarray, cluster: np.ndarray):
    """Return the row of (X'X)^-1 X' for the first regressor and the CR1 factor."""
    n, k = x_within.shape
    bread = np.linalg.inv(x_within.T @ x_within)
    loading = x_within @ bread[:, 0]
    groups = cluster.max() + 1
    factor = groups / (groups - 1) * (n - 1) / (n - k)
    return loading, factor


def twfe_first_coef(frame: pd.DataFrame, outcome: np.ndarray, regressors: list[str]) -> float:
    """The first regressor's TWFE slope of ``outcome`` on ``regressors`` (city and year)."""
    x_w = within_columns(frame, regressors)
    y_w = alternating_demean(outcome, codes(frame["city"]), codes(frame["year"]))[:, 0]
    return float(np.linalg.lstsq(x_w, y_w, rcond=None)[0][0])

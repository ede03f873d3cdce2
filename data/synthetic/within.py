r"""Two-way within (TWFE) transformation and slopes on a balanced panel, used by the generators
to calibrate their panels and record pseudo-true slopes.

:math:`\tilde v_{it} = v_{it} - \bar v_{i\cdot} - \bar v_{\cdot t} + \bar v`, then
:math:`\hat b = (\tilde X'\tilde X)^{-1}\tilde X'\tilde y`; equal to the slopes of
``y ~ X | unit + year`` when every unit is observed once in every period.
"""

from __future__ import annotations

import numpy as np


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

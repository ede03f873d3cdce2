"""The stacked equations and instruments of difference and system GMM, as ``xtabond2`` builds
them (Roodman 2009), on a balanced unit x period grid with NaN where a row is absent.

Per unit i the rows are the differenced equations at t = t_d..T (difference GMM), followed in
system GMM by the level equations at t = t_l..T. Instruments (each an (N, rows) array):

* GMM-style ``{v: (a, b)}``: for the differenced equation at t the levels v_{i,t-k},
  k = a..b (``b`` None: every lag the data have), one column per lag and period, or one per
  lag with ``collapse``; for the level equation at t (system GMM) Delta v_{i,t-a+1}, one
  column per period, or one in all with ``collapse``. Missing instruments are 0.
* IV-style w: Delta w_it in the differenced rows and, in system GMM, w_it in the level rows of
  the same column (``xtabond2``'s ``iv(w)``), or in the differenced rows alone
  (``iv(w, eq(diff))``, Stata's ``xtdpdsys``), or w_it in the level rows alone
  (``iv(w, eq(level))``); year dummies are IV-style; system GMM has a
  constant in the level rows.

A row of the regression is used where the outcome and every regressor are observed; an
instrument column that is zero on every used row is dropped (``xtabond2`` does not count it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.errors import DataError

_LAGGED = re.compile(r"^L(\d+)\.(.+)$")


@dataclass(frozen=True)
class Design:
    """Stacked outcome (N, R), regressors (N, R, K), instruments (N, L, R) and their names."""

    y: np.ndarray
    x: np.ndarray
    z: np.ndarray
    terms: tuple[str, ...]
    instruments: tuple[str, ...]
    n_diff: int
    n_level: int
    used: np.ndarray
    periods: tuple[int, ...]


def term_name(name: str, lag: int) -> str:
    """``xtabond2``'s label of a lagged variable: ``L2.n``, or ``n`` at lag 0."""
    return f"L{lag}.{name}" if lag else name


def parse_lagged(term: str) -> tuple[str, int]:
    """``"L2.w"`` -> ("w", 2); ``"w"`` -> ("w", 0)."""
    match = _LAGGED.match(term)
    return (match.group(2), int(match.group(1))) if match else (term, 0)


def balanced_cube(frame: pd.DataFrame, unit: str, time: str, variables: list[str]
                  ) -> tuple[np.ndarray, list[int], list]:
    """Values on the full unit x period grid (N, T, V), NaN where a row is absent."""
    for name in [unit, time, *variables]:
        if name not in frame.columns:
            raise DataError(f"dynamic panel GMM needs column '{name}' [rule: required columns]")
    if frame.duplicated([unit, time]).any():
        dup = frame.loc[frame.duplicated([unit, time]), [unit, time]].head(3).to_dict("records")
        raise DataError(f"rows {dup} repeat a ({unit}, {time}) pair [rule: one row per pair]")
    try:
        numeric = frame[time].astype(int)
    except (TypeError, ValueError) as error:
        raise DataError(f"column '{time}' must hold whole periods (years) "
                        "[rule: integer periods]") from error
    periods = sorted(int(p) for p in numeric.unique())
    if periods != list(range(periods[0], periods[-1] + 1)):
        raise DataError(f"column '{time}' has gaps ({periods}); lags need consecutive periods "
                        "[rule: consecutive periods]")
    for name in variables:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            raise DataError(f"column '{name}' is not numeric [rule: numeric variables]")
    units = sorted(frame[unit].unique())
    grid = pd.MultiIndex.from_product([units, periods], names=[unit, time])
    indexed = frame.assign(**{time: numeric}).set_index([unit, time])[variables]
    values = (indexed.astype(float).reindex(grid).to_numpy()
              .reshape(len(units), len(periods), len(variables)))
    return values, periods, units


def lagged(values: np.ndarray, lag: int) -> np.ndarray:
    """x_{t-lag} on the (N, T) grid, NaN where t - lag < 0."""
    if lag == 0:
        return values.copy()
    out = np.full_like(values, np.nan)
    out[:, lag:] = values[:, :-lag]
    return out


def build_design(
    column: dict[str, np.ndarray],
    periods: list[int],
    outcome: str,
    x_terms: list[tuple[str, int]],
    gmm: dict[str, tuple[int, int | None]],
    iv_terms: list[tuple[str, int]],
    *,
    iv_diff_terms: list[tuple[str, int]] = (),
    iv_level_terms: list[tuple[str, int]] = (),
    level: bool,
    time_dummies: bool,
    collapse: bool,
) -> Design:
    """Stack the equations and instruments (see the module docstring)."""
    n_units, n_periods = next(iter(column.values())).shape
    max_lag = max(lag for _, lag in [*x_terms, *iv_terms, *iv_diff_terms, *iv_level_terms])
    if level:
        first_level = max([max_lag, *(max(a - 1, 0) for a, _ in gmm.values())])
        first_diff = first_level + 1
    else:
        first_diff = max_lag + 1
    if first_diff + 2 > n_periods - 1:
        raise DataError(f"{n_periods} periods are too few for this model "
                        "[rule: enough periods for lags and differences]")
    diff_t = np.arange(first_diff, n_periods)
    level_t = np.arange(first_diff - 1, n_periods) if level else np.arange(0)
    n_diff, n_level = len(diff_t), len(level_t)
    rows = n_diff + n_level

    def stacked(values: np.ndarray) -> np.ndarray:
        delta = values - lagged(values, 1)
        return np.concatenate([delta[:, diff_t], values[:, level_t]], axis=1)

    dummies = []
    if time_dummies:
        for t in diff_t:
            dummy = np.zeros((n_units, n_periods))
            dummy[:, t] = 1.0
            dummies.append((f"_year_{periods[t]}", dummy))
    y = stacked(column[outcome])
    x_parts = [stacked(lagged(column[name], lag)) for name, lag in x_terms]
    x_parts += [stacked(dummy) for _, dummy in dummies]
    terms = [term_name(name, lag) for name, lag in x_terms] + [name for name, _ in dummies]
    if level:
        x_parts.append(np.concatenate([np.zeros((n_units, n_diff)), np.ones((n_units, n_level))],
                                      axis=1))
        terms.append("_con")
    x = np.stack(x_parts, axis=2)

    z_rows, labels = [], []
    for name, (low, high) in gmm.items():
        values = column[name]
        top = n_periods if high is None else high
        if collapse:
            for lag in range(low, min(top, n_periods - 1) + 1):
                row = np.full((n_units, rows), np.nan)
                for j, t in enumerate(diff_t):
                    if t - lag >= 0:
                        row[:, j] = values[:, t - lag]
                z_rows.append(row)
                labels.append(f"gmm_diff L{lag}.{name}")
        else:
            for j, t in enumerate(diff_t):
                for lag in range(low, min(top, t) + 1):
                    row = np.full((n_units, rows), np.nan)
                    row[:, j] = values[:, t - lag]
                    z_rows.append(row)
                    labels.append(f"gmm_diff L{lag}.{name} t{periods[t]}")
    iv_series = [(term_name(name, lag), lagged(column[name], lag)) for name, lag in iv_terms]
    for label, values in [*iv_series, *dummies]:
        z_rows.append(stacked(values))
        labels.append(f"iv {label}")
    for name, lag in iv_diff_terms:
        row = stacked(lagged(column[name], lag))
        row[:, n_diff:] = 0.0
        z_rows.append(row)
        labels.append(f"iv_diff {term_name(name, lag)}")
    for name, lag in iv_level_terms:
        values = lagged(column[name], lag)
        row = np.concatenate([np.zeros((n_units, n_diff)), values[:, level_t]], axis=1)
        z_rows.append(row)
        labels.append(f"iv_level {term_name(name, lag)}")
    if level:
        for name, (low, _high) in gmm.items():
            lag = max(low - 1, 0)
            delta = column[name] - lagged(column[name], 1)
            collapsed = np.full((n_units, rows), np.nan)
            for i, t in enumerate(level_t):
                if t - lag < 1:
                    continue
                if collapse:
                    collapsed[:, n_diff + i] = delta[:, t - lag]
                else:
                    row = np.full((n_units, rows), np.nan)
                    row[:, n_diff + i] = delta[:, t - lag]
                    z_rows.append(row)
                    labels.append(f"gmm_level D.L{lag}.{name} t{periods[t]}")
            if collapse:
                z_rows.append(collapsed)
                labels.append(f"gmm_level D.L{lag}.{name}")
        z_rows.append(np.concatenate([np.zeros((n_units, n_diff)), np.ones((n_units, n_level))],
                                     axis=1))
        labels.append("iv _cons (levels)")

    z = np.stack(z_rows, axis=1)
    z[np.isnan(z)] = 0.0
    used = ~(np.isnan(x).any(axis=2) | np.isnan(y))
    x[~used] = 0.0
    y[~used] = 0.0
    z[np.broadcast_to(~used[:, None, :], z.shape)] = 0.0
    keep = np.abs(z).sum(axis=(0, 2)) > 0
    z = z[:, keep, :]
    labels = [label for label, kept in zip(labels, keep, strict=True) if kept]
    return Design(y=y, x=x, z=z, terms=tuple(terms), instruments=tuple(labels), n_diff=n_diff,
                  n_level=n_level, used=used, periods=tuple(periods))

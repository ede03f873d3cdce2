"""A validated panel and its orthogonal within/between split, the data of every Bayesian TWFE.

For unit i and year t the regressors split as x_it = x~_it + (x_it - x~_it), where x~ is x with
unit and year means removed (two-way demeaned; one-way without a time column; alternating
projections for unbalanced panels). x~ is orthogonal to every unit and year indicator, so in a
Gaussian likelihood the slopes on x~ are identified by within variation only, whatever the
unit and year effects do. The unit means of x, centred, carry the between variation (the
Mundlak terms).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.bayes.panel_priors import DataScales

# Parameter names of the Bayesian panel models: an outcome column may not take one of them.
MODEL_NAMES = (
    "intercept",
    "slope",
    "between",
    "sigma",
    "unit_sd",
    "unit_offset",
    "unit_effect",
    "year_sd",
    "year_effect",
    "nu",
    "alpha",
)


@dataclass(frozen=True)
class PanelDesign:
    """Validated model data with the orthogonal within/between split.

    Attributes
    ----------
    y : ndarray (n,)
    x_raw : ndarray (n, k)
        Regressors as given.
    x_within : ndarray (n, k)
        Two-way demeaned regressors (one-way when there is no time column).
    x_mean : ndarray (k,)
        Observation-weighted mean of each regressor.
    unit_means : ndarray (N, k)
        Unit means of the regressors, centred at their average over units.
    unit_idx, time_idx : ndarray of int
        Codes into ``unit_labels`` / ``time_labels`` (``time_idx`` is None without time).
    fe_rank : int
        Rank of the unit and year indicators (N + T - number of connected components).
    """

    outcome: str
    regressors: tuple[str, ...]
    unit: str
    time: str | None
    y: np.ndarray
    x_raw: np.ndarray
    x_within: np.ndarray
    x_mean: np.ndarray
    unit_means: np.ndarray
    unit_idx: np.ndarray
    time_idx: np.ndarray | None
    unit_labels: tuple[str, ...]
    time_labels: tuple[str, ...]
    fe_rank: int

    @property
    def n_obs(self) -> int:
        return int(self.y.shape[0])

    def y_within(self) -> np.ndarray:
        """The outcome after the same demeaning as the regressors."""
        return demean(self.y[:, None], self.unit_idx, self.time_idx)[:, 0]

    def scales(self, link: str) -> DataScales:
        """Summaries that set the default prior scales (see :mod:`models.bayes.panel_priors`)."""
        return DataScales(
            regressors=self.regressors,
            y_mean=float(self.y.mean()),
            y_sd=float(self.y.std(ddof=1)),
            within_sd=tuple(float(v) for v in self.x_within.std(axis=0, ddof=1)),
            between_sd=tuple(float(v) for v in self.unit_means.std(axis=0, ddof=1)),
            link=link,
        )

    def data_hash(self) -> str:
        """sha256 of the model data (names, outcome, regressors, unit and time keys)."""
        digest = hashlib.sha256()
        header = json.dumps([self.outcome, list(self.regressors), self.unit, self.time])
        digest.update(header.encode())
        digest.update(np.ascontiguousarray(self.y, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(self.x_raw, dtype=np.float64).tobytes())
        digest.update("\x1f".join(self.unit_labels[i] for i in self.unit_idx).encode())
        if self.time_idx is not None:
            digest.update("\x1f".join(self.time_labels[t] for t in self.time_idx).encode())
        return digest.hexdigest()


def demean(
    values: np.ndarray,
    unit_idx: np.ndarray,
    time_idx: np.ndarray | None,
    tol: float = 1e-11,
    max_iter: int = 10_000,
) -> np.ndarray:
    """Residuals of ``values`` on unit (and year) indicators, by alternating projections.

    Balanced panels converge after one sweep; unbalanced ones geometrically.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    n_units = int(unit_idx.max()) + 1
    unit_counts = np.bincount(unit_idx, minlength=n_units).astype(float)

    def remove_means(codes: np.ndarray, counts: np.ndarray) -> float:
        largest = 0.0
        for j in range(out.shape[1]):
            means = np.bincount(codes, weights=out[:, j], minlength=counts.size) / counts
            out[:, j] -= means[codes]
            largest = max(largest, float(np.abs(means).max()))
        return largest

    remove_means(unit_idx, unit_counts)
    if time_idx is None:
        return out
    n_times = int(time_idx.max()) + 1
    time_counts = np.bincount(time_idx, minlength=n_times).astype(float)
    scale = max(float(np.abs(values).max()), 1.0)
    for _ in range(max_iter):
        change = remove_means(time_idx, time_counts)
        change = max(change, remove_means(unit_idx, unit_counts))
        if change <= tol * scale:
            return out
    raise RuntimeError(
        "Two-way demeaning did not converge; the unit-year graph may be nearly disconnected."
    )


def fixed_effects_rank(unit_idx: np.ndarray, time_idx: np.ndarray | None, n_units: int) -> int:
    """Rank of the unit and year indicators: N + T less the connected components of the
    bipartite unit-year graph (N without years)."""
    if time_idx is None:
        return n_units
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n_times = int(time_idx.max()) + 1
    size = n_units + n_times
    graph = coo_matrix((np.ones(unit_idx.size), (unit_idx, n_units + time_idx)), shape=(size, size))
    n_components, _ = connected_components(graph, directed=False)
    return size - n_components


def check_panel_columns(
    df: pd.DataFrame, outcome: str, regressors: Sequence[str], unit: str, time: str | None
) -> list[str]:
    """The regressors as a list, after checking names, missing and non-numeric values.

    Raises ValueError naming the column and the first offending rows.
    """
    if isinstance(regressors, str):
        regressors = [regressors]
    regressors = list(regressors)
    if not regressors:
        raise ValueError("At least one regressor is needed.")
    if len(set(regressors)) != len(regressors):
        raise ValueError(f"Regressors are listed twice: {regressors}.")
    keys = [outcome, unit] + ([time] if time is not None else [])
    clash = [r for r in regressors if r in keys]
    if clash:
        raise ValueError(f"Regressor(s) {clash} are also the outcome, unit or time column.")
    missing = [c for c in keys + regressors if c not in df.columns]
    if missing:
        raise ValueError(f"Column(s) {missing} not in the data; columns are {list(df.columns)}.")
    taken = [c for c in [outcome] if c in MODEL_NAMES]
    if taken:
        raise ValueError(
            f"Outcome column {taken[0]!r} clashes with a model parameter name; rename it."
        )
    for column in keys + regressors:
        bad = df.index[df[column].isna()]
        if len(bad):
            raise ValueError(
                f"Column {column!r} has {len(bad)} missing value(s), first at row(s) "
                f"{list(bad[:5])}; drop or impute them before fitting."
            )
    for column in [outcome] + regressors:
        if not pd.api.types.is_numeric_dtype(df[column]):
            raise ValueError(f"Column {column!r} must be numeric, got dtype {df[column].dtype}.")
        values = df[column].to_numpy(dtype=float)
        bad = df.index[~np.isfinite(values)]
        if len(bad):
            raise ValueError(f"Column {column!r} has non-finite values at row(s) {list(bad[:5])}.")
    return regressors


def prepare_panel(
    df: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    unit: str,
    time: str | None = None,
    mundlak_columns: Sequence[str] | None = None,
) -> PanelDesign:
    """Validate a panel and compute the within/between split.

    ``mundlak_columns`` (default: every regressor) are the regressors whose unit means enter
    the Mundlak term; the others get zero unit means, so their Mundlak coefficient is left
    to its prior. For regressors whose unit means are collinear, such as the Treat x year
    dummies of an event study (every one's unit mean is Treat_i / T_i), keeping one of them
    spans the same unit-level variation and avoids an unidentified ridge in the posterior.

    Raises
    ------
    ValueError
        Naming the column or rows: missing columns, missing or non-numeric values, duplicated
        (unit, time) pairs, a regressor without within variation (absorbed by the effects),
        or too few observations.
    """
    regressors = check_panel_columns(df, outcome, regressors, unit, time)
    if time is not None:
        duplicated = df.duplicated([unit, time], keep=False)
        if duplicated.any():
            rows = list(df.index[duplicated][:5])
            raise ValueError(
                f"Pairs of ({unit!r}, {time!r}) occur more than once, first at rows {rows}; "
                "a panel has one row per unit and year."
            )
    unit_codes, unit_uniques = pd.factorize(df[unit], sort=True)
    if time is not None:
        time_codes, time_uniques = pd.factorize(df[time], sort=True)
        time_idx: np.ndarray | None = time_codes.astype(np.int64)
        time_labels = tuple(str(v) for v in time_uniques)
    else:
        time_idx, time_labels = None, ()
    unit_idx = unit_codes.astype(np.int64)
    y = df[outcome].to_numpy(dtype=np.float64)
    x_raw = df[regressors].to_numpy(dtype=np.float64)
    x_within = demean(x_raw, unit_idx, time_idx)
    raw_sd = x_raw.std(axis=0)
    within_sd = x_within.std(axis=0)
    for j, name in enumerate(regressors):
        if within_sd[j] <= 1e-9 * max(raw_sd[j], 1e-300) or within_sd[j] == 0:
            effects = "unit and year effects" if time is not None else "unit effects"
            raise ValueError(
                f"Regressor {name!r} has no variation left after removing {effects}: it is "
                "absorbed by the fixed effects and its slope is not identified."
            )
    rank_x = np.linalg.matrix_rank(x_within)
    if rank_x < len(regressors):
        raise ValueError(
            f"Regressors {regressors} are collinear after removing the fixed effects "
            f"(rank {rank_x} < {len(regressors)})."
        )
    n_units = len(unit_uniques)
    fe_rank = fixed_effects_rank(unit_idx, time_idx, n_units)
    if y.size <= len(regressors) + fe_rank:
        raise ValueError(
            f"{y.size} observations cannot identify {len(regressors)} slopes and {fe_rank} "
            "fixed effects."
        )
    counts = np.bincount(unit_idx, minlength=n_units).astype(float)
    unit_means = np.stack(
        [
            np.bincount(unit_idx, weights=x_raw[:, j], minlength=n_units) / counts
            for j in range(len(regressors))
        ],
        axis=1,
    )
    unit_means = unit_means - unit_means.mean(axis=0)
    if mundlak_columns is not None:
        unknown = [c for c in mundlak_columns if c not in regressors]
        if unknown:
            raise ValueError(f"Mundlak column(s) {unknown} are not regressors {regressors}.")
        keep = np.array([name in set(mundlak_columns) for name in regressors])
        unit_means = unit_means * keep
    return PanelDesign(
        outcome=outcome,
        regressors=tuple(regressors),
        unit=unit,
        time=time,
        y=y,
        x_raw=x_raw,
        x_within=x_within,
        x_mean=x_raw.mean(axis=0),
        unit_means=unit_means,
        unit_idx=unit_idx,
        time_idx=time_idx,
        unit_labels=tuple(str(v) for v in unit_uniques),
        time_labels=time_labels,
        fe_rank=fe_rank,
    )


def demeaned_system(panel: PanelDesign, names: Sequence[str]) -> dict:
    """The fields a multi-equation model on two-way demeaned data keeps (IV, mediation):
    ``data`` = [y~, x~_1..] with ``names`` for its columns, ``gram`` = data'data, the standard
    deviations of each column before (``raw_sd``) and after (``within_sd``) demeaning, and the
    panel's size, fixed-effect rank and data hash; ``raw`` (the columns before demeaning) and
    the unit and year codes, from which posterior predictive draws put the effects back."""
    data = np.column_stack([panel.y_within(), panel.x_within])
    raw = np.column_stack([panel.y, panel.x_raw])
    return {
        "data": data, "gram": data.T @ data, "raw": raw,
        "unit_idx": panel.unit_idx, "time_idx": panel.time_idx,
        "raw_sd": dict(zip(names, raw.std(axis=0, ddof=1), strict=True)),
        "within_sd": dict(zip(names, data.std(axis=0, ddof=1), strict=True)),
        "n_obs": panel.n_obs, "fe_rank": panel.fe_rank, "data_hash": panel.data_hash(),
        "n_units": len(panel.unit_labels), "n_years": len(panel.time_labels),
    }

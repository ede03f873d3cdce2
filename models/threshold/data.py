"""Threshold-model data: the within-transformed panel, its candidate grid and the changepoint prior.

:func:`prepare_threshold_data` validates a balanced panel, applies the within map ``W0`` unit
by unit and computes the sufficient statistics of every candidate threshold g on Hansen's
grid: with B = W[F, x] and C(g) = W(x 1[q < g]) the transformed split column,

    y'y, B'y, B'B, C(g)'y, C(g)'B and G(g, h) = C(g)'C(h) for every pair,

so the residual sum of squares of any configuration of thresholds follows without touching the
rows again (:mod:`models.threshold.likelihood`). :func:`threshold_log_prior` is the prior
over ordered configurations of grid indices.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from models.threshold.hansen import panel_arrays
from models.threshold.search import DEMEAN_CONVENTIONS, PanelArrays, SortedPanel, hansen_grid

MAX_THRESHOLDS = 3
DEFAULT_GRID_SIZE = {0: 400, 1: 400, 2: 400, 3: 60}
DEFAULT_TRIM = (0.01, 0.01, 0.05)
THRESHOLD_PRIORS = ("uniform", "uniform_value")
# Inadmissible configurations get this log prior: finite, so no inf - inf appears in gradients.
IMPOSSIBLE = -1e100


@dataclass(frozen=True, eq=False)
class ThresholdData:
    """Within-transformed panel with the sufficient statistics of every candidate threshold.

    Attributes
    ----------
    y, base
        Transformed outcome (m,) and regressors B = W[F, x] (m, p0): fixed columns first, then
        the (unsplit) regime regressors.
    grid, positions
        Candidate thresholds (K,), increasing and distinct, and the number of observations
        with q < g for each.
    yy, base_y, base_gram
        y'y, B'y, B'B.
    split_y, split_base, split_gram
        C(g)'y (K, k_r), C(g)'B (K, k_r, p0) and C(g)'C(h) (K, K, k_r, k_r).
    dof
        n (T - 1), the degrees of freedom of the within regression.
    levels
        The panel before the transformation (y, F, x, q as (unit, period) arrays), for
        replicates of the outcome in levels.
    """

    outcome: str
    fixed_names: tuple[str, ...]
    regime_names: tuple[str, ...]
    threshold_name: str
    n_plain: int
    demean: str
    y: np.ndarray
    base: np.ndarray
    grid: np.ndarray
    positions: np.ndarray
    yy: float
    base_y: np.ndarray
    base_gram: np.ndarray
    split_y: np.ndarray
    split_base: np.ndarray
    split_gram: np.ndarray
    dof: int
    n_units: int
    n_periods: int
    y_raw_sd: float
    data_hash: str
    panel: SortedPanel = field(repr=False)
    levels: PanelArrays | None = field(default=None, repr=False)

    @property
    def n_rows(self) -> int:
        return int(self.y.size)

    @property
    def n_fixed(self) -> int:
        return len(self.fixed_names)

    @property
    def n_regime(self) -> int:
        return len(self.regime_names)

    @property
    def n_candidates(self) -> int:
        return int(self.grid.size)

    def split_columns(self) -> np.ndarray:
        """Dense transformed split columns C(g) for every candidate: (m, K, k_r)."""
        columns = self.panel.split_columns(self.grid)
        return columns.reshape(self.n_rows, self.n_candidates, self.n_regime)

    def unit_counts(self) -> np.ndarray:
        """Number of each unit's observations with q < g for every candidate: (n, K).

        A unit's transformed split column C(g) depends on g only through this count (the
        observations below g are the count lowest of the unit's q values).
        """
        below = self.panel.q[:, :, None] < self.grid[None, None, :]
        return np.ascontiguousarray(below.sum(axis=1), dtype=np.int64)

    def term_names(self, k: int) -> list[str]:
        """Slope names as the frequentist ``tidy`` prints them: fixed, then regime slopes."""
        regimes = [f"{name}_regime{j + 1}" for j in range(k + 1) for name in self.regime_names]
        return list(self.fixed_names) + regimes


def prepare_threshold_data(
    data: pd.DataFrame,
    *,
    y: str,
    regime: str | Sequence[str],
    threshold: str,
    fixed: Sequence[str] = (),
    unit: str,
    period: str,
    demean: str = "hansen",
    time: bool = False,
    grid_size: int = 400,
    trim: float = 0.01,
) -> ThresholdData:
    """Validate a balanced panel, transform it and compute every candidate's statistics.

    The candidate grid is ``hansen_grid(q, trim, grid_size)`` without repeated values.

    Raises
    ------
    ValueError
        Naming the column or rows: missing columns, non-finite values, repeated or missing
        (unit, period) pairs, an unknown ``demean``.
    """
    if demean not in DEMEAN_CONVENTIONS:
        raise ValueError(f"demean must be one of {DEMEAN_CONVENTIONS}, got {demean!r}")
    regime = [regime] if isinstance(regime, str) else list(regime)
    fixed = list(fixed)
    arrays, fixed_names, _ = panel_arrays(data, y, regime, threshold, fixed, unit, period, time)
    panel = SortedPanel(arrays.regime, arrays.q, demean)
    transformed_y = panel.transform(arrays.y)
    base = np.concatenate([panel.transform(arrays.fixed), panel.transform(arrays.regime)], axis=1)
    grid = np.unique(hansen_grid(arrays.q, trim, grid_size))
    positions = panel.positions(grid)
    split_y = panel.cross_prefix(transformed_y)[positions][:, :, 0]
    split_base = panel.cross_prefix(base)[positions]
    digest = hashlib.sha256()
    digest.update(json.dumps([y, regime, threshold, fixed, unit, period, demean, time]).encode())
    for values in (arrays.y, arrays.fixed, arrays.regime, arrays.q):
        digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return ThresholdData(
        outcome=y,
        fixed_names=tuple(fixed_names),
        regime_names=tuple(regime),
        threshold_name=threshold,
        n_plain=len(fixed),
        demean=demean,
        y=transformed_y,
        base=base,
        grid=grid,
        positions=positions,
        yy=float(transformed_y @ transformed_y),
        base_y=base.T @ transformed_y,
        base_gram=base.T @ base,
        split_y=split_y,
        split_base=split_base,
        split_gram=pair_gram(panel, grid),
        dof=arrays.n_units * (arrays.n_periods - 1),
        n_units=arrays.n_units,
        n_periods=arrays.n_periods,
        y_raw_sd=float(np.std(arrays.y, ddof=1)),
        data_hash=digest.hexdigest(),
        panel=panel,
        levels=arrays,
    )


def pair_gram(panel: SortedPanel, grid: np.ndarray) -> np.ndarray:
    """G(g, h) = C(g)'C(h) for every pair of candidates: (K, K, k_r, k_r).

    With A0 = W0'W0 = I - V V' (the within map removes a rank-r subspace per unit),
    G(g, h) = sum_{q < min(g, h)} x x' - sum_i U_i(g)' U_i(h), U_i(g) = V' (x_i 1[q_i < g]).
    """
    gram = panel.within.T @ panel.within
    values, vectors = np.linalg.eigh(np.eye(panel.n_periods) - gram)
    keep = values > 1e-10
    removed = vectors[:, keep] * np.sqrt(values[keep])                    # (T, r)
    below = panel.q[:, :, None] < grid[None, None, :]                      # (n, T, K)
    projected = np.einsum("tl,ntc,ntk->nlkc", removed, panel.regime, below, optimize=True)
    n_candidates, n_regime = grid.size, panel.n_regime
    flat = projected.reshape(-1, n_candidates * n_regime)
    low_rank = (flat.T @ flat).reshape(n_candidates, n_regime, n_candidates, n_regime)
    outer = panel.regime_sorted[:, :, None] * panel.regime_sorted[:, None, :]
    prefix = np.zeros((panel.n_obs + 1, n_regime, n_regime))
    np.cumsum(outer, axis=0, out=prefix[1:])
    positions = panel.positions(grid)
    diagonal = prefix[np.minimum(positions[:, None], positions[None, :])]  # (K, K, kr, kr)
    return diagonal - low_rank.transpose(0, 2, 1, 3)


# --------------------------------------------------------------------------------------------
# Changepoint prior over the grid
# --------------------------------------------------------------------------------------------


def threshold_log_prior(
    grid: np.ndarray,
    k: int,
    prior: str | np.ndarray = "uniform",
    min_gap: Sequence[int] | int = 1,
) -> np.ndarray:
    """Log prior of every ordered configuration of k grid indices: array of shape (K,)*k.

    p(j_1, ..., j_k) ∝ prod_r w_{j_r} on j_1 < ... < j_k with j_{r+1} - j_r >= min_gap[r],
    zero elsewhere (stored as a large negative number). ``prior``: ``"uniform"`` (w = 1),
    ``"uniform_value"`` (w = width of the grid cell of each candidate) or an array of weights.

    Raises
    ------
    ValueError
        Unknown prior name, weights of the wrong length or negative, or no admissible
        configuration.
    """
    n_candidates = grid.size
    if k == 0:
        return np.zeros(())
    if isinstance(prior, str):
        if prior == "uniform":
            weights = np.ones(n_candidates)
        elif prior == "uniform_value":
            edges = np.concatenate([[grid[0]], (grid[1:] + grid[:-1]) / 2.0, [grid[-1]]])
            weights = np.diff(edges)
        else:
            raise ValueError(f"threshold prior must be one of {THRESHOLD_PRIORS} or an array of "
                             f"weights, got {prior!r}")
    else:
        weights = np.asarray(prior, dtype=float)
        if weights.shape != (n_candidates,) or np.any(weights < 0) or not np.all(
                np.isfinite(weights)):
            raise ValueError(f"threshold prior weights must be {n_candidates} non-negative "
                             f"finite numbers (one per candidate), got shape {weights.shape}")
    gaps = [min_gap] * max(k - 1, 0) if np.isscalar(min_gap) else list(min_gap)
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    total = np.zeros((n_candidates,) * k)
    admissible = np.ones((n_candidates,) * k, dtype=bool)
    index = np.arange(n_candidates)
    for r in range(k):
        total = total + _along(log_w, r, k)
        if r:
            step = _along(index, r, k) - _along(index, r - 1, k)
            admissible &= step >= max(int(gaps[r - 1]), 1)
    admissible &= np.isfinite(total)
    if not admissible.any():
        raise ValueError(f"no admissible configuration of {k} thresholds on {n_candidates} "
                         f"candidates with gaps {gaps}; lower the trimming or min_gap")
    total = np.where(admissible, total, -np.inf)
    total = total - logsumexp(total)
    return np.where(admissible, total, IMPOSSIBLE)


def _along(vector, axis: int, k: int):
    """View a (K,) vector along ``axis`` of a k-dimensional array (numpy or PyTensor)."""
    index = tuple(slice(None) if r == axis else None for r in range(k))
    return vector[index]


def admissible_configs(log_prior_cfg: np.ndarray) -> np.ndarray:
    """Index tuples (M, k) of the configurations with positive prior mass."""
    if log_prior_cfg.ndim == 0:
        return np.zeros((1, 0), dtype=int)
    return np.argwhere(log_prior_cfg > IMPOSSIBLE / 2)

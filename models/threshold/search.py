"""Exact grid search for fixed-effects panel threshold models (Hansen 1999).

Model, for unit i and period t,

    y_it = mu_i + F_it' beta + x_it' delta_1 I(q_it < g_1) + ... + x_it' delta_k I(q_it < g_k)
           + x_it' theta + e_it,

which spans the same column space as the regime-split form x_it' theta_j I(regime j). The unit
effects mu_i are removed by a per-unit linear map ``W0`` (a ``T_kept x T`` matrix applied to each
unit's column of periods): demeaning, and for Hansen's convention the dropping of one demeaned row.

For a new candidate threshold g the added column is C(g) = W (x * I(q < g)). With the fixed part
F (every other regressor, already transformed) partialled out, Frisch-Waugh gives

    S(g) = S_F - b(g)' A(g)^{-1} b(g),   b(g) = C(g)' M_F y,
    A(g) = C(g)' C(g) - (C(g)' Q_F)(Q_F' C(g)),

with Q_F an orthonormal basis of F. Every piece is a sum over the observations with q < g:

* C(g)' v = sum_{q_it < g} x_it (W' v)_it for any transformed vector v (the adjoint W' maps it
  back to the panel's periods), a cumulative sum over the observations sorted by q;
* C(g)' C(g) = sum_i sum_{s,t in unit i, q < g} x_is A0_st x_it' with A0 = W0' W0. Adding one
  observation (i, t) to the low regime adds A0_tt x_it x_it' + x_it r' + r x_it', where
  r = sum_s A0_ts x_is over unit i's observations already added, so it too is a cumulative sum
  over the sorted observations.

Hence one sort and a few cumulative sums give the exact S(g) for every candidate; only small
k x k solves remain, batched over candidates (and over bootstrap samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEMEAN_CONVENTIONS = ("hansen", "all")


def within_matrix(n_periods: int, demean: str) -> np.ndarray:
    """Per-unit fixed-effect removal map ``W0`` (rows kept x periods).

    Parameters
    ----------
    n_periods
        T, the number of periods of every unit (the panel is balanced).
    demean
        ``"all"``: subtract the unit mean and keep all T rows (as Stata's ``xthreg``), so
        ``W0 = I_T - 11'/T``. ``"hansen"``: subtract the unit mean and then drop the last
        period's demeaned row, as Hansen's program does (``yfm[, 1:(tt-1)]``; the T demeaned
        errors of a unit sum to zero, so one row is redundant): ``W0`` is ``I_T - 11'/T``
        without its last row. Dropping the first row instead does not reproduce his tables.

    Returns
    -------
    numpy.ndarray
        ``(T, T)`` for ``"all"``, ``(T-1, T)`` for ``"hansen"``.
    """
    if demean not in DEMEAN_CONVENTIONS:
        raise ValueError(f"demean must be one of {DEMEAN_CONVENTIONS}, got {demean!r}")
    if n_periods < 2:
        raise ValueError(f"the within transformation needs at least 2 periods, got {n_periods}")
    centre = np.eye(n_periods) - 1.0 / n_periods
    return centre if demean == "all" else centre[:-1]


def hansen_grid(values: np.ndarray, trim: float, grid_size: int = 400) -> np.ndarray:
    """Candidate thresholds exactly as Hansen's program draws them.

    With ``dd`` the sorted unique values of the threshold variable, ``qn = grid_size`` and
    trimming t, the points s_k = t + k/qn for k = 0, ..., qn - 2 round(qn t) give the candidates
    dd[floor(s_k * len(dd))] (1-based indexing, so index floor(s_k len(dd)) - 1 here).

    Parameters
    ----------
    values
        All observations of the threshold variable (before any row is dropped).
    trim
        Fraction trimmed from each end, in [0, 0.5).
    grid_size
        qn, the number of quantile steps over the whole range.

    Returns
    -------
    numpy.ndarray
        The candidates in increasing order (duplicates kept, as in Hansen's program).
    """
    if not 0.0 <= trim < 0.5:
        raise ValueError(f"trim must lie in [0, 0.5), got {trim}")
    if grid_size < 1:
        raise ValueError(f"grid_size must be a positive integer, got {grid_size}")
    support = np.unique(np.asarray(values, dtype=float))
    n_trimmed = int(round(grid_size * trim))
    n_points = grid_size - 2 * n_trimmed + 1
    steps = trim + np.arange(n_points) * (1.0 / grid_size)
    one_based = np.floor(steps * len(support)).astype(int)
    return support[np.clip(one_based, 1, len(support)) - 1]


def search_candidates(grid: np.ndarray, existing, half_width: int) -> np.ndarray:
    """Grid points a search for one more threshold may visit, as in Hansen's program.

    With nn_j the number of grid points below the existing threshold r_j, the program drops the
    grid positions i (1-based) with nn_j - w <= i < nn_j + w, w = ``half_width`` (his
    ``qn * trim``), so a new threshold cannot sit within w grid steps of an old one. The
    program keeps a point lying in two such windows at once (it tests "in exactly one"); here a
    point in any window is dropped, which differs only when two thresholds are within 2w steps.

    Parameters
    ----------
    grid
        The full candidate grid (increasing), from :func:`hansen_grid`.
    existing
        Thresholds already in the model.
    half_width
        w, in grid steps.

    Returns
    -------
    numpy.ndarray
        The candidates left to search, in increasing order.
    """
    existing = np.atleast_1d(np.asarray(existing, dtype=float))
    if existing.size == 0:
        return grid
    below = np.sum(grid[:, None] < existing[None, :], axis=0)
    position = np.arange(1, grid.size + 1)[:, None]
    near = (position >= below - half_width) & (position < below + half_width)
    return grid[~near.any(axis=1)]


@dataclass(frozen=True)
class PanelArrays:
    """A balanced panel as arrays indexed (unit, period[, column]).

    ``y`` is (n, T); ``fixed`` (n, T, k_f) holds the regime-independent regressors; ``regime``
    (n, T, k_r) the regressors whose slopes switch; ``q`` (n, T) the threshold variable.
    """

    y: np.ndarray
    fixed: np.ndarray
    regime: np.ndarray
    q: np.ndarray

    @property
    def n_units(self) -> int:
        return self.y.shape[0]

    @property
    def n_periods(self) -> int:
        return self.y.shape[1]


class SortedPanel:
    """The panel sorted by the threshold variable, with its fixed-effect map.

    Holds what every search on this panel shares: the sort order, the map ``W0`` and the
    cumulative sums that give C(g)'C(g) for every g.
    """

    def __init__(self, regime: np.ndarray, q: np.ndarray, demean: str):
        n_units, n_periods, n_regime = regime.shape
        self.n_units, self.n_periods, self.n_regime = n_units, n_periods, n_regime
        self.demean = demean
        self.within = within_matrix(n_periods, demean)
        self.rows_per_unit = self.within.shape[0]
        self.regime = regime
        self.q = q
        flat_q = q.ravel()
        # A stable sort breaks ties by (unit, period); the per-unit order below is read off the
        # same global ranks so both cumulative sums add observations in one consistent order.
        self.order = np.argsort(flat_q, kind="stable")
        self.q_sorted = flat_q[self.order]
        self.regime_sorted = regime.reshape(-1, n_regime)[self.order]
        rank = np.empty(flat_q.size, dtype=np.int64)
        rank[self.order] = np.arange(flat_q.size)
        self._unit_order = np.argsort(rank.reshape(n_units, n_periods), axis=1)
        self._unit_rank = np.take_along_axis(rank.reshape(n_units, n_periods),
                                             self._unit_order, axis=1)
        self.gram_prefix = self._gram_prefix()

    @property
    def n_obs(self) -> int:
        return self.n_units * self.n_periods

    def transform(self, panel_values: np.ndarray) -> np.ndarray:
        """Apply ``W0`` unit by unit: (n, T[, k]) -> (n * T_kept[, k])."""
        out = np.einsum("st,nt...->ns...", self.within, panel_values)
        return out.reshape((self.n_units * self.rows_per_unit,) + panel_values.shape[2:])

    def adjoint(self, transformed: np.ndarray) -> np.ndarray:
        """Apply ``W0'`` unit by unit: (n * T_kept[, m]) -> (n, T[, m])."""
        shaped = transformed.reshape((self.n_units, self.rows_per_unit) + transformed.shape[1:])
        return np.einsum("st,ns...->nt...", self.within, shaped)

    def positions(self, thresholds: np.ndarray) -> np.ndarray:
        """Number of observations with q < g for each g (prefix length in sorted order)."""
        return np.searchsorted(self.q_sorted, np.asarray(thresholds, dtype=float), side="left")

    def split_columns(self, thresholds) -> np.ndarray:
        """Transformed columns W (x * I(q < g)) for each g, stacked: (n T_kept, k_r * len(g))."""
        columns = [self.transform(self.regime * (self.q < g)[:, :, None]) for g in thresholds]
        if not columns:
            return np.empty((self.n_units * self.rows_per_unit, 0))
        return np.concatenate(columns, axis=1)

    def _gram_prefix(self) -> np.ndarray:
        """Cumulative C'C over the sorted observations: (n_obs + 1, k_r, k_r)."""
        gram = self.within.T @ self.within
        order = self._unit_order
        pair = gram[order[:, :, None], order[:, None, :]]          # (n, T, T) in q order
        earlier = np.tril(np.ones((self.n_periods, self.n_periods)), k=-1)
        x_sorted = np.take_along_axis(self.regime, order[:, :, None], axis=1)
        running = np.einsum("nts,nsk->ntk", pair * earlier, x_sorted)
        own = np.einsum("ntt->nt", pair)
        increment = (own[:, :, None, None] * x_sorted[:, :, :, None] * x_sorted[:, :, None, :]
                     + x_sorted[:, :, :, None] * running[:, :, None, :]
                     + running[:, :, :, None] * x_sorted[:, :, None, :])
        flat = np.empty((self.n_obs, self.n_regime, self.n_regime))
        flat[self._unit_rank.ravel()] = increment.reshape(-1, self.n_regime, self.n_regime)
        return _prefix(flat)

    def cross_prefix(self, transformed: np.ndarray) -> np.ndarray:
        """Cumulative C(g)' v over the sorted observations: (n_obs + 1, k_r, m)."""
        if transformed.ndim == 1:
            transformed = transformed[:, None]
        back = self.adjoint(transformed).reshape(self.n_obs, -1)[self.order]  # (N, m) sorted
        return _prefix(self.regime_sorted[:, :, None] * back[:, None, :])

    def cross_at(self, transformed: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """C(g)' v for every candidate position and every column of v: (K, k_r, m)."""
        return self.cross_prefix(transformed)[positions]


def _prefix(values: np.ndarray) -> np.ndarray:
    """Cumulative sums along the first axis with a leading zero slice."""
    out = np.zeros((values.shape[0] + 1,) + values.shape[1:])
    np.cumsum(values, axis=0, out=out[1:])
    return out


class FixedBasis:
    """Orthonormal basis Q_0 of the regressors in every model, with its cumulative C(g)'Q_0.

    Computed once per panel; each search only orthogonalises its few split columns against it.
    """

    def __init__(self, panel: SortedPanel, base_design: np.ndarray):
        self.basis = _orthonormal(base_design, "the regime-independent and regime regressors")
        self.cross_prefix = panel.cross_prefix(self.basis)

    def residualise(self, transformed: np.ndarray) -> np.ndarray:
        return transformed - self.basis @ (self.basis.T @ transformed)


def _orthonormal(columns: np.ndarray, what: str) -> np.ndarray:
    """Orthonormal basis of ``columns``; refuses a (numerically) rank-deficient set."""
    basis, upper = np.linalg.qr(columns)
    scale = np.linalg.norm(columns, axis=0)
    diag = np.abs(np.diag(upper))
    if diag.size and np.any(diag <= 1e-10 * np.maximum(scale, np.finfo(float).tiny)):
        raise ValueError(f"{what} are collinear after the within transformation (a regressor "
                         "constant within units, duplicated, or a regime with no observation)")
    return basis


class CandidateSearch:
    """RSS of the model ``fixed + one more threshold`` for every candidate threshold.

    Parameters
    ----------
    sorted_panel
        The shared sorted panel.
    fixed
        Basis of the regressors in every model (regime-independent regressors and x).
    extra
        Transformed split columns of the thresholds already in the model (n T_kept, j); with
        ``fixed`` they make F.
    candidates
        Candidate thresholds.
    existing
        Thresholds already in F; a candidate that reproduces one of their splits (or splits
        off no observation) adds nothing and gets the RSS of F.
    """

    def __init__(self, sorted_panel: SortedPanel, fixed: FixedBasis, extra: np.ndarray,
                 candidates: np.ndarray, existing=()):
        self.panel = sorted_panel
        self.fixed = fixed
        self.candidates = np.asarray(candidates, dtype=float)
        positions = sorted_panel.positions(self.candidates)
        self.positions = positions
        cross_basis = fixed.cross_prefix[positions]                      # (K, k_r, k_0)
        if extra.shape[1]:
            # Two Gram-Schmidt passes keep the extra directions orthogonal to Q_0 to rounding.
            extra = fixed.residualise(fixed.residualise(extra))
            self.extra_basis = _orthonormal(extra, "the split regime regressors")
            cross_basis = np.concatenate(
                [cross_basis, sorted_panel.cross_at(self.extra_basis, positions)], axis=2)
        else:
            self.extra_basis = extra
        gram = sorted_panel.gram_prefix[positions]
        partialled = gram - np.einsum("kif,kjf->kij", cross_basis, cross_basis)
        taken = sorted_panel.positions(np.asarray(existing, dtype=float))
        degenerate = ((positions == 0) | (positions == sorted_panel.n_obs)
                      | np.isin(positions, taken))
        scale = np.maximum(np.einsum("kii->k", gram), np.finfo(float).tiny)
        degenerate |= np.linalg.eigvalsh(partialled)[:, 0] <= 1e-10 * scale
        self.degenerate = degenerate
        eye = np.eye(sorted_panel.n_regime)
        self.inverse = np.linalg.inv(np.where(degenerate[:, None, None], eye, partialled))

    def residualise(self, transformed_y: np.ndarray, fixed_done: bool = False) -> np.ndarray:
        """M_F y for one vector (m,) or many (m, B); ``fixed_done``: y is already M_0 y."""
        out = transformed_y if fixed_done else self.fixed.residualise(transformed_y)
        if self.extra_basis.shape[1]:
            out = out - self.extra_basis @ (self.extra_basis.T @ out)
        return out

    def reductions(self, residuals: np.ndarray) -> np.ndarray:
        """S_F - S(g) = b' A^{-1} b for every candidate: (K,) or (K, B)."""
        single = residuals.ndim == 1
        columns = residuals[:, None] if single else residuals
        # Bound the (n_obs, k_r, chunk) cumulative-sum buffer for large panels.
        chunk = max(1, int(4e6 // (self.panel.n_obs * self.panel.n_regime)))
        drop = np.empty((self.positions.size, columns.shape[1]))
        for start in range(0, columns.shape[1], chunk):
            block = columns[:, start:start + chunk]
            b = self.panel.cross_at(block, self.positions)               # (K, k_r, chunk)
            drop[:, start:start + chunk] = np.einsum("kib,kij,kjb->kb", b, self.inverse, b)
        drop[self.degenerate] = 0.0
        return drop[:, 0] if single else drop

    def rss(self, transformed_y: np.ndarray) -> tuple[float, np.ndarray]:
        """RSS of F alone and the RSS for every candidate, for one transformed outcome."""
        residuals = self.residualise(transformed_y)
        base = float(residuals @ residuals)
        return base, base - self.reductions(residuals)


@dataclass(frozen=True)
class StageSearch:
    """One step of the sequential search: the RSS for each candidate given ``existing``.

    ``rss_null`` is the RSS with the existing thresholds only; ``estimate`` the first
    minimiser of ``rss`` and ``rss_min`` its RSS.
    """

    existing: tuple[float, ...]
    candidates: np.ndarray
    rss: np.ndarray
    rss_null: float

    @property
    def best(self) -> int:
        return int(np.argmin(self.rss))

    @property
    def estimate(self) -> float:
        return float(self.candidates[self.best])

    @property
    def rss_min(self) -> float:
        return float(self.rss[self.best])


class ThresholdSearcher:
    """Sequential threshold searches on one panel, sharing the sort and cached designs.

    Parameters
    ----------
    panel
        The sorted panel.
    base_design
        Transformed regressors present in every model: regime-independent regressors (and
        period dummies) followed by the regime regressors x themselves.
    grid
        Hansen's candidate grid (:func:`hansen_grid` with the first trimming fraction).
    """

    def __init__(self, panel: SortedPanel, base_design: np.ndarray, grid: np.ndarray):
        self.panel = panel
        self.base_design = base_design
        self.fixed = FixedBasis(panel, base_design)
        self.grid = grid
        self._cache: dict[tuple, CandidateSearch] = {}

    def design(self, thresholds) -> np.ndarray:
        """Transformed design with the split columns of ``thresholds`` appended."""
        splits = self.panel.split_columns(sorted(thresholds))
        return np.concatenate([self.base_design, splits], axis=1)

    def searcher(self, existing, half_width: int) -> CandidateSearch:
        """The (cached) candidate search for one more threshold beside ``existing``."""
        existing = tuple(sorted(float(g) for g in existing))
        key = (existing, half_width if existing else 0)
        if key not in self._cache:
            candidates = search_candidates(self.grid, existing, half_width)
            if candidates.size == 0:
                raise ValueError("no candidate threshold is left after excluding the "
                                 f"neighbourhoods of {existing}; lower the trimming")
            extra = self.panel.split_columns(existing)
            self._cache[key] = CandidateSearch(self.panel, self.fixed, extra, candidates,
                                               existing)
        return self._cache[key]

    def search(self, transformed_y: np.ndarray, existing, half_width: int) -> StageSearch:
        """RSS over the candidates for one more threshold, given ``existing`` thresholds."""
        searcher = self.searcher(existing, half_width)
        base, rss = searcher.rss(transformed_y)
        return StageSearch(tuple(float(g) for g in existing), searcher.candidates, rss, base)

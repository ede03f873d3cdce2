"""Bayesian panel threshold regression with the thresholds marginalised exactly over a grid.

Model
-----
For unit i, period t and k = 0, 1, 2 or 3 thresholds g_1 < ... < g_k,

    y_it = mu_i + F_it' beta + sum_{r=1}^{k+1} x_it' delta_r 1[g_{r-1} <= q_it < g_r] + e_it,
    e_it ~ N(0, sigma^2),    g_0 = -inf, g_{k+1} = +inf,

with F the regime-independent regressors (and period dummies, first period dropped, when
``time=True``), x the regressors whose slopes switch, q the threshold variable. The regime
indicator uses the strict inequality q < g of Hansen's program.

Unit effects: the within transformation
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The unit effects mu_i are removed exactly as in the frequentist estimator
(:func:`models.threshold.fit_panel_threshold`): every unit's column of periods is mapped by
``W0`` (:func:`models.threshold_search.within_matrix`), ``demean="hansen"`` (demean and drop the
last demeaned row, n(T-1) rows, Hansen's program) or ``"all"`` (keep all nT demeaned rows). The
model is the Gaussian likelihood of the m transformed rows with the degrees of freedom of the
within regression,

    log p(y~ | theta, gamma, sigma) = -(n(T-1)/2) log(2 pi sigma^2) - S(theta, gamma) / (2 sigma^2),

S the residual sum of squares over the transformed rows. For ``"all"`` this is the exact
likelihood of the within-transformed data (the flat-prior integrated likelihood of the unit
effects: the demeaned data live in an n(T-1)-dimensional subspace on which their density is
spherical). For ``"hansen"`` it is Hansen's least-squares criterion read as a likelihood (the
kept rows are treated as independent), so the posterior mode of gamma is his estimate. Either
way, at each gamma the maximiser over theta is the frequentist fit and the profile of the
likelihood over gamma is Hansen's likelihood-ratio curve, LR(g) = (S(g) - S(g_hat)) / sigma^2.
Unit effects are not sampled: with a flat prior they integrate out exactly to the above.

Changepoint prior
~~~~~~~~~~~~~~~~~
The thresholds live on the frequentist candidate grid: Hansen's quantile grid of the threshold
variable (:func:`models.threshold_search.hansen_grid`, ``grid_size`` quantile steps, the first
trimming fraction cut from both ends), duplicate values removed (a repeated value is the same
model and would only double its prior weight). The prior over ordered configurations
j_1 < ... < j_k of grid indices is

* ``"uniform"`` (default): uniform over the grid points, i.e. uniform over the quantiles of q,
  on the configurations whose consecutive indices are at least ``min_gap`` grid steps apart
  (default ``round(grid_size * trim[r])``, the neighbourhood Hansen's sequential search
  excludes around a threshold already found);
* ``"uniform_value"``: uniform in the value of q (each grid point weighted by the width of its
  cell), with the same ordering and gap rule;
* an array of non-negative weights, one per grid point (the product over the thresholds, with
  the same ordering and gap rule).

Grid sizes: 400 quantile steps (Hansen's, 393 candidates at 1% trimming) for one and two
thresholds, 60 steps for three (a 60^3/6 = 36,000-configuration triple grid instead of
10 million); ``grid_size`` overrides.

Exact marginalisation and its cost
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Write the regime-split slopes cumulatively, x' delta_{k+1} + sum_r x' d_r 1[q < g_r] with
d_r = delta_r - delta_{r+1}. With B = W[F, x] (every model holds these columns), theta_0 =
(beta, delta_{k+1}) and C(g) = W(x 1[q < g]) the transformed split column,

    S = R_0 - 2 sum_r d_r' a(g_r) + sum_{r,s} d_r' G(g_r, g_s) d_s,
    R_0 = y'y - 2 theta_0' B'y + theta_0' B'B theta_0,   a(g) = C(g)'y - C(g)'B theta_0,

so the likelihood of every configuration follows from the sufficient statistics y'y, B'y,
B'B, C(g)'y, C(g)'B for each candidate g and G(g, h) = C(g)'C(h) for each pair.
C(g)'v = sum_{q_it < g} x_it (W'v)_it is a cumulative sum over the observations sorted by q
(one pass for all candidates, :class:`models.threshold_search.SortedPanel`); the pair Gram is
G(g, h) = sum_{q < min(g, h)} x x' - U(g)'U(h), where W0'W0 = I - V V' (V has rank 1 for
``"all"``, 2 for ``"hansen"``) and U(g)_i = V' x_i 1[q_i < g] is a per-unit projection, so
all pairs cost one (n rank(V) x K) product. Inside the PyMC model the log density is the
log-sum-exp over the admissible configurations of log prior + log likelihood, one custom Op
(``ConfigLogSumExp``, a numba kernel under nutpie) that makes one pass over the
configurations for the value and the gradient together: its cost does not depend on the
number of observations (Hansen's data: 393 configurations for one threshold, 75,855 for two).
Terms more than 46 log units below the largest (each < 1e-20 of it) are not exponentiated;
with fewer than 10^5 of them they move the sum by less than double-precision rounding.

Sampling and recovery of the thresholds
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The slopes and sigma are sampled by NUTS (nutpie). The slopes are sampled in whitened
coordinates z, theta = theta_hat + L z, with theta_hat and L L' = s^2 (Z'Z)^{-1} from the
least-squares fit at the profile-likelihood configuration (an affine map with a constant
Jacobian, so the model is unchanged; it removes the strong correlations between, e.g.,
Q, Q^2 and Q^3 that a diagonal mass matrix cannot). Their priors are added as a potential.
After sampling, each draw gets one exact draw of the thresholds from their conditional
p(gamma | theta, sigma, y) (a categorical over the configurations), so the joint draws are
draws of the full model; the Rao-Blackwellised posterior of each threshold over the grid, the
average of these conditionals, is stored too (group ``threshold_posterior``).

Stored for model checking
~~~~~~~~~~~~~~~~~~~~~~~~~
* ``log_likelihood`` (variable named after the outcome, one value per transformed row):
  marginalised over the thresholds for importance-sampling LOO,
  l_i(theta, sigma) = -log sum_gamma p(gamma | theta, sigma, y) / p(y_i | theta, gamma, sigma),
  whose posterior mean of exp(-l_i) is exactly 1 / p(y_i | y_-i), as for the full-parameter
  pointwise likelihood, but with gamma averaged out rather than drawn. The sum runs over the
  configurations holding all but 1e-6 of the conditional mass (at most 32, the cost being
  rows x configurations per draw); the mean retained mass is recorded in ``spec`` (Hansen's
  double-threshold data: about 0.95, the conditional of the pair being spread thinly).
  Each row's normalising constant carries the weight n(T-1)/m so that the rows sum to the
  likelihood above.
* ``log_prior``: the log prior density of every slope (``slope``), of ``sigma`` and of the
  sampled threshold configuration (``thresholds``).
* the log marginal likelihood log p(y~ | k) (:func:`log_marginal_likelihood`) when every slope
  prior is normal: the slopes integrate out in closed form given (gamma, sigma), sigma by
  48-point Gauss-Legendre quadrature in log sigma over +-12 posterior sd, and gamma by the sum
  over the grid (configurations whose profile likelihood is more than 60 log units below the
  best are dropped: their share is below e^-50).
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from models.convergence import convergence_messages
from models.priors import DataScales, PanelPriors
from models.threshold import _panel_arrays
from models.threshold_search import DEMEAN_CONVENTIONS, SortedPanel, hansen_grid

HDI_PROB = 0.94

MAX_THRESHOLDS = 3
DEFAULT_GRID_SIZE = {0: 400, 1: 400, 2: 400, 3: 60}
DEFAULT_TRIM = (0.01, 0.01, 0.05)
THRESHOLD_PRIORS = ("uniform", "uniform_value")
# Masked configurations get this log prior: finite, so no inf - inf appears in gradients.
_IMPOSSIBLE = -1e100
POINTWISE_MASS = 1.0 - 1e-6
POINTWISE_MAX_CONFIGS = 32
_NEGLIGIBLE = 46.0
_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------------------------
# Data: transformed panel and sufficient statistics for every candidate
# --------------------------------------------------------------------------------------------


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
    arrays, fixed_names, _ = _panel_arrays(data, y, regime, threshold, fixed, unit, period, time)
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
    return np.where(admissible, total, _IMPOSSIBLE)


def _along(vector, axis: int, k: int):
    """View a (K,) vector along ``axis`` of a k-dimensional array (numpy or PyTensor)."""
    index = tuple(slice(None) if r == axis else None for r in range(k))
    return vector[index]


# --------------------------------------------------------------------------------------------
# Log likelihood of every configuration, given the slopes and sigma
# --------------------------------------------------------------------------------------------


def _regime_blocks(theta, stats: ThresholdData, k: int):
    """Split regime-form slopes (beta, delta_1..delta_{k+1}) into theta_0 and d_1..d_k."""
    n_fixed, n_regime = stats.n_fixed, stats.n_regime
    deltas = [theta[..., n_fixed + r * n_regime:n_fixed + (r + 1) * n_regime]
              for r in range(k + 1)]
    return theta[..., :n_fixed], deltas


def config_loglik(theta: np.ndarray, sigma: np.ndarray, stats: ThresholdData, k: int
                  ) -> np.ndarray:
    """log p(y~ | theta, gamma, sigma) for every configuration, vectorised over draws.

    Parameters
    ----------
    theta
        (S, P) regime-form slopes (fixed slopes, then delta_1 .. delta_{k+1}).
    sigma
        (S,) residual sd.

    Returns
    -------
    numpy.ndarray
        (S,) + (K,)*k.
    """
    theta = np.atleast_2d(theta)
    sigma = np.atleast_1d(sigma)
    beta, deltas = _regime_blocks(theta, stats, k)
    theta0 = np.concatenate([beta, deltas[-1]], axis=1)
    r0 = (stats.yy - 2.0 * theta0 @ stats.base_y
          + np.einsum("sp,pq,sq->s", theta0, stats.base_gram, theta0))
    neg_rss = np.broadcast_to(-r0.reshape((-1,) + (1,) * k), (theta.shape[0],) + (
        stats.n_candidates,) * k).copy()
    if k:
        a = stats.split_y[None] - np.einsum("kcp,sp->skc", stats.split_base, theta0)
        diagonal = np.einsum("kkcd->kcd", stats.split_gram)
        d = [deltas[r] - deltas[r + 1] for r in range(k)]
        for r in range(k):
            u = 2.0 * np.einsum("skc,sc->sk", a, d[r]) - np.einsum(
                "kcd,sc,sd->sk", diagonal, d[r], d[r])
            neg_rss += u[(slice(None),) + tuple(slice(None) if j == r else None
                                                 for j in range(k))]
            for s in range(r + 1, k):
                cross = np.einsum("jkcd,sc,sd->sjk", stats.split_gram, d[r], d[s])
                index = (slice(None),) + tuple(slice(None) if j in (r, s) else None
                                               for j in range(k))
                neg_rss -= 2.0 * cross[index]
    scale = sigma.reshape((-1,) + (1,) * k)
    return -0.5 * stats.dof * (_LOG_2PI + 2.0 * np.log(scale)) + neg_rss / (2.0 * scale**2)


def marginal_loglik_tensor(theta, sigma, stats: ThresholdData, k: int, log_prior_cfg,
                           data: dict | None = None):
    """PyTensor expression of log sum_gamma p(gamma) p(y~ | theta, gamma, sigma).

    The per-threshold terms u_r(j) = (2 d_r'a(g_j) - d_r'G(g_j, g_j) d_r) / (2 sigma^2) and the
    pair coefficients -d_r d_s' / sigma^2 are PyTensor expressions of size K; the sum over
    the admissible configurations is one :class:`ConfigLogSumExp` node (a single pass over the
    configurations for the value and one for the gradient, compiled by numba under nutpie).

    ``theta`` (P,) and ``sigma`` are tensors; ``data`` may hold shared variables replacing the
    statistics (keys ``yy``, ``base_y``, ``base_gram``, ``split_y``, ``split_base``) so that one
    compiled model serves many outcomes on the same covariates.
    """
    import pytensor.tensor as pt

    data = data or {}
    yy = data.get("yy", stats.yy)
    base_y = data.get("base_y", stats.base_y)
    base_gram = data.get("base_gram", stats.base_gram)
    beta, deltas = _regime_blocks(theta, stats, k)
    theta0 = pt.concatenate([beta, deltas[-1]])
    residual_ss = yy - 2.0 * pt.dot(theta0, base_y) + pt.dot(theta0, pt.dot(base_gram, theta0))
    scale = 2.0 * sigma**2
    constant = -0.5 * stats.dof * (_LOG_2PI + 2.0 * pt.log(sigma)) - residual_ss / scale
    if k == 0:
        return constant
    split_y = data.get("split_y", stats.split_y)
    split_base = data.get("split_base", stats.split_base)
    n_regime, n_base = stats.n_regime, stats.base.shape[1]
    # (K, kr) = C(g)'y - C(g)'B theta_0, written as a matrix-vector product
    a = split_y - pt.dot(split_base.reshape((-1, n_base)), theta0).reshape((-1, n_regime))
    diagonal = np.einsum("kkcd->kcd", stats.split_gram)                     # (K, kr, kr)
    d = [deltas[r] - deltas[r + 1] for r in range(k)]
    per_threshold = []
    for r in range(k):
        quad = sum(diagonal[:, c, e] * d[r][c] * d[r][e]
                   for c in range(n_regime) for e in range(n_regime))
        per_threshold.append((2.0 * pt.dot(a, d[r]) - quad) / scale)
    coefficients = []
    for r in range(k):
        row = []
        for s in range(k):
            if s > r:
                row.append(pt.stack([-2.0 * d[r][c] * d[s][e] / scale
                                     for c in range(n_regime) for e in range(n_regime)]))
            else:
                row.append(pt.zeros(n_regime * n_regime))
        coefficients.append(pt.stack(row))
    configs = np.ascontiguousarray(admissible_configs(log_prior_cfg).astype(np.int64))
    pair_gram = _pair_gram_by_entry(stats)
    config_prior = data.get("config_prior", log_prior_cfg[tuple(configs.T)])
    return constant + ConfigLogSumExp()(pt.stack(per_threshold), pt.stack(coefficients),
                                        pt.as_tensor(pair_gram), pt.as_tensor(configs),
                                        config_prior)


def _config_values(u, w, gram, configs, prior):
    """v_m = prior_m + sum_r u[r, j_mr] + sum_{r<s} sum_e w[r, s, e] G[e, j_mr, j_ms] (numpy)."""
    k = configs.shape[1]
    values = prior.astype(float).copy()
    for r in range(k):
        values += u[r, configs[:, r]]
        for s in range(r + 1, k):
            values += np.tensordot(w[r, s], gram[:, configs[:, r], configs[:, s]], axes=1)
    return values


def _config_lse_numpy(u, w, gram, configs, prior):
    """log-sum-exp of the configuration values and its gradient in u and w (numpy)."""
    values = _config_values(u, w, gram, configs, prior)
    total = logsumexp(values)
    weights = np.where(values > values.max() - _NEGLIGIBLE, np.exp(values - total), 0.0)
    k = configs.shape[1]
    grad_u = np.zeros_like(u)
    grad_w = np.zeros_like(w)
    for r in range(k):
        np.add.at(grad_u[r], configs[:, r], weights)
        for s in range(r + 1, k):
            grad_w[r, s] = gram[:, configs[:, r], configs[:, s]] @ weights
    return np.asarray(total), grad_u, grad_w


def _make_config_op():
    """The log-sum-exp over configurations as a PyTensor Op (value and gradient fused)."""
    import pytensor.tensor as pt
    from pytensor.gradient import grad_undefined
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class ConfigLogSumExpOp(Op):
        """log sum_m exp(v_m), v_m = prior_m + sum_r u[r, j_mr] + sum_{r<s} w[r,s]'G[:, j_mr, j_ms].

        Inputs: u (k, K), w (k, k, E), G (E, K, K), configurations (M, k) of grid indices,
        log prior (M,). Outputs: the value, and its gradients in u and in w (softmax-weighted
        sums, computed in the same pass; the Op's own gradient reads them off).
        """

        __props__ = ()

        def make_node(self, u, w, gram, configs, prior):
            inputs = [pt.as_tensor(v) for v in (u, w, gram, configs, prior)]
            return Apply(self, inputs, [pt.dscalar(), inputs[0].type(), inputs[1].type()])

        def perform(self, node, inputs, outputs):
            for slot, value in zip(outputs, _config_lse_numpy(*inputs)):
                slot[0] = value

        def grad(self, inputs, output_grads):
            _, grad_u, grad_w = self(*inputs)
            upstream = output_grads[0]
            return [upstream * grad_u, upstream * grad_w,
                    grad_undefined(self, 2, inputs[2]), grad_undefined(self, 3, inputs[3]),
                    grad_undefined(self, 4, inputs[4])]

    from pytensor.link.numba.dispatch.basic import (
        numba_njit,
        register_funcify_default_op_cache_key,
    )

    values_kernel = _numba_kernels()["values"]

    @register_funcify_default_op_cache_key(ConfigLogSumExpOp)
    def funcify(op, node, **kwargs):
        @numba_njit
        def config_lse(u, w, gram, configs, prior):
            values = values_kernel(u, w, gram, configs, prior)
            top = values.max()
            n_configs, k = configs.shape
            total = 0.0
            n_live = 0
            live = np.empty(n_configs, dtype=np.int64)
            for m in range(n_configs):
                # below top - 46 a term is < 1e-20 of the largest: M such terms change the sum
                # by less than double-precision rounding, so they are skipped (no exp).
                if values[m] > top - _NEGLIGIBLE:
                    values[m] = np.exp(values[m] - top)
                    total += values[m]
                    live[n_live] = m
                    n_live += 1
            grad_u = np.zeros_like(u)
            grad_w = np.zeros_like(w)
            n_pair = gram.shape[0]
            for position in range(n_live):
                m = live[position]
                weight = values[m] / total
                for r in range(k):
                    jr = configs[m, r]
                    grad_u[r, jr] += weight
                    for s in range(r + 1, k):
                        js = configs[m, s]
                        for e in range(n_pair):
                            grad_w[r, s, e] += weight * gram[e, jr, js]
            return np.asarray(top + np.log(total)), grad_u, grad_w

        return config_lse, 2

    return ConfigLogSumExpOp()


_KERNELS: dict[str, Any] = {}


def _numba_kernels() -> dict[str, Any]:
    """numba kernels shared by the Op and the post-processing (compiled on first use)."""
    if _KERNELS:
        return _KERNELS
    import numba

    @numba.njit(cache=False)
    def values(u, w, gram, configs, prior):
        n_configs, k = configs.shape
        n_pair = gram.shape[0]
        out = np.empty(n_configs)
        if k == 2 and n_pair == 1:
            # the common case (two thresholds, one regime regressor), without inner loops
            u0, u1, w01, g0 = u[0], u[1], w[0, 1, 0], gram[0]
            for m in range(n_configs):
                j0, j1 = configs[m, 0], configs[m, 1]
                out[m] = prior[m] + u0[j0] + u1[j1] + w01 * g0[j0, j1]
            return out
        for m in range(n_configs):
            value = prior[m]
            for r in range(k):
                jr = configs[m, r]
                value += u[r, jr]
                for s in range(r + 1, k):
                    js = configs[m, s]
                    for e in range(n_pair):
                        value += w[r, s, e] * gram[e, jr, js]
            out[m] = value
        return out

    @numba.njit(cache=False)
    def values_many(u, w, gram, configs, prior):
        out = np.empty((u.shape[0], configs.shape[0]))
        for s in range(u.shape[0]):
            out[s] = values(u[s], w[s], gram, configs, prior)
        return out

    @numba.njit(cache=False)
    def harmonic_pointwise(residual, columns, configs, weights, d, const, inv_two_var):
        # l_i = -log sum_c w_c exp(-loglik_ic), loglik_ic = const - e_ic^2 / (2 sigma^2)
        n_rows = residual.size
        n_keep, k = configs.shape
        n_regime = d.shape[1]
        out = np.empty(n_rows)
        terms = np.empty(n_keep)
        for i in range(n_rows):
            top = -np.inf
            for c in range(n_keep):
                fitted = 0.0
                for r in range(k):
                    for a in range(n_regime):
                        fitted += columns[i, configs[c, r], a] * d[r, a]
                e = residual[i] - fitted
                terms[c] = -(const - e * e * inv_two_var)
                if terms[c] > top:
                    top = terms[c]
            total = 0.0
            for c in range(n_keep):
                total += weights[c] * np.exp(terms[c] - top)
            out[i] = -(top + np.log(total))
        return out

    _KERNELS.update(values=values, values_many=values_many,
                    harmonic_pointwise=harmonic_pointwise)
    return _KERNELS


class _LazyOp:
    """Builds the Op on first use so that importing this module does not import PyTensor."""

    _op: Any = None

    def __call__(self, *args):
        if _LazyOp._op is None:
            _LazyOp._op = _make_config_op()
        return _LazyOp._op(*args)[0]


ConfigLogSumExp = _LazyOp


def config_terms(theta: np.ndarray, sigma: np.ndarray, stats: ThresholdData, k: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-draw inputs of the configuration sum: u (S, k, K), w (S, k, k, E) and the
    configuration-free part of the log likelihood (S,); numpy twin of the PyTensor graph."""
    theta = np.atleast_2d(theta)
    sigma = np.atleast_1d(sigma)
    beta, deltas = _regime_blocks(theta, stats, k)
    theta0 = np.concatenate([beta, deltas[-1]], axis=1)
    residual_ss = (stats.yy - 2.0 * theta0 @ stats.base_y
                   + np.einsum("sp,pq,sq->s", theta0, stats.base_gram, theta0))
    scale = 2.0 * sigma**2
    constant = -0.5 * stats.dof * (_LOG_2PI + 2.0 * np.log(sigma)) - residual_ss / scale
    n_regime = stats.n_regime
    u = np.zeros((theta.shape[0], k, stats.n_candidates))
    w = np.zeros((theta.shape[0], k, k, n_regime * n_regime))
    if k:
        a = stats.split_y[None] - np.einsum("kcp,sp->skc", stats.split_base, theta0)
        diagonal = np.einsum("kkcd->kcd", stats.split_gram)
        d = [deltas[r] - deltas[r + 1] for r in range(k)]
        for r in range(k):
            u[:, r] = (2.0 * np.einsum("skc,sc->sk", a, d[r])
                       - np.einsum("kcd,sc,sd->sk", diagonal, d[r], d[r])) / scale[:, None]
            for s in range(r + 1, k):
                w[:, r, s] = (-2.0 * d[r][:, :, None] * d[s][:, None, :]).reshape(
                    theta.shape[0], -1) / scale[:, None]
    return u, w, constant


def _pair_gram_by_entry(stats: ThresholdData) -> np.ndarray:
    """G as (kr * kr, K, K), entry e = (c, d) of the k_r x k_r blocks."""
    n_regime, n_candidates = stats.n_regime, stats.n_candidates
    return np.ascontiguousarray(stats.split_gram.transpose(2, 3, 0, 1).reshape(
        n_regime * n_regime, n_candidates, n_candidates))


# --------------------------------------------------------------------------------------------
# Configurations: least squares at every configuration (profile likelihood)
# --------------------------------------------------------------------------------------------


def admissible_configs(log_prior_cfg: np.ndarray) -> np.ndarray:
    """Index tuples (M, k) of the configurations with positive prior mass."""
    if log_prior_cfg.ndim == 0:
        return np.zeros((1, 0), dtype=int)
    return np.argwhere(log_prior_cfg > _IMPOSSIBLE / 2)


def regime_to_cumulative(stats: ThresholdData, k: int) -> np.ndarray:
    """Matrix M with theta_cum = M theta_reg.

    theta_reg = (beta, delta_1, ..., delta_{k+1}); theta_cum = (beta, delta_{k+1}, d_1..d_k),
    d_r = delta_r - delta_{r+1}: the coefficients of the columns [B, C(g_1), ..., C(g_k)].
    """
    n_fixed, n_regime = stats.n_fixed, stats.n_regime
    size = n_fixed + (k + 1) * n_regime
    matrix = np.zeros((size, size))
    matrix[:n_fixed, :n_fixed] = np.eye(n_fixed)
    eye = np.eye(n_regime)
    top = n_fixed + k * n_regime
    matrix[n_fixed:n_fixed + n_regime, top:top + n_regime] = eye
    for r in range(k):
        row = n_fixed + (r + 1) * n_regime
        col = n_fixed + r * n_regime
        matrix[row:row + n_regime, col:col + n_regime] = eye
        matrix[row:row + n_regime, col + n_regime:col + 2 * n_regime] = -eye
    return matrix


def config_normal_equations(stats: ThresholdData, configs: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Z'Z (M, P, P) and Z'y (M, P) in the regime form for each configuration."""
    k = configs.shape[1]
    n_regime, p0 = stats.n_regime, stats.base.shape[1]
    size = p0 + k * n_regime
    n_configs = configs.shape[0]
    gram = np.zeros((n_configs, size, size))
    rhs = np.zeros((n_configs, size))
    gram[:, :p0, :p0] = stats.base_gram
    rhs[:, :p0] = stats.base_y
    for r in range(k):
        rows = slice(p0 + r * n_regime, p0 + (r + 1) * n_regime)
        rhs[:, rows] = stats.split_y[configs[:, r]]
        cross = stats.split_base[configs[:, r]]                          # (M, kr, p0)
        gram[:, rows, :p0] = cross
        gram[:, :p0, rows] = cross.transpose(0, 2, 1)
        for s in range(k):
            cols = slice(p0 + s * n_regime, p0 + (s + 1) * n_regime)
            gram[:, rows, cols] = stats.split_gram[configs[:, r], configs[:, s]]
    mapping = regime_to_cumulative(stats, k)
    return mapping.T @ gram @ mapping, rhs @ mapping


def profile_fit(stats: ThresholdData, k: int, log_prior_cfg: np.ndarray) -> dict[str, Any]:
    """Least squares at every admissible configuration.

    Returns the configurations, their RSS and the best one by log prior + concentrated
    log likelihood -dof/2 log RSS, with its slopes and their covariance s^2 (Z'Z)^{-1}.
    """
    configs = admissible_configs(log_prior_cfg)
    gram, rhs = config_normal_equations(stats, configs)
    scale = np.sqrt(np.einsum("mii->mi", gram))
    scaled = gram / scale[:, :, None] / scale[:, None, :]
    try:
        solution = np.linalg.solve(scaled, (rhs / scale)[..., None])[..., 0] / scale
    except np.linalg.LinAlgError:
        solution = np.einsum("mij,mj->mi", np.linalg.pinv(scaled), rhs / scale) / scale
    rss = stats.yy - np.einsum("mp,mp->m", rhs, solution)
    rss = np.maximum(rss, 1e-300)
    prior = log_prior_cfg[tuple(configs.T)] if k else np.zeros(1)
    score = prior - 0.5 * stats.dof * np.log(rss)
    best = int(np.argmax(score))
    sigma2 = rss[best] / stats.dof
    covariance = sigma2 * np.linalg.inv(gram[best])
    return dict(configs=configs, rss=rss, score=score, gram=gram, rhs=rhs, best=best,
                theta=solution[best], covariance=covariance, sigma=math.sqrt(sigma2))


# --------------------------------------------------------------------------------------------
# Priors
# --------------------------------------------------------------------------------------------


def resolve_slope_priors(priors, stats: ThresholdData, k: int) -> PanelPriors:
    """Merge user priors with the data-scaled defaults of :mod:`models.priors`.

    Roles used: ``slope`` (per term, e.g. ``slope.CF_regime1``) and ``sigma``. The default
    slope prior is normal(0, 2.5 sd(y) / sd(transformed regressor)); the regime slopes use the
    sd of the transformed, unsplit regime regressor.
    """
    terms = stats.term_names(k)
    if priors is None:
        priors = PanelPriors()
    elif isinstance(priors, dict):
        priors = PanelPriors.from_mapping(priors)
    elif not isinstance(priors, PanelPriors):
        priors = PanelPriors().with_overrides(list(priors), source="cli")
    column_sd = stats.base.std(axis=0, ddof=1)
    fixed_sd = column_sd[:stats.n_fixed]
    regime_sd = column_sd[stats.n_fixed:]
    within_sd = list(fixed_sd) + [regime_sd[j % stats.n_regime]
                                  for j in range((k + 1) * stats.n_regime)]
    # Per-term slope priors may name terms of a model with more regimes than this one.
    known = set(terms)
    kept = tuple((t, p) for t, p in priors.slope_terms if t in known)
    priors = PanelPriors(**{**{role: getattr(priors, role) for role in (
        "intercept", "slope", "between", "sigma", "unit_sd", "year_sd", "nu", "alpha")},
        "slope_terms": kept, "between_terms": (), "sources": priors.sources})
    scales = DataScales(regressors=tuple(terms), y_mean=0.0, y_sd=stats.y_raw_sd,
                        within_sd=tuple(float(v) for v in within_sd),
                        between_sd=tuple(1.0 for _ in terms))
    return priors.resolve(scales)


def _prior_logp_tensor(prior, value):
    """log density of ``prior`` at ``value`` (a PyTensor expression); array parameters allowed."""
    import pymc as pm

    from models.priors import FAMILIES

    dist = getattr(pm, FAMILIES[prior.family].pymc_name).dist(**prior.kwargs)
    return pm.logp(dist, value)


def _slope_prior_tensor(priors: PanelPriors, terms: Sequence[str], slope):
    """Sum of the slope priors, one vectorised log density per prior family."""
    import pytensor.tensor as pt

    by_family: dict[str, list[int]] = {}
    term_priors = [priors.term_prior("slope", term) for term in terms]
    for j, prior in enumerate(term_priors):
        by_family.setdefault(prior.family, []).append(j)
    total = 0.0
    for family, members in by_family.items():
        names = [name for name, _ in term_priors[members[0]].params]
        params = {name: np.array([term_priors[j].kwargs[name] for j in members])
                  for name in names}
        logp = _prior_logp_vector(family, params, slope[np.array(members)])
        total = total + pt.sum(logp)
    return total


def _prior_logp_vector(family: str, params: dict[str, np.ndarray], value):
    import pymc as pm

    from models.priors import FAMILIES

    dist = getattr(pm, FAMILIES[family].pymc_name).dist(**params)
    return pm.logp(dist, value)


def _prior_logp_numpy(prior, values: np.ndarray) -> np.ndarray:
    """log density of ``prior`` at ``values`` (numpy, through scipy.stats)."""
    from scipy import stats as st

    p = prior.kwargs
    x = np.asarray(values, dtype=float)
    family = prior.family
    if family == "normal":
        return st.norm.logpdf(x, p["mu"], p["sigma"])
    if family == "studentt":
        return st.t.logpdf(x, p["nu"], p["mu"], p["sigma"])
    if family == "cauchy":
        return st.cauchy.logpdf(x, p["alpha"], p["beta"])
    if family == "uniform":
        return st.uniform.logpdf(x, p["lower"], p["upper"] - p["lower"])
    if family in ("flat", "halfflat"):
        return np.where((x >= 0) | (family == "flat"), 0.0, -np.inf)
    if family == "halfnormal":
        return st.halfnorm.logpdf(x, scale=p["sigma"])
    if family == "halfstudentt":
        return np.where(x >= 0, math.log(2.0) + st.t.logpdf(x, p["nu"], 0.0, p["sigma"]),
                        -np.inf)
    if family == "halfcauchy":
        return st.halfcauchy.logpdf(x, scale=p["beta"])
    if family == "exponential":
        return st.expon.logpdf(x, scale=1.0 / p["lam"])
    if family == "gamma":
        return st.gamma.logpdf(x, p["alpha"], scale=1.0 / p["beta"])
    if family == "inversegamma":
        return st.invgamma.logpdf(x, p["alpha"], scale=p["beta"])
    if family == "lognormal":
        return st.lognorm.logpdf(x, p["sigma"], scale=math.exp(p["mu"]))
    raise ValueError(f"no numpy log density for prior family {family!r}")


# --------------------------------------------------------------------------------------------
# PyMC model
# --------------------------------------------------------------------------------------------


def build_threshold_model(stats: ThresholdData, k: int, priors: PanelPriors,
                          log_prior_cfg: np.ndarray, centre: np.ndarray, chol: np.ndarray,
                          shared: bool = False):
    """The PyMC model: whitened slopes, sigma, and the exact marginal over the thresholds.

    slope = centre + chol @ slope_white (slope_white has a flat density, the priors of the
    slopes enter as the potential ``slope_prior``), sigma ~ priors.sigma, and the potential
    ``marginal_loglik`` = log sum_gamma p(gamma) p(y~ | slope, gamma, sigma).

    ``shared=True`` holds the statistics, centre and chol in ``pm.Data`` so that a compiled
    model can be re-used on other data of the same shapes (nutpie ``with_data``).
    """
    import pymc as pm
    import pytensor.tensor as pt

    terms = stats.term_names(k)
    with pm.Model(coords={"coef": terms}) as model:
        data: dict[str, Any] = {}
        if shared:
            for name, value in _shared_values(stats, log_prior_cfg, centre, chol, k).items():
                data[name] = pm.Data(name, value)
            centre_t, chol_t = data.pop("centre"), data.pop("chol")
        else:
            centre_t, chol_t = centre, chol
        white = pm.Flat("slope_white", dims="coef")
        slope = pm.Deterministic("slope", centre_t + pt.dot(chol_t, white), dims="coef")
        pm.Potential("slope_prior", _slope_prior_tensor(priors, terms, slope))
        sigma = priors.sigma.to_pymc("sigma")
        pm.Potential("marginal_loglik",
                     marginal_loglik_tensor(slope, sigma, stats, k, log_prior_cfg, data))
    return model


def _shared_values(stats: ThresholdData, log_prior_cfg, centre, chol, k) -> dict[str, Any]:
    values = {"yy": np.asarray(stats.yy), "base_y": stats.base_y, "base_gram": stats.base_gram,
              "centre": centre, "chol": chol}
    if k:
        values.update(split_y=stats.split_y, split_base=stats.split_base)
    return values


def _whitening(profile: dict[str, Any], inflate: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    covariance = profile["covariance"] * inflate
    return profile["theta"], np.linalg.cholesky(covariance)


def _sample_nutpie(model, draws: int, tune: int, chains: int, seed: int, progressbar: bool,
                   compiled=None) -> tuple[Any, dict[str, float], Any]:
    import nutpie

    times: dict[str, float] = {}
    start = _time.perf_counter()
    if compiled is None:
        compiled = nutpie.compile_pymc_model(model, backend="numba")
    times["compile_s"] = _time.perf_counter() - start
    start = _time.perf_counter()
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                          progress_bar=progressbar, save_warmup=False)
    times["sampling_s"] = _time.perf_counter() - start
    return idata, times, compiled


# --------------------------------------------------------------------------------------------
# After sampling: thresholds draw by draw, pointwise likelihood, log prior
# --------------------------------------------------------------------------------------------


def recover_thresholds(theta: np.ndarray, sigma: np.ndarray, stats: ThresholdData, k: int,
                       log_prior_cfg: np.ndarray, rng: np.random.Generator, chunk: int = 64
                       ) -> dict[str, np.ndarray]:
    """Draw gamma | theta, sigma, y for every draw and average the conditionals.

    Returns ``index`` (S, k) sampled grid indices, ``probability`` (k, K) the
    Rao-Blackwellised marginal posterior of each threshold over the grid, ``top`` (S, L)
    indices into ``configs`` (the admissible configurations, (M, k)) and ``top_weight``
    (S, L) their conditional probabilities: the smallest set holding ``POINTWISE_MASS`` of
    the conditional, at most ``POINTWISE_MAX_CONFIGS`` (-1 / 0 pad the rest).
    """
    n_draws = theta.shape[0]
    n_candidates = stats.n_candidates
    configs = admissible_configs(log_prior_cfg)
    index = np.zeros((n_draws, k), dtype=int)
    probability = np.zeros((k, n_candidates))
    limit = min(POINTWISE_MAX_CONFIGS, configs.shape[0])
    top = np.full((n_draws, limit), -1, dtype=np.int64)
    top_weight = np.zeros((n_draws, limit))
    if k == 0:
        return dict(index=index, probability=probability, top=top, top_weight=top_weight,
                    configs=configs)
    kernel = _numba_kernels()["values_many"]
    gram = _pair_gram_by_entry(stats)
    config_prior = np.ascontiguousarray(log_prior_cfg[tuple(configs.T)])
    configs_c = np.ascontiguousarray(configs.astype(np.int64))
    for start in range(0, n_draws, chunk):
        stop = min(start + chunk, n_draws)
        u, w, _ = config_terms(theta[start:stop], sigma[start:stop], stats, k)
        values = kernel(u, w, gram, configs_c, config_prior)
        values -= values.max(axis=1, keepdims=True)
        weights = np.exp(values)
        weights /= weights.sum(axis=1, keepdims=True)
        cumulative = np.cumsum(weights, axis=1)
        uniform = rng.random(stop - start)[:, None]
        picked = np.minimum((cumulative < uniform * cumulative[:, -1:]).sum(axis=1),
                            configs.shape[0] - 1)
        index[start:stop] = configs[picked]
        summed = weights.sum(axis=0)
        for r in range(k):
            probability[r] += np.bincount(configs[:, r], weights=summed, minlength=n_candidates)
        best = np.argpartition(-weights, limit - 1, axis=1)[:, :limit]
        best_weight = np.take_along_axis(weights, best, axis=1)
        order = np.argsort(-best_weight, axis=1)
        best = np.take_along_axis(best, order, axis=1)
        best_weight = np.take_along_axis(best_weight, order, axis=1)
        needed = (np.cumsum(best_weight, axis=1) - best_weight) < POINTWISE_MASS
        top[start:stop] = np.where(needed, best, -1)
        top_weight[start:stop] = np.where(needed, best_weight, 0.0)
    probability /= n_draws
    return dict(index=index, probability=probability, top=top, top_weight=top_weight,
                configs=configs)


def pointwise_loglik(theta: np.ndarray, sigma: np.ndarray, stats: ThresholdData, k: int,
                     recovered: dict[str, np.ndarray]) -> tuple[np.ndarray, float]:
    """l_i = -log sum_gamma w(gamma) / p(y_i | theta, gamma, sigma) per draw and row.

    w are the conditional probabilities of the configurations retained by
    :func:`recover_thresholds`, renormalised. Returns (S, m) and the mean retained
    conditional mass.
    """
    beta, deltas = _regime_blocks(theta, stats, k)
    theta0 = np.concatenate([beta, deltas[-1]], axis=1)
    weight_row = stats.dof / stats.n_rows
    residuals = stats.y[None, :] - theta0 @ stats.base.T                  # (S, m)
    const = -0.5 * weight_row * (_LOG_2PI + 2.0 * np.log(sigma))
    if k == 0:
        return const[:, None] - residuals**2 / (2.0 * sigma[:, None] ** 2), 1.0
    kernel = _numba_kernels()["harmonic_pointwise"]
    columns = np.ascontiguousarray(stats.split_columns())
    top, top_weight, configs = recovered["top"], recovered["top_weight"], recovered["configs"]
    out = np.empty((theta.shape[0], stats.n_rows))
    for s in range(theta.shape[0]):
        keep = top[s] >= 0
        weights = top_weight[s][keep] / top_weight[s][keep].sum()
        d = np.stack([deltas[r][s] - deltas[r + 1][s] for r in range(k)])
        out[s] = kernel(residuals[s], columns, np.ascontiguousarray(configs[top[s][keep]]),
                        weights, d, const[s], 1.0 / (2.0 * sigma[s] ** 2))
    return out, float(top_weight.sum(axis=1).mean())


# --------------------------------------------------------------------------------------------
# Log marginal likelihood
# --------------------------------------------------------------------------------------------


def log_marginal_likelihood(stats: ThresholdData, k: int, priors: PanelPriors,
                            log_prior_cfg: np.ndarray, profile: dict[str, Any] | None = None,
                            n_nodes: int = 48, width: float = 12.0, prune: float = 60.0
                            ) -> float:
    """log p(y~ | k threshold model), NaN unless every slope prior is normal.

    For each configuration and sigma, with theta ~ N(m0, V0) (independent normal priors),

        log p(y~ | gamma, sigma) = -dof/2 log(2 pi sigma^2) - y'y / (2 sigma^2)
            - 1/2 log|V0| - 1/2 m0' V0^-1 m0 - 1/2 log|A| + 1/2 b' A^-1 b,
        A = Z'Z / sigma^2 + V0^-1,   b = Z'y / sigma^2 + V0^-1 m0;

    sigma is integrated against its prior by Gauss-Legendre quadrature in log sigma over
    +- ``width`` posterior sd (1 / sqrt(2 dof)) around the best profile estimate, and gamma by
    the sum over the grid weighted by its prior (configurations more than ``prune`` log units
    below the best profile score are left out).
    """
    terms = stats.term_names(k)
    slope_priors = [priors.term_prior("slope", term) for term in terms]
    if any(prior.family != "normal" for prior in slope_priors):
        return float("nan")
    prior_mean = np.array([prior.kwargs["mu"] for prior in slope_priors])
    prior_var = np.array([prior.kwargs["sigma"] ** 2 for prior in slope_priors])
    profile = profile or profile_fit(stats, k, log_prior_cfg)
    keep = profile["score"] >= profile["score"].max() - prune
    gram, rhs = profile["gram"][keep], profile["rhs"][keep]
    configs = profile["configs"][keep]
    config_prior = log_prior_cfg[tuple(configs.T)] if k else np.zeros(1)
    centre = 0.5 * math.log(profile["rss"][profile["best"]] / stats.dof)
    half = width / math.sqrt(2.0 * stats.dof)
    nodes, node_weights = np.polynomial.legendre.leggauss(n_nodes)
    log_sigma = centre + half * nodes
    log_node_weight = np.log(node_weights * half)
    sigma = np.exp(log_sigma)
    sigma_prior = _prior_logp_numpy(priors.sigma, sigma)
    constant = (-0.5 * np.sum(np.log(prior_var)) - 0.5 * np.sum(prior_mean**2 / prior_var))
    per_node = np.empty((configs.shape[0], n_nodes))
    for q, s in enumerate(sigma):
        precision = gram / s**2 + np.diag(1.0 / prior_var)
        vector = rhs / s**2 + prior_mean / prior_var
        chol = np.linalg.cholesky(precision)
        half_solve = np.linalg.solve(chol, vector[..., None])[..., 0]
        log_det = 2.0 * np.sum(np.log(np.einsum("mii->mi", chol)), axis=1)
        per_node[:, q] = (-0.5 * stats.dof * (_LOG_2PI + 2.0 * math.log(s))
                          - stats.yy / (2.0 * s**2) + constant - 0.5 * log_det
                          + 0.5 * np.sum(half_solve**2, axis=1))
    integrand = per_node + (sigma_prior + log_sigma + log_node_weight)[None, :]
    return float(logsumexp(logsumexp(integrand, axis=1) + config_prior))


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BayesThresholdFit:
    """A fitted Bayesian panel threshold model.

    Attributes
    ----------
    idata
        ``posterior`` (``slope`` by ``coef``, ``sigma``, ``gamma`` by ``threshold`` and the grid
        index ``gamma_index``), ``sample_stats``, ``log_likelihood`` (marginalised over the
        thresholds), ``log_prior``, ``observed_data`` (the transformed outcome) and
        ``threshold_posterior`` (Rao-Blackwellised probability of every candidate).
    spec, priors, data_hash, seed, versions, wall_times
        Provenance, saved with the netCDF file.
    log_marginal_likelihood
        log p(y~ | k) (NaN when a slope prior is not normal).
    """

    idata: Any
    spec: dict[str, Any]
    priors: dict[str, dict[str, str]]
    data_hash: str
    seed: int
    versions: dict[str, str]
    wall_times: dict[str, float]
    grid: np.ndarray
    threshold_probability: np.ndarray
    log_marginal_likelihood: float
    _tidy_cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_thresholds(self) -> int:
        return int(self.spec["n_thresholds"])

    @property
    def divergences(self) -> int:
        stats = self.idata.sample_stats
        return int(stats["diverging"].sum()) if "diverging" in stats else 0

    def tidy(self, auxiliary: bool = True) -> pd.DataFrame:
        """One row per term: slopes (fixed, then ``<x>_regime<j>``), ``gamma_1``.. and, with
        ``auxiliary``, ``sigma``.

        Columns: term, kind (``slope``, ``time_effect``, ``threshold``, ``auxiliary``),
        estimate (posterior mean), std_error (posterior sd), ci_low, ci_high (94% HDI),
        prob_positive, r_hat, ess_bulk, n_obs, divergences.
        """
        key = f"aux={auxiliary}"
        if key not in self._tidy_cache:
            self._tidy_cache[key] = self._build_tidy(auxiliary)
        return self._tidy_cache[key].copy()

    def _build_tidy(self, auxiliary: bool) -> pd.DataFrame:
        import arviz as az

        posterior = self.idata.posterior
        entries: list[tuple[str, str, np.ndarray]] = []
        n_plain = int(self.spec["n_plain"])
        for j, term in enumerate(self.spec["terms"]):
            kind = "time_effect" if n_plain <= j < int(self.spec["n_fixed"]) else "slope"
            entries.append((term, kind, posterior["slope"].sel(coef=term).values))
        for r in range(self.n_thresholds):
            entries.append((f"gamma_{r + 1}", "threshold",
                            posterior["gamma"].isel(threshold=r).values))
        if auxiliary:
            entries.append(("sigma", "auxiliary", posterior["sigma"].values))
        rows = []
        for term, kind, draws in entries:
            flat = draws.reshape(-1)
            hdi = az.hdi(flat, hdi_prob=HDI_PROB)
            with np.errstate(invalid="ignore", divide="ignore"):
                r_hat = float(az.rhat(draws)) if np.ptp(flat) > 0 else 1.0
                ess = float(az.ess(draws, method="bulk")) if np.ptp(flat) > 0 else float(
                    flat.size)
            rows.append(dict(term=term, kind=kind, estimate=float(flat.mean()),
                             std_error=float(flat.std(ddof=1)), ci_low=float(hdi[0]),
                             ci_high=float(hdi[1]), prob_positive=float((flat > 0).mean()),
                             r_hat=r_hat, ess_bulk=ess, n_obs=int(self.spec["n_obs"]),
                             divergences=self.divergences))
        return pd.DataFrame(rows)

    def loo(self):
        """PSIS-LOO (``arviz.loo``, pointwise) of the marginalised log likelihood, cached."""
        if "loo" not in self._tidy_cache:
            import warnings

            import arviz as az

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self._tidy_cache["loo"] = az.loo(self.idata, pointwise=True)
        return self._tidy_cache["loo"]

    def threshold_posterior(self) -> pd.DataFrame:
        """Posterior probability of every candidate for each threshold (Rao-Blackwellised):
        columns ``gamma`` and ``gamma_1``, ``gamma_2``, ..."""
        frame = pd.DataFrame({"gamma": self.grid})
        for r in range(self.n_thresholds):
            frame[f"gamma_{r + 1}"] = self.threshold_probability[r]
        return frame

    def convergence_problems(self) -> list[str]:
        """Plain-language descriptions of failed convergence checks (empty when converged).

        r_hat and bulk ESS are checked on the slopes and sigma; the thresholds are exact
        conditional draws given each draw of them, so they inherit their mixing (their ESS is
        not checked: a threshold pinned to one candidate has no variance to measure).
        """
        table = self.tidy(auxiliary=True)
        table = table[table["kind"] != "threshold"]
        return convergence_messages(
            zip(table["term"], table["r_hat"], table["ess_bulk"], strict=True), self.divergences)

    @property
    def converged(self) -> bool:
        """r_hat <= 1.01 and bulk ESS >= 400 for slopes and sigma, and no divergences."""
        return not self.convergence_problems()

    def attributes(self) -> dict[str, str]:
        """Provenance as netCDF-safe attributes (JSON strings)."""
        return {
            "model": "bayes_threshold",
            "spec": json.dumps(self.spec),
            "priors": json.dumps(self.priors),
            "data_hash": self.data_hash,
            "seed": str(self.seed),
            "versions": json.dumps(self.versions),
            "wall_times": json.dumps(self.wall_times),
            "log_marginal_likelihood": repr(self.log_marginal_likelihood),
        }

    def save_netcdf(self, path: str | Path) -> Path:
        """Write the InferenceData with spec, priors, data hash, seed and versions attached."""
        import warnings

        import arviz as az

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        attrs = self.attributes()
        groups = {}
        for group in self.idata.groups():
            dataset = getattr(self.idata, group).copy()
            dataset.attrs = {**dataset.attrs, **attrs}
            groups[group] = dataset
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            az.InferenceData(**groups).to_netcdf(str(path))
        return path


# --------------------------------------------------------------------------------------------
# Public fitting function
# --------------------------------------------------------------------------------------------


def fit_bayes_threshold(
    data: pd.DataFrame,
    *,
    y: str,
    regime: str | Sequence[str],
    threshold: str,
    fixed: Sequence[str] = (),
    unit: str,
    period: str,
    n_thresholds: int = 1,
    demean: str = "hansen",
    time: bool = False,
    grid_size: int | None = None,
    trim: Sequence[float] = DEFAULT_TRIM,
    min_gap: Sequence[int] | None = None,
    threshold_prior: str | np.ndarray = "uniform",
    priors: PanelPriors | dict[str, Any] | Sequence[str] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    progressbar: bool = False,
    pointwise: bool = True,
    marginal_likelihood: bool = True,
    stats: ThresholdData | None = None,
) -> BayesThresholdFit:
    """Fit the Bayesian panel threshold model with the thresholds marginalised over the grid.

    y~_it = F~_it' beta + sum_{r=1}^{k+1} [x 1(g_{r-1} <= q < g_r)]~_it' delta_r + e_it,
    e ~ N(0, sigma^2), ~ the within transformation ``demean``; (g_1 < ... < g_k) ~ the
    changepoint prior on the grid; beta, delta ~ ``priors`` (role ``slope``), sigma ~ ``priors``
    (role ``sigma``). See the module docstring for every choice.

    Parameters
    ----------
    data
        Balanced panel, one row per (unit, period).
    y, regime, threshold, fixed, unit, period, demean, time
        As :func:`models.threshold.fit_panel_threshold`.
    n_thresholds
        k, 0 to 3 (0: the linear within regression, for model comparison).
    grid_size, trim
        Quantile steps of the candidate grid (default 400 for k <= 2, 60 for k = 3) and the
        trimming fractions (``trim[0]`` cuts the grid's ends).
    min_gap
        Minimum distance in grid steps between consecutive thresholds (one per gap); default
        ``round(grid_size * trim[r])``.
    threshold_prior
        ``"uniform"``, ``"uniform_value"`` or weights per candidate.
    priors
        Slope and sigma priors (:class:`models.priors.PanelPriors`, a mapping or
        ``role=family(...)`` strings).
    draws, tune, chains, seed, progressbar
        nutpie settings.
    pointwise, marginal_likelihood
        Compute the pointwise log likelihood / the log marginal likelihood.
    stats
        Pre-computed :class:`ThresholdData` (same grid) to skip the preparation.

    Returns
    -------
    BayesThresholdFit
    """
    import arviz as az
    import xarray as xr

    start_total = _time.perf_counter()
    if n_thresholds not in range(0, MAX_THRESHOLDS + 1):
        raise ValueError(f"n_thresholds must be 0, 1, 2 or 3, got {n_thresholds}")
    k = n_thresholds
    if len(trim) < max(k, 1):
        raise ValueError(f"trim needs one fraction per threshold, got {trim}")
    grid_size = int(grid_size or DEFAULT_GRID_SIZE[k])
    if stats is None:
        stats = prepare_threshold_data(data, y=y, regime=regime, threshold=threshold,
                                       fixed=fixed, unit=unit, period=period, demean=demean,
                                       time=time, grid_size=grid_size, trim=trim[0])
    gaps = (list(min_gap) if min_gap is not None
            else [max(int(round(grid_size * t)), 1) for t in trim[1:k]])
    log_prior_cfg = threshold_log_prior(stats.grid, k, threshold_prior, gaps)
    resolved = resolve_slope_priors(priors, stats, k)
    profile = profile_fit(stats, k, log_prior_cfg)
    centre, chol = _whitening(profile)
    model = build_threshold_model(stats, k, resolved, log_prior_cfg, centre, chol)
    idata, times, _ = _sample_nutpie(model, draws, tune, chains, seed, progressbar)

    start_post = _time.perf_counter()
    terms = stats.term_names(k)
    posterior = idata.posterior
    theta = posterior["slope"].values
    sigma = posterior["sigma"].values
    n_chains, n_draws = sigma.shape
    flat_theta = theta.reshape(-1, theta.shape[-1])
    flat_sigma = sigma.reshape(-1)
    rng = np.random.default_rng([seed, 0x7E5])
    recovered = recover_thresholds(flat_theta, flat_sigma, stats, k, log_prior_cfg, rng)
    index = recovered["index"].reshape(n_chains, n_draws, k)
    gamma = stats.grid[index]
    idata.posterior = posterior.drop_vars("slope_white")
    if k:
        idata.posterior = idata.posterior.assign(
            gamma=(("chain", "draw", "threshold"), gamma),
            gamma_index=(("chain", "draw", "threshold"), index),
        ).assign_coords(threshold=[f"gamma_{r + 1}" for r in range(k)])
    retained = 1.0
    if pointwise:
        loglik, retained = pointwise_loglik(flat_theta, flat_sigma, stats, k, recovered)
        idata.add_groups({"log_likelihood": xr.Dataset(
            {y: (("chain", "draw", "obs"), loglik.reshape(n_chains, n_draws, -1))},
            coords={"chain": posterior.chain, "draw": posterior.draw,
                    "obs": np.arange(stats.n_rows)})})
    idata.add_groups({"log_prior": _log_prior_dataset(
        resolved, terms, theta, sigma, index, log_prior_cfg, posterior)})
    idata.add_groups({"observed_data": xr.Dataset(
        {y: ("obs", stats.y)}, coords={"obs": np.arange(stats.n_rows)})})
    probability_group = xr.Dataset(
        {"probability": (("threshold", "candidate"), recovered["probability"]),
         "grid": ("candidate", stats.grid)},
        coords={"threshold": [f"gamma_{r + 1}" for r in range(k)],
                "candidate": np.arange(stats.n_candidates)})
    import warnings

    if k:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            idata.add_groups({"threshold_posterior": probability_group})
    log_ml = (log_marginal_likelihood(stats, k, resolved, log_prior_cfg, profile)
              if marginal_likelihood else float("nan"))
    times["postprocess_s"] = _time.perf_counter() - start_post
    times["total_s"] = _time.perf_counter() - start_total
    spec = {
        "outcome": y, "regime": list(stats.regime_names), "threshold": threshold,
        "fixed": list(stats.fixed_names), "n_plain": stats.n_plain,
        "n_fixed": stats.n_fixed, "terms": terms, "unit": unit, "period": period,
        "n_thresholds": k, "demean": demean, "time": bool(time), "grid_size": grid_size,
        "n_candidates": stats.n_candidates, "trim": list(trim), "min_gap": gaps,
        "threshold_prior": (threshold_prior if isinstance(threshold_prior, str)
                            else "weights"),
        "n_configurations": int(admissible_configs(log_prior_cfg).shape[0]),
        "sampler": "nutpie", "draws": draws, "tune": tune, "chains": chains,
        "n_obs": stats.n_units * stats.n_periods, "n_rows": stats.n_rows,
        "dof": stats.dof, "n_units": stats.n_units, "n_periods": stats.n_periods,
        "pointwise_retained_mass": retained,
        "profile_thresholds": [float(stats.grid[j]) for j in profile["configs"][profile["best"]]],
    }
    fit = BayesThresholdFit(
        idata=idata, spec=spec, priors=resolved.describe(["slope", "sigma"]),
        data_hash=stats.data_hash, seed=seed, versions=_package_versions(),
        wall_times={key: round(value, 4) for key, value in times.items()},
        grid=stats.grid, threshold_probability=recovered["probability"],
        log_marginal_likelihood=log_ml,
    )
    idata.posterior.attrs.update(fit.attributes())
    del az
    return fit


def _log_prior_dataset(priors: PanelPriors, terms, theta, sigma, index, log_prior_cfg,
                       posterior):
    import xarray as xr

    slope_lp = np.stack([_prior_logp_numpy(priors.term_prior("slope", term), theta[..., j])
                         for j, term in enumerate(terms)], axis=-1)
    sigma_lp = _prior_logp_numpy(priors.sigma, sigma)
    k = index.shape[-1]
    config_lp = (log_prior_cfg[tuple(np.moveaxis(index, -1, 0))] if k
                 else np.zeros(sigma.shape))
    return xr.Dataset(
        {"slope": (("chain", "draw", "coef"), slope_lp),
         "sigma": (("chain", "draw"), sigma_lp),
         "thresholds": (("chain", "draw"), config_lp)},
        coords={"chain": posterior.chain, "draw": posterior.draw, "coef": terms})


def _package_versions() -> dict[str, str]:
    import importlib.metadata as metadata

    versions = {"python": platform.python_version()}
    for name in ("pymc", "pytensor", "arviz", "numpy", "pandas", "nutpie", "numba"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


# --------------------------------------------------------------------------------------------
# Number of thresholds: LOO and marginal likelihood beside Hansen's F tests
# --------------------------------------------------------------------------------------------


def compare_threshold_counts(fits: dict[int, BayesThresholdFit], frequentist=None
                             ) -> pd.DataFrame:
    """LOO (``arviz.compare``) and log marginal likelihood of models with 0..3 thresholds.

    Parameters
    ----------
    fits
        k -> fit with k thresholds (same data, same transformation).
    frequentist
        Optional :class:`models.threshold.ThresholdResult` whose F tests (k-1 vs k) are shown
        beside model k.

    Returns
    -------
    pandas.DataFrame
        One row per k: ``n_thresholds, elpd_loo, se, p_loo, rank, weight, elpd_diff, dse,
        log_ml, posterior_prob`` (posterior probability of k under equal prior odds, from the
        marginal likelihoods), ``F``, ``F_p_value`` and ``pareto_k_bad`` (rows with k > 0.7).
    """
    import warnings

    import arviz as az

    loos = {f"k{k}": fit.loo() for k, fit in sorted(fits.items())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = az.compare(loos, ic="loo")
    rows = []
    log_ml = np.array([fits[k].log_marginal_likelihood for k in sorted(fits)])
    prob = (np.exp(log_ml - logsumexp(log_ml)) if np.all(np.isfinite(log_ml))
            else np.full(log_ml.size, np.nan))
    tests = getattr(frequentist, "tests", {}) if frequentist is not None else {}
    test_names = {1: "single", 2: "double", 3: "triple"}
    for j, k in enumerate(sorted(fits)):
        name = f"k{k}"
        entry = table.loc[name]
        test = tests.get(test_names.get(k, ""), None)
        rows.append(dict(
            n_thresholds=k, elpd_loo=float(entry["elpd_loo"]), se=float(entry["se"]),
            p_loo=float(entry["p_loo"]), rank=int(entry["rank"]), weight=float(entry["weight"]),
            elpd_diff=float(entry["elpd_diff"]), dse=float(entry["dse"]),
            log_ml=float(log_ml[j]), posterior_prob=float(prob[j]),
            F=float(test.statistic) if test is not None else np.nan,
            F_p_value=(float(test.p_value) if test is not None and test.draws.size else np.nan),
            pareto_k_bad=int((np.asarray(loos[name].pareto_k) > 0.7).sum()),
        ))
    return pd.DataFrame(rows)

"""Confidence sets for event-study effects that stay valid when parallel trends fail in a
bounded way (Rambachan & Roth 2023, "A More Credible Approach to Parallel Trends", REStud).

Model
-----
The event-study coefficients are beta-hat ~ N(beta, Sigma), beta = (beta_pre, beta_post),
beta = tau + delta with tau_pre = 0: delta is the difference in trends (the violation of
parallel trends), tau_post the treatment effects. The target is theta = l' tau_post (one
post period for l = e_t, the average post effect for l = 1/T_post). delta is only known to
lie in a set Delta:

- Smoothness, Delta^SD(M): |(delta_{t+1} - delta_t) - (delta_t - delta_{t-1})| <= M for every
  t, with delta_0 = 0 in the reference period. M = 0 says the trend difference is exactly
  linear: theta is identified by extrapolating the pre-trend line. Inference: the
  fixed-length confidence interval (FLCI) of Armstrong & Kolesar (2018, 2020) as in
  Rambachan & Roth section 4.1: among affine estimators a + v'beta-hat, the interval
  v'beta-hat +/- cv_alpha(b(v)/sd(v)) sd(v) with the smallest half-length, where b(v) is the
  worst-case bias over Delta^SD(M) and cv_alpha(t) the 1 - alpha quantile of |N(t, 1)|.
- Relative magnitudes, Delta^RM(Mbar): every post-period first difference
  |delta_{t+1} - delta_t| is at most Mbar times the largest pre-period first difference.
  Delta^RM is a union of polyhedra (one per pre-period difference s that attains the
  maximum, and its sign); theta is in the set when some polyhedron's moment-inequality test
  (Andrews, Roth & Pakes, conditional-least-favourable hybrid, :mod:`.arp`) accepts.
  Mbar = 0 forces delta_post = 0: the set is a conventional confidence interval for
  l'beta_post up to the conditioning.

These follow the HonestDiD R package (``findOptimalFLCI``,
``computeConditionalCS_DeltaRM`` with ``hybrid_flag = "LF"``): the same restrictions, the
same moments (post-period rows only), the same default grid. Differences: the folded-normal
quantile is computed exactly, not from 10^6 draws; the least-favourable critical value comes
from NumPy's generator (1,000 draws, as HonestDiD), not R's; and the grid's edges are refined
by bisection, so the set's ends are not rounded to the grid. The purely conditional ARP set
under Delta^SD (:func:`conditional_cs_delta_sd`, HonestDiD's "Conditional" method) has no
simulation step and reproduces HonestDiD's grid exactly: it checks the test itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from models.event_study.arp import MomentProblem, hybrid_test, least_favorable_cv


@dataclass(frozen=True)
class HonestInterval:
    """One confidence set: [lb, ub] of theta = l'tau_post under ``restriction`` at ``bound``."""

    restriction: str
    bound: float
    lb: float
    ub: float
    method: str


def _check_inputs(betahat, sigma, n_pre: int, n_post: int, l_vec, alpha: float):
    betahat = np.asarray(betahat, dtype=float).ravel()
    sigma = np.asarray(sigma, dtype=float)
    if n_pre < 1 or n_post < 1:
        raise ValueError(f"need at least one pre and one post period, got {n_pre} and "
                         f"{n_post} [rule: pre and post periods]")
    if betahat.size != n_pre + n_post:
        raise ValueError(f"betahat has {betahat.size} entries, not n_pre + n_post = "
                         f"{n_pre + n_post} [rule: one coefficient per event period]")
    if sigma.shape != (betahat.size, betahat.size):
        raise ValueError(f"sigma must be {betahat.size} x {betahat.size}, not "
                         f"{sigma.shape} [rule: covariance conformable with betahat]")
    if not np.all(np.isfinite(betahat)) or not np.all(np.isfinite(sigma)):
        raise ValueError("betahat and sigma must be finite [rule: finite estimates]")
    if not np.allclose(sigma, sigma.T, atol=1e-12 * max(1.0, np.abs(sigma).max())):
        raise ValueError("sigma must be symmetric [rule: covariance matrix]")
    if np.linalg.eigvalsh(sigma).min() < -1e-10 * np.abs(sigma).max():
        raise ValueError("sigma must be positive semi-definite [rule: covariance matrix]")
    if l_vec is None:
        l_vec = np.eye(n_post)[0]
    l_vec = np.asarray(l_vec, dtype=float).ravel()
    if l_vec.size != n_post:
        raise ValueError(f"l_vec has {l_vec.size} entries, not n_post = {n_post} "
                         "[rule: one weight per post period]")
    if not np.any(l_vec != 0):
        raise ValueError("l_vec must not be all zero [rule: a target parameter]")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), not {alpha} [rule: test size]")
    return betahat, sigma, l_vec


def folded_normal_quantile(p: float, mean: float) -> float:
    """The p quantile of |Z + mean|, Z ~ N(0, 1): c with Phi(c - t) - Phi(-c - t) = p."""
    t = abs(float(mean))

    def excess(c: float) -> float:
        return special.ndtr(c - t) - special.ndtr(-c - t) - p

    return float(optimize.brentq(excess, 0.0, t + 10.0, xtol=1e-14))


# --- Delta^SD(M): the fixed-length confidence interval ---------------------------------

class _AffineFamily:
    """Affine estimators l_pre'beta_pre + l'beta_post that are unbiased when delta is
    linear, parameterised as HonestDiD does by w (l_pre_1 = w_1, l_pre_k = w_k - w_{k-1})
    with sum(w) = sum_t t l_t; the worst-case bias over Delta^SD(1) is then
    const + sum_k |w_1 + ... + w_k|."""

    def __init__(self, sigma: np.ndarray, n_pre: int, n_post: int, l_vec: np.ndarray):
        self.k, self.l_vec = n_pre, l_vec
        steps = np.arange(1, n_post + 1)
        self.total = float(steps @ l_vec)
        self.const = sum(abs(float(np.arange(1, s + 1) @ l_vec[n_post - s:]))
                         for s in range(1, n_post + 1)) - self.total
        self.to_l = np.eye(n_pre) - np.eye(n_pre, k=-1)
        pre = slice(0, n_pre)
        post = slice(n_pre, n_pre + n_post)
        self.quad = self.to_l.T @ sigma[pre, pre] @ self.to_l
        self.lin = 2.0 * self.to_l.T @ sigma[pre, post] @ l_vec
        self.const_var = float(l_vec @ sigma[post, post] @ l_vec)

    def variance(self, w: np.ndarray) -> float:
        return float(w @ self.quad @ w + self.lin @ w + self.const_var)

    def bias(self, w: np.ndarray) -> float:
        return self.const + float(np.abs(np.cumsum(w)).sum())

    def min_variance_w(self) -> np.ndarray:
        """argmin var(w) s.t. sum(w) = total (a quadratic programme with one equality)."""
        ones = np.ones(self.k)
        kkt = np.block([[2.0 * self.quad, ones[:, None]], [ones[None, :], np.zeros((1, 1))]])
        rhs = np.r_[-self.lin, self.total]
        return np.linalg.lstsq(kkt, rhs, rcond=None)[0][: self.k]

    def min_bias_w(self) -> np.ndarray:
        return np.r_[np.zeros(self.k - 1), self.total]

    def min_bias_given_sd(self, h: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        """min bias(w) s.t. sd(w) <= h, over (u, w) with u_k >= |cumsum(w)_k|."""
        k = self.k
        cum = np.tril(np.ones((k, k)))
        x0 = np.r_[np.abs(cum @ start) + 1e-9, start]
        constraints = [
            {"type": "ineq", "fun": lambda x: x[:k] - cum @ x[k:], "jac":
             lambda x: np.hstack([np.eye(k), -cum])},
            {"type": "ineq", "fun": lambda x: x[:k] + cum @ x[k:], "jac":
             lambda x: np.hstack([np.eye(k), cum])},
            {"type": "eq", "fun": lambda x: x[k:].sum() - self.total, "jac":
             lambda x: np.r_[np.zeros(k), np.ones(k)][None, :]},
            {"type": "ineq", "fun": lambda x: (h ** 2 - self.variance(x[k:])) / h ** 2,
             "jac": lambda x: np.r_[np.zeros(k), -(2 * self.quad @ x[k:] + self.lin)]
             / h ** 2},
        ]
        result = optimize.minimize(
            lambda x: x[:k].sum(), x0, jac=lambda x: np.r_[np.ones(k), np.zeros(k)],
            constraints=constraints, method="SLSQP", options={"ftol": 1e-13, "maxiter": 500})
        # Whatever the optimiser returns, the interval stays valid: it is built from this
        # w's own worst-case bias and sd, once w sums exactly to the unbiasedness total.
        w = result.x[k:] + (self.total - result.x[k:].sum()) / k
        return self.bias(w), w


def flci_delta_sd(betahat, sigma, n_pre: int, n_post: int, M: float, l_vec=None,
                  alpha: float = 0.05) -> dict:
    """FLCI for theta = l'tau_post under Delta^SD(M) (Rambachan & Roth section 4.1).

    The half-length chi(h) = cv_alpha(M b(h) / h) h is minimised over h in
    [h_min, h_0], b(h) being the smallest worst-case bias of an affine estimator with
    standard deviation <= h (h_min: the least variance; h_0: the estimator with the
    least bias, which extrapolates the last pre-period slope). Returns ``lb``, ``ub``,
    ``half_length``, ``estimate`` (the centre), ``weights`` (on beta-hat) and ``M``.

    Raises ValueError for non-conformable inputs or M < 0.
    """
    betahat, sigma, l_vec = _check_inputs(betahat, sigma, n_pre, n_post, l_vec, alpha)
    if not np.isfinite(M) or M < 0:
        raise ValueError(f"M must be a finite number >= 0, not {M} [rule: Delta^SD(M)]")
    family = _AffineFamily(sigma, n_pre, n_post, l_vec)
    w_var, w_bias = family.min_variance_w(), family.min_bias_w()
    h_min = np.sqrt(max(family.variance(w_var), 0.0))
    h_0 = np.sqrt(family.variance(w_bias))
    quantile = 1.0 - alpha

    def half_length(h: float) -> tuple[float, np.ndarray]:
        if h <= h_min * (1 + 1e-10):
            w = w_var
            bias = family.bias(w)
        elif h >= h_0:
            w = w_bias
            bias = family.bias(w)
        else:
            bias, w = family.min_bias_given_sd(h, w_var)
        sd = np.sqrt(family.variance(w))
        return folded_normal_quantile(quantile, M * bias / sd) * sd, w

    if M == 0 or h_0 <= h_min * (1 + 1e-10):
        h_star = h_min
    else:
        result = optimize.minimize_scalar(lambda h: half_length(h)[0], bounds=(h_min, h_0),
                                          method="bounded",
                                          options={"xatol": 1e-9 * max(h_0, 1e-12)})
        h_star = float(result.x)
        ends = [(half_length(h)[0], h) for h in (h_min, h_0)]
        if min(ends)[0] < half_length(h_star)[0]:
            h_star = min(ends)[1]
    chi, w = half_length(h_star)
    weights = np.r_[family.to_l @ w, l_vec]
    centre = float(weights @ betahat)
    return {"lb": centre - chi, "ub": centre + chi, "half_length": chi,
            "estimate": centre, "weights": weights, "M": float(M)}


# --- Delta^RM(Mbar): the conditional-least-favourable hybrid set ----------------------

def delta_rm_constraints(n_pre: int, n_post: int, mbar: float, s: int,
                         max_positive: bool) -> np.ndarray:
    """A with A delta <= 0 for the polyhedron of Delta^RM(Mbar) in which the pre-period
    difference delta_s - delta_{s-1} (s = -(n_pre - 1), ..., 0) is the largest, with the
    given sign; delta excludes the reference period (HonestDiD's ``.create_A_RM``)."""
    n = n_pre + n_post
    diffs = np.zeros((n, n + 1))
    for r in range(n):
        diffs[r, r:r + 2] = (-1.0, 1.0)
    top = np.zeros(n + 1)
    top[n_pre + s - 1:n_pre + s + 1] = (-1.0, 1.0)
    if not max_positive:
        top = -top
    upper = np.vstack([np.tile(top, (n_pre, 1)), np.tile(mbar * top, (n_post, 1))])
    a = np.vstack([diffs - upper, -diffs - upper])
    a = a[(a ** 2).sum(axis=1) > 1e-10]
    return np.delete(a, n_pre, axis=1)


def _basis_with_first_row(l_vec: np.ndarray) -> np.ndarray:
    """An invertible Gamma whose first row is l' (the rest unit vectors), so that
    tau_post = Gamma^{-1} (theta, nuisance)."""
    rows = [l_vec]
    for j in range(len(l_vec)):
        candidate = np.vstack([*rows, np.eye(len(l_vec))[j]])
        if np.linalg.matrix_rank(candidate) == len(candidate):
            rows.append(np.eye(len(l_vec))[j])
    return np.vstack(rows)


class _PolyhedronTest:
    """The ARP test of theta = theta0 for one polyhedron {delta: A delta <= d}: hybrid with
    a least-favourable step of size ``kappa``, or purely conditional when ``kappa`` is None.
    Only moments that involve a post period enter, as HonestDiD's default."""

    def __init__(self, betahat, sigma, a, d, n_pre, l_vec, alpha, kappa, seed):
        post = slice(n_pre, None)
        a_gamma = a[:, post] @ np.linalg.inv(_basis_with_first_row(l_vec))
        rows = np.flatnonzero(np.any(a[:, post] != 0, axis=1))
        self.y = (a @ betahat - d)[rows]
        self.one = a_gamma[rows, 0]
        self.problem = MomentProblem(a_gamma[rows, 1:], (a @ sigma @ a.T)[np.ix_(rows, rows)])
        self.alpha, self.kappa = alpha, kappa
        self.lf_cv = None if kappa is None else least_favorable_cv(self.problem, kappa,
                                                                   seed=seed)

    def accepts(self, theta: float) -> bool:
        return not hybrid_test(self.problem, self.y - self.one * theta, self.alpha,
                               self.kappa, self.lf_cv)


def _accept_set(accepts, grid: np.ndarray, refine: bool) -> tuple[float, float]:
    accepted = np.array([accepts(t) for t in grid])
    if not accepted.any():
        return np.nan, np.nan
    first, last = np.flatnonzero(accepted)[[0, -1]]
    lb, ub = float(grid[first]), float(grid[last])
    if not refine:
        return lb, ub
    tol = (grid[-1] - grid[0]) / len(grid) * 1e-4
    if first > 0:
        inside, outside = lb, float(grid[first - 1])
        while inside - outside > tol:
            mid = (inside + outside) / 2
            inside, outside = (mid, outside) if accepts(mid) else (inside, mid)
        lb = inside
    if last < len(grid) - 1:
        inside, outside = ub, float(grid[last + 1])
        while outside - inside > tol:
            mid = (inside + outside) / 2
            inside, outside = (mid, outside) if accepts(mid) else (inside, mid)
        ub = inside
    return lb, ub


def conditional_cs_delta_rm(betahat, sigma, n_pre: int, n_post: int, mbar: float,
                            l_vec=None, alpha: float = 0.05, grid_points: int = 1000,
                            grid_lb: float | None = None, grid_ub: float | None = None,
                            refine: bool = True, seed: int = 0) -> dict:
    """Confidence set for theta = l'tau_post under Delta^RM(Mbar), by test inversion.

    theta0 is accepted when, for some pre-period difference s and sign, the ARP hybrid test
    (size alpha, least-favourable step at kappa = alpha / 10) does not reject that a delta in
    the polyhedron (:func:`delta_rm_constraints`) and tau_post with l'tau_post = theta0
    explain beta-hat. Candidates: ``grid_points`` values on [grid_lb, grid_ub] (default
    +/- 20 sd of l'beta-hat_post around 0, as HonestDiD), and l'beta-hat_post itself; with
    ``refine`` the first and last accepted values are moved by bisection to the edge of
    acceptance. Returns ``lb``,
    ``ub`` (NaN when nothing is accepted), ``open`` (accepted at an end of the grid: widen
    it) and ``Mbar``.

    Raises ValueError for non-conformable inputs or Mbar < 0.
    """
    betahat, sigma, l_vec = _check_inputs(betahat, sigma, n_pre, n_post, l_vec, alpha)
    if not np.isfinite(mbar) or mbar < 0:
        raise ValueError(f"Mbar must be a finite number >= 0, not {mbar} "
                         "[rule: Delta^RM(Mbar)]")
    if grid_points < 3:
        raise ValueError(f"grid_points must be >= 3, not {grid_points} [rule: grid]")
    post = slice(n_pre, None)
    sd_theta = float(np.sqrt(l_vec @ sigma[post, post] @ l_vec))
    grid_lb = -20 * sd_theta if grid_lb is None else grid_lb
    grid_ub = 20 * sd_theta if grid_ub is None else grid_ub
    if not grid_ub > grid_lb:
        raise ValueError(f"grid_ub ({grid_ub}) must exceed grid_lb ({grid_lb}) [rule: grid]")
    n_rows = 2 * (n_pre + n_post) - 1
    tests = [_PolyhedronTest(betahat, sigma, delta_rm_constraints(n_pre, n_post, mbar, s, sign),
                             np.zeros(n_rows), n_pre, l_vec, alpha, alpha / 10, seed)
             for s in range(-(n_pre - 1), 1) for sign in (True, False)]

    def accepts(theta: float) -> bool:
        return any(test.accepts(theta) for test in tests)

    grid = np.linspace(grid_lb, grid_ub, grid_points)
    # l'beta-hat_post is always a candidate: a set narrower than the grid's step (small
    # Mbar, precise estimates) would otherwise fall between grid points and read as empty.
    centre = float(l_vec @ betahat[post])
    candidates = np.union1d(grid, [centre]) if grid_lb < centre < grid_ub else grid
    lb, ub = _accept_set(accepts, candidates, refine)
    is_open = bool(np.isfinite(lb) and (lb <= grid[0] or ub >= grid[-1]))
    return {"lb": lb, "ub": ub, "open": is_open, "Mbar": float(mbar)}


def delta_sd_constraints(n_pre: int, n_post: int) -> np.ndarray:
    """A with |second differences of delta| <= M written as A delta <= M (both signs), delta
    excluding the reference period (HonestDiD's ``.create_A_SD``)."""
    n = n_pre + n_post
    second = np.zeros((n - 1, n + 1))
    for r in range(n - 1):
        second[r, r:r + 3] = (1.0, -2.0, 1.0)
    second = np.delete(second, n_pre, axis=1)
    return np.vstack([second, -second])


def conditional_cs_delta_sd(betahat, sigma, n_pre: int, n_post: int, M: float, l_vec=None,
                            alpha: float = 0.05, grid_points: int = 1000,
                            refine: bool = False) -> dict:
    """Confidence set for theta = l'tau_post under Delta^SD(M) by inverting the purely
    conditional ARP test (HonestDiD's ``computeConditionalCS_DeltaSD`` with
    ``hybrid_flag = "ARP"``), on HonestDiD's grid: the identified set at beta = 0 widened by
    20 sd of l'beta-hat_post on each side. The FLCI (:func:`flci_delta_sd`) is the interval
    reported; this set serves as a check of the moment-inequality test without simulation
    noise. Returns ``lb``, ``ub``, ``open`` and ``M``."""
    betahat, sigma, l_vec = _check_inputs(betahat, sigma, n_pre, n_post, l_vec, alpha)
    if not np.isfinite(M) or M < 0:
        raise ValueError(f"M must be a finite number >= 0, not {M} [rule: Delta^SD(M)]")
    a = delta_sd_constraints(n_pre, n_post)
    # At beta = 0 the identified set is the range of -l'delta_post over Delta^SD(M) with
    # delta_pre = 0.
    equality = np.hstack([np.eye(n_pre), np.zeros((n_pre, n_post))])
    objective = np.r_[np.zeros(n_pre), l_vec]
    ends = [optimize.linprog(sign * objective, A_ub=a, b_ub=np.full(len(a), M),
                             A_eq=equality, b_eq=np.zeros(n_pre),
                             bounds=[(None, None)] * (n_pre + n_post), method="highs")
            for sign in (1.0, -1.0)]
    id_ub, id_lb = -ends[0].fun, ends[1].fun
    post = slice(n_pre, None)
    sd_theta = float(np.sqrt(l_vec @ sigma[post, post] @ l_vec))
    test = _PolyhedronTest(betahat, sigma, a, np.full(len(a), M), n_pre, l_vec, alpha,
                           None, 0)
    grid = np.linspace(id_lb - 20 * sd_theta, id_ub + 20 * sd_theta, grid_points)
    lb, ub = _accept_set(test.accepts, grid, refine)
    is_open = bool(np.isfinite(lb) and (lb <= grid[0] or ub >= grid[-1]))
    return {"lb": lb, "ub": ub, "open": is_open, "M": float(M)}


def sensitivity_results(betahat, sigma, n_pre: int, n_post: int, l_vec=None,
                        m_values: Sequence[float] = (), mbar_values: Sequence[float] = (),
                        alpha: float = 0.05, **rm_options) -> list[HonestInterval]:
    """Both analyses on grids of bounds: the FLCI under Delta^SD(M) for each M, the C-LF set
    under Delta^RM(Mbar) for each Mbar (HonestDiD's ``createSensitivityResults`` and
    ``createSensitivityResults_relativeMagnitudes``)."""
    out = []
    for m in m_values:
        r = flci_delta_sd(betahat, sigma, n_pre, n_post, float(m), l_vec, alpha)
        out.append(HonestInterval("DeltaSD", float(m), r["lb"], r["ub"], "FLCI"))
    for mbar in mbar_values:
        r = conditional_cs_delta_rm(betahat, sigma, n_pre, n_post, float(mbar), l_vec, alpha,
                                    **rm_options)
        out.append(HonestInterval("DeltaRM", float(mbar), r["lb"], r["ub"], "C-LF"))
    return out


def original_cs(betahat, sigma, n_pre: int, n_post: int, l_vec=None,
                alpha: float = 0.05) -> tuple[float, float]:
    """The conventional interval l'beta-hat_post +/- z_(1-alpha/2) sd (parallel trends
    exact)."""
    betahat, sigma, l_vec = _check_inputs(betahat, sigma, n_pre, n_post, l_vec, alpha)
    post = slice(n_pre, None)
    centre = float(l_vec @ betahat[post])
    half = stats.norm.ppf(1 - alpha / 2) * np.sqrt(l_vec @ sigma[post, post] @ l_vec)
    return centre - half, centre + half

"""Moment-inequality test with nuisance parameters of Andrews, Roth & Pakes (2023, "Inference
for Linear Conditional Moment Inequalities", REStud), in the conditional-least-favourable
hybrid form that Rambachan & Roth (2023) use for Delta^RM.

Model
-----
    H0: there is a nuisance vector g with E[y] - X g <= 0,  y ~ N(mu, Sigma)

with y (m moments), X (m x k) and Sigma known. The statistic is the studentised LP

    eta(y) = min_{eta, g} eta   s.t.  sd eta + X g >= y,   sd = sqrt(diag Sigma),

whose dual is max_l l'y over {l >= 0, W'l = e_1}, W = [sd, X]. The conditional test compares
eta with the 1 - alpha quantile of a normal truncated to the values of eta for which the same
dual vertex stays optimal (ARP section 3); the hybrid first rejects whenever eta exceeds the
least-favourable critical value c_LF at size kappa (the 1 - kappa quantile of eta(xi),
xi ~ N(0, Sigma), simulated) and otherwise runs the conditional test at size
(alpha - kappa) / (1 - kappa) with the truncation capped at c_LF (ARP section 5).

The dual polytope {l >= 0, W'l = e_1} has few vertices for the moments an event study
produces (2 T_post rows, T_post columns), so they are enumerated once and eta(y) is the
largest l_v'y: exact, and vectorised over the least-favourable draws. Above
``MAX_VERTEX_SUBSETS`` candidate bases the LP is solved by HiGHS instead.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
from scipy import optimize, special, stats

MAX_VERTEX_SUBSETS = 20_000
TOL_LAMBDA = 1e-6


class MomentProblem:
    """The LP eta(y) of one moment system (X, Sigma): dual vertices, or HiGHS when too many."""

    def __init__(self, x: np.ndarray, sigma: np.ndarray):
        self.x = np.asarray(x, dtype=float).reshape(len(sigma), -1)
        self.sigma = np.asarray(sigma, dtype=float)
        self.sd = np.sqrt(np.diag(self.sigma))
        if np.any(self.sd <= 0):
            raise ValueError("every moment needs a positive variance [rule: ARP moments "
                             "have sd > 0]")
        self.w = np.column_stack([self.sd, self.x])
        self.vertices = self._vertices()

    def _vertices(self) -> np.ndarray | None:
        m, k1 = self.w.shape
        if comb(m, k1) > MAX_VERTEX_SUBSETS:
            return None
        e1 = np.zeros(k1)
        e1[0] = 1.0
        found = []
        for rows in combinations(range(m), k1):
            block = self.w[list(rows)]
            if abs(np.linalg.det(block)) < 1e-12 * max(1.0, np.abs(block).max() ** k1):
                continue
            lam = np.linalg.solve(block.T, e1)
            if np.all(lam >= -1e-12):
                full = np.zeros(m)
                full[list(rows)] = np.clip(lam, 0.0, None)
                found.append(full)
        if not found:
            return None
        return np.unique(np.round(np.array(found), 14), axis=0)

    def eta(self, y: np.ndarray) -> tuple[float, np.ndarray]:
        """eta(y) and the optimal dual vector l (one vertex of the dual polytope)."""
        if self.vertices is not None:
            values = self.vertices @ y
            best = int(np.argmax(values))
            return float(values[best]), self.vertices[best]
        k = self.x.shape[1]
        result = optimize.linprog(
            np.r_[1.0, np.zeros(k)], A_ub=-self.w, b_ub=-y,
            bounds=[(None, None)] * (k + 1), method="highs")
        if result.status != 0:
            raise RuntimeError(f"the ARP linear programme failed: {result.message}")
        return float(result.fun), -np.asarray(result.ineqlin.marginals)

    def eta_many(self, draws: np.ndarray) -> np.ndarray:
        """eta for each row of ``draws`` (shape (n, m))."""
        if self.vertices is not None:
            return (draws @ self.vertices.T).max(axis=1)
        return np.array([self.eta(row)[0] for row in draws])


def least_favorable_cv(problem: MomentProblem, kappa: float, sims: int = 1000,
                       seed: int = 0) -> float:
    """c_LF: the 1 - kappa quantile of eta(xi), xi ~ N(0, Sigma), from ``sims`` draws."""
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(np.zeros(len(problem.sd)), problem.sigma, size=sims,
                                    method="eigh")
    return float(np.quantile(problem.eta_many(draws), 1.0 - kappa))


def _truncated_quantile(p: float, low: float, high: float) -> float:
    """The p quantile of N(0, 1) truncated to [low, high]."""
    # Inverting the cdf on the side of the smaller tail keeps the closed form accurate;
    # beyond about 8 sd that loses digits and scipy's tail-safe routine takes over.
    if low > 0:
        return -_truncated_quantile(1.0 - p, -high, -low)
    if low < -8 or high < -8:
        return float(stats.truncnorm.ppf(p, low, high))
    lo, hi = special.ndtr(low), special.ndtr(high)
    return float(special.ndtri(lo + p * (hi - lo)))


def _bounds_nondegenerate(problem: MomentProblem, y: np.ndarray, binding: np.ndarray):
    """(v_lo, v_up, sigma_B) of eta when the optimal basis B is unique (ARP Lemma 9)."""
    sigma, sd, x = problem.sigma, problem.sd, problem.x
    m = len(y)
    eye = np.eye(m)
    w_b_inv = np.linalg.inv(np.column_stack([sd[binding], x[binding]]))
    s_b, s_bc = eye[binding], eye[~binding]
    gamma_b = np.column_stack([sd[~binding], x[~binding]]) @ w_b_inv @ s_b - s_bc
    v_b = (w_b_inv[0] @ s_b)
    sigma2_b = float(v_b @ sigma @ v_b)
    rho = gamma_b @ sigma @ v_b / sigma2_b
    bound = -(gamma_b @ y) / np.where(rho == 0, np.nan, rho) + float(v_b @ y)
    vlo = float(np.max(bound[rho > 0])) if np.any(rho > 0) else -np.inf
    vup = float(np.min(bound[rho < 0])) if np.any(rho < 0) else np.inf
    return vlo, vup, np.sqrt(sigma2_b)


def _is_solution(problem: MomentProblem, s_t: np.ndarray, b: np.ndarray, c: float,
                 tol: float = 1e-6) -> tuple[bool, np.ndarray | None]:
    """Whether c = max_x (s_t + b c)'x over {x >= 0, W'x = e_1}, and the maximiser (None
    when the programme fails)."""
    objective = s_t + b * c
    if problem.vertices is not None:
        values = problem.vertices @ objective
        best = int(np.argmax(values))
        return abs(c - float(values[best])) <= tol, problem.vertices[best]
    result = optimize.linprog(-objective, A_eq=problem.w.T,
                              b_eq=np.r_[1.0, np.zeros(problem.w.shape[1] - 1)],
                              bounds=[(0, None)] * len(s_t), method="highs")
    if result.status != 0:
        return False, None
    return abs(c - (-result.fun)) <= tol, result.x


def _bounds_dual(problem: MomentProblem, y: np.ndarray, eta: float, gamma: np.ndarray):
    """(v_lo, v_up) of eta for a degenerate or rank-deficient basis: the values c for which
    eta stays the optimum along y's direction of dependence on gamma'y (ARP appendix;
    bisection as HonestDiD's ``.vlo_vup_dual_fn``)."""
    sigma = problem.sigma
    scale = float(gamma @ sigma @ gamma)
    b = sigma @ gamma / scale
    s_t = y - b * float(gamma @ y)
    sigma_b = np.sqrt(scale)
    ok, _ = _is_solution(problem, s_t, b, eta)
    if not ok:
        return eta, np.inf

    def step(lam: np.ndarray) -> float:
        numerator = float(lam @ s_t)
        numerator = 0.0 if abs(numerator) < np.finfo(float).eps ** 0.75 else numerator
        return numerator / (1.0 - float(lam @ b))

    def edge(start: float, upward: bool) -> float:
        ok, lam = _is_solution(problem, s_t, b, start)
        if ok:
            return np.inf if upward else -np.inf
        if lam is None:
            raise RuntimeError("the ARP truncation programme failed")
        mid, converged = step(lam), False
        # A fixed-point iteration usually lands on the edge in a few steps; bisection
        # between eta and the last iterate otherwise.
        for _ in range(9):
            ok, lam = _is_solution(problem, s_t, b, mid)
            if ok:
                converged = True
                break
            if lam is None:
                break
            mid = step(lam)
        if converged:
            return mid
        inside, outside = eta, mid
        while abs(outside - inside) > 1e-6:
            mid = (inside + outside) / 2.0
            if _is_solution(problem, s_t, b, mid)[0]:
                inside = mid
            else:
                outside = mid
        return mid

    vup = edge(max(100.0, eta + 20 * sigma_b), upward=True)
    vlo = edge(min(-100.0, eta - 20 * sigma_b), upward=False)
    return vlo, vup


def hybrid_test(problem: MomentProblem, y: np.ndarray, alpha: float, kappa: float,
                lf_cv: float | None) -> bool:
    """True when H0: E[y] - X g <= 0 for some g is rejected at level alpha.

    ``lf_cv`` is c_LF for the hybrid (``kappa`` its size); ``None`` gives the purely
    conditional test at size alpha.
    """
    eta, lam = problem.eta(y)
    if lf_cv is not None:
        if eta > lf_cv:
            return True
        size = (alpha - kappa) / (1.0 - kappa)
        cap = lf_cv
    else:
        size, cap = alpha, np.inf
    k = problem.x.shape[1]
    binding = lam > TOL_LAMBDA
    full_rank = (binding.sum() == k + 1 and
                 (k == 0 or np.linalg.matrix_rank(problem.x[binding]) == k))
    if full_rank:
        vlo, vup, sigma_b = _bounds_nondegenerate(problem, y, binding)
    else:
        sigma_b2 = float(lam @ problem.sigma @ lam)
        if sigma_b2 < np.finfo(float).eps:
            # The binding moments cancel (an equality written as two inequalities): eta has
            # no spread given the conditioning and rejects when positive. eta is in sd
            # units, so values below 1e-8 are rounding of an exact zero.
            return eta > 1e-8
        vlo, vup = _bounds_dual(problem, y, eta, lam)
        sigma_b = np.sqrt(sigma_b2)
    zlo, zup = vlo / sigma_b, min(vup, cap) / sigma_b
    stat = eta / sigma_b
    if not zlo <= stat <= zup:
        return False
    return stat > max(0.0, _truncated_quantile(1.0 - size, zlo, zup))

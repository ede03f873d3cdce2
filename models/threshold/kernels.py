"""numba kernels of the Bayesian threshold model: the sum over threshold configurations.

Every kernel works on the configurations j = (j_1 < ... < j_k) of grid indices and their value

    v_j = log p(j) + sum_r u[r, j_r] + sum_{r<s} sum_e w[r, s, e] G[e, j_r, j_s],

u the per-threshold terms and w the pair coefficients of the log likelihood given the slopes and
sigma (see :mod:`models.threshold.likelihood`), G the pair Gram of the split columns by
entry e of their k_r x k_r blocks. The kernels are compiled with ``cache=True``: the first run
on a machine compiles them (a few seconds), later runs load them from numba's cache. The
kernels run after sampling release the GIL (``nogil=True``), so that chunks of draws run on
threads.

Exactness: a term more than :data:`NEGLIGIBLE` log units below the largest (< 1e-20 of it) is
not exponentiated, in the log-sum-exp of the model and in the conditional draws of the
thresholds alike; with fewer than 10^5 configurations such terms move the sums by less than
double-precision rounding (their total is below 1e-15 of the largest term).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from models.bayes.kernel_cache import install as _install_kernel_cache
from models.threshold.row_kernels import NEGLIGIBLE, row_logsumexp, row_values, row_weights

_install_kernel_cache()

LOG_2PI = math.log(2.0 * math.pi)


@numba.njit(cache=True)
def config_values(u, w, gram, configs, prior, out):
    """Write v_j of every configuration into ``out`` (M,).

    Parameters: u (k, K), w (k, k, E), gram (E, K, K), configs (M, k) int64, prior (M,).
    """
    n_configs, k = configs.shape
    n_pair = gram.shape[0]
    if k == 2 and n_pair == 1:
        # two thresholds and one regime regressor, the common case, without inner loops
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


@numba.njit(cache=True)
def config_logsumexp(u, w, gram, configs, prior, rows):
    """log sum_j exp(v_j) and its gradients in u (k, K) and w (k, k, E), in two passes.

    The gradients are softmax-weighted sums: d/du[r, g] = sum_j p_j 1[j_r = g] and
    d/dw[r, s, e] = sum_j p_j G[e, j_r, j_s], p_j = exp(v_j - log-sum-exp). The first pass
    computes every v_j and the largest; the second exponentiates, sums and accumulates the
    (unnormalised) gradients at once, and they are normalised at the end. ``rows``: the
    configurations' row layout (:func:`models.threshold.row_kernels.config_rows`; empty when
    they have none), which two thresholds with one regime regressor use.
    """
    n_configs, k = configs.shape
    n_pair = gram.shape[0]
    grad_u = np.zeros_like(u)
    grad_w = np.zeros_like(w)
    if k == 2 and n_pair == 1 and rows.shape[0] > 0:
        return _row_logsumexp(u, w, gram[0], rows, prior, grad_u, grad_w)
    values = np.empty(n_configs)
    config_values(u, w, gram, configs, prior, values)
    top = values.max()
    # below top - 46 a term is < 1e-20 of the largest: M such terms change the sum by less
    # than double-precision rounding, so they are skipped (no exp).
    cut = top - NEGLIGIBLE
    total = 0.0
    for m in range(n_configs):
        value = values[m]
        if value > cut:
            weight = np.exp(value - top)
            total += weight
            for r in range(k):
                jr = configs[m, r]
                grad_u[r, jr] += weight
                for s in range(r + 1, k):
                    js = configs[m, s]
                    for e in range(n_pair):
                        grad_w[r, s, e] += weight * gram[e, jr, js]
    return _normalised(top, total, grad_u, grad_w)


@numba.njit(cache=True)
def _row_logsumexp(u, w, g0, rows, prior, grad_u, grad_w):
    """:func:`config_logsumexp` for two thresholds and one regime regressor on configurations
    stored by rows (:func:`models.threshold.row_kernels.row_logsumexp`)."""
    top, total, pair = row_logsumexp(u[0], u[1], w[0, 1, 0], g0, rows, prior, grad_u)
    grad_w[0, 1, 0] = pair
    return _normalised(top, total, grad_u, grad_w)


@numba.njit(cache=True)
def _normalised(top, total, grad_u, grad_w):
    """(log-sum-exp, gradients) from the unnormalised sums of exp(v_j - top)."""
    scale = 1.0 / total
    for r in range(grad_u.shape[0]):
        for j in range(grad_u.shape[1]):
            grad_u[r, j] *= scale
        for s in range(grad_w.shape[1]):
            for e in range(grad_w.shape[2]):
                grad_w[r, s, e] *= scale
    return top + np.log(total), grad_u, grad_w


@numba.njit(cache=True)
def marginal_loglik(theta, sigma, n_fixed, n_regime, k, dof, yy, base_y, base_gram, split_y,
                    split_base, split_diag, gram, configs, prior, rows):
    """log sum_j p(j) p(y~ | theta, j, sigma) and its gradient in theta and sigma.

    theta (P,) regime-form slopes (fixed, then delta_1 .. delta_{k+1}); the statistics are
    y'y, B'y (p0,), B'B (p0, p0), C(g)'y (K, kr), C(g)'B (K, kr, p0), C(g)'C(g) (K, kr, kr)
    and G (kr * kr, K, K); ``rows`` as in :func:`config_logsumexp`. With
    theta_0 = (beta, delta_{k+1}), d_r = delta_r - delta_{r+1},

        log p(y~ | theta, j, sigma) = c(theta_0, sigma) + sum_r u_r(j_r)
                                      + sum_{r<s} w_rs G(j_r, j_s),
        c = -dof/2 log(2 pi sigma^2) - (y'y - 2 theta_0'B'y + theta_0'B'B theta_0) / (2 sigma^2),
        u_r(g) = (2 d_r'a(g) - d_r'C(g)'C(g) d_r) / (2 sigma^2),  a(g) = C(g)'y - C(g)'B theta_0,
        w_rs = -d_r d_s' / sigma^2,

    and the gradient is the chain rule through u and w of the softmax-weighted sums of
    :func:`config_logsumexp`. Returns (value, gradient in theta (P,), gradient in sigma).
    """
    n_base = n_fixed + n_regime
    size = theta.shape[0]
    last = n_fixed + k * n_regime
    # explicit loops rather than slices and array expressions: the same arithmetic, and far
    # less for numba to compile
    theta0 = np.empty(n_base)
    for p in range(n_fixed):
        theta0[p] = theta[p]
    for c in range(n_regime):
        theta0[n_fixed + c] = theta[last + c]
    d = np.empty((k, n_regime))
    for r in range(k):
        start = n_fixed + r * n_regime
        for c in range(n_regime):
            d[r, c] = theta[start + c] - theta[start + n_regime + c]
    variance = sigma * sigma
    inv_var = 1.0 / variance
    gram_theta0 = np.zeros(n_base)
    grad_theta0 = np.empty(n_base)
    residual_ss = yy
    for p in range(n_base):
        for q in range(n_base):
            gram_theta0[p] += base_gram[p, q] * theta0[q]
        residual_ss += theta0[p] * (gram_theta0[p] - 2.0 * base_y[p])
        grad_theta0[p] = (base_y[p] - gram_theta0[p]) * inv_var
    value = -0.5 * dof * (LOG_2PI + 2.0 * np.log(sigma)) - 0.5 * residual_ss * inv_var
    grad_sigma = -dof / sigma + residual_ss * inv_var / sigma
    grad_theta = np.zeros(size)
    if k > 0:
        n_candidates = split_y.shape[0]
        a = np.empty((n_candidates, n_regime))
        for j in range(n_candidates):
            for c in range(n_regime):
                total = split_y[j, c]
                for p in range(n_base):
                    total -= split_base[j, c, p] * theta0[p]
                a[j, c] = total
        u = np.empty((k, n_candidates))
        for r in range(k):
            for j in range(n_candidates):
                linear = 0.0
                quadratic = 0.0
                for c in range(n_regime):
                    linear += a[j, c] * d[r, c]
                    for e in range(n_regime):
                        quadratic += split_diag[j, c, e] * d[r, c] * d[r, e]
                u[r, j] = (linear - 0.5 * quadratic) * inv_var
        n_pair = n_regime * n_regime
        w = np.zeros((k, k, n_pair))
        for r in range(k):
            for s in range(r + 1, k):
                for c in range(n_regime):
                    for e in range(n_regime):
                        w[r, s, c * n_regime + e] = -d[r, c] * d[s, e] * inv_var
        lse, grad_u, grad_w = config_logsumexp(u, w, gram, configs, prior, rows)
        value += lse
        grad_d = np.zeros((k, n_regime))
        for r in range(k):
            for j in range(n_candidates):
                weight = grad_u[r, j]
                if weight == 0.0:
                    continue
                grad_sigma -= 2.0 * weight * u[r, j] / sigma
                for c in range(n_regime):
                    # d u_r(g) / d theta_0 = -C(g)'B' d_r / sigma^2
                    for p in range(n_base):
                        grad_theta0[p] -= weight * split_base[j, c, p] * d[r, c] * inv_var
                    # d u_r(g) / d d_r = (a(g) - C(g)'C(g) d_r) / sigma^2
                    slope = a[j, c]
                    for e in range(n_regime):
                        slope -= split_diag[j, c, e] * d[r, e]
                    grad_d[r, c] += weight * slope * inv_var
        for r in range(k):
            for s in range(r + 1, k):
                for c in range(n_regime):
                    for e in range(n_regime):
                        weight = grad_w[r, s, c * n_regime + e]
                        grad_sigma -= 2.0 * weight * w[r, s, c * n_regime + e] / sigma
                        grad_d[r, c] -= weight * d[s, e] * inv_var
                        grad_d[s, e] -= weight * d[r, c] * inv_var
        # d_r = delta_r - delta_{r+1}: delta_r receives grad_d[r] - grad_d[r-1]
        for r in range(k + 1):
            start = n_fixed + r * n_regime
            for c in range(n_regime):
                total = 0.0
                if r < k:
                    total += grad_d[r, c]
                if r > 0:
                    total -= grad_d[r - 1, c]
                grad_theta[start + c] = total
    for p in range(n_fixed):
        grad_theta[p] += grad_theta0[p]
    for c in range(n_regime):
        grad_theta[last + c] += grad_theta0[n_fixed + c]
    return value, grad_theta, grad_sigma


@numba.njit(cache=True)
def _sift_down(weights, indices, parent, size):
    """Restore the min-heap property of ``weights[:size]`` below ``parent``."""
    while True:
        child = 2 * parent + 1
        if child >= size:
            return
        if child + 1 < size and weights[child + 1] < weights[child]:
            child += 1
        if weights[child] >= weights[parent]:
            return
        weights[parent], weights[child] = weights[child], weights[parent]
        indices[parent], indices[child] = indices[child], indices[parent]
        parent = child


@numba.njit(cache=True, nogil=True)
def conditional_draws(u, w, gram, configs, prior, uniforms, limit, rows):
    """One exact draw of the configuration from p(j | theta, sigma, y) per draw of the slopes.

    u (S, k, K), w (S, k, k, E) per draw, ``uniforms`` (S,) in [0, 1). The draw is the first
    configuration whose cumulative conditional probability reaches the uniform (inverse CDF in
    the order of ``configs``). Configurations below 1e-20 of the most probable one get
    probability zero (:data:`NEGLIGIBLE`; together they hold less than the rounding error of
    the normalising sum). Returns the drawn configuration (S,), the conditional
    probabilities summed over the draws (M,), and per draw the ``limit`` most probable
    configurations (S, limit), most probable first, with their probabilities (S, limit); -1
    and 0 pad the rest when fewer have a positive probability.
    """
    n_draws = u.shape[0]
    n_configs = configs.shape[0]
    values = np.empty(n_configs)
    picked = np.empty(n_draws, dtype=np.int64)
    summed = np.zeros(n_configs)
    top = np.empty((n_draws, limit), dtype=np.int64)
    top_weight = np.empty((n_draws, limit))
    heap_weight = np.empty(limit)
    heap_index = np.empty(limit, dtype=np.int64)
    live = np.empty(n_configs, dtype=np.int64)
    by_rows = configs.shape[1] == 2 and gram.shape[0] == 1 and rows.shape[0] > 0
    scratch = np.empty(n_configs if by_rows else 0)
    weights = np.empty(n_configs if by_rows else 0)
    for s in range(n_draws):
        total = 0.0
        n_live = 0
        if by_rows:
            largest = row_values(u[s, 0], u[s, 1], w[s, 0, 1, 0], gram[0], rows, prior, values)
            row_weights(values, rows, largest, weights, scratch)
            for m in range(n_configs):
                values[m] = weights[m]
                if weights[m] > 0.0:  # exactly the terms above the cut
                    total += weights[m]
                    live[n_live] = m
                    n_live += 1
        else:
            config_values(u[s], w[s], gram, configs, prior, values)
            largest = values.max()
            cut = largest - NEGLIGIBLE
            for m in range(n_configs):
                # as in config_logsumexp: terms < 1e-20 of the largest are left out (their
                # sum is below the rounding error of the total)
                if values[m] > cut:
                    values[m] = np.exp(values[m] - largest)
                    total += values[m]
                    live[n_live] = m
                    n_live += 1
        target = uniforms[s] * total
        cumulative = 0.0
        choice = live[n_live - 1]
        found = False
        size = 0
        for position in range(n_live):
            m = live[position]
            weight = values[m]
            if not found:
                cumulative += weight
                if cumulative >= target:
                    choice = m
                    found = True
            summed[m] += weight / total
            if size < limit:
                heap_weight[size] = weight
                heap_index[size] = m
                size += 1
                if size == limit:
                    for start in range(limit // 2 - 1, -1, -1):
                        _sift_down(heap_weight, heap_index, start, limit)
            elif weight > heap_weight[0]:
                heap_weight[0] = weight
                heap_index[0] = m
                _sift_down(heap_weight, heap_index, 0, limit)
        picked[s] = choice
        for position in range(size, limit):
            top[s, position] = -1
            top_weight[s, position] = 0.0
        if size < limit:
            for start in range(size // 2 - 1, -1, -1):
                _sift_down(heap_weight, heap_index, start, size)
        # pop the heap (smallest first) into the slots from the back: most probable first
        for position in range(size - 1, -1, -1):
            top[s, position] = heap_index[0]
            top_weight[s, position] = heap_weight[0] / total
            heap_weight[0] = heap_weight[position]
            heap_index[0] = heap_index[position]
            _sift_down(heap_weight, heap_index, 0, position)
    return picked, summed, top, top_weight


@numba.njit(cache=True, nogil=True)
def pointwise_loglik_draws(y, base, columns, unit_counts, rows_per_unit, theta0, d, sigma,
                           row_weight, configs, kept, kept_weight, out):
    """l_i = -log sum_j w_j / p(y_i | theta, j, sigma) for every draw and transformed row.

    y (m,), base (m, p0), columns (K, kr, m) the transformed split columns by candidate,
    unit_counts (n, K) the number of a unit's observations below each candidate (non-decreasing
    in the candidate), theta0 (S, p0), d (S, k, kr), sigma (S,), kept (S, L) indices into
    configs (-1: unused), kept_weight (S, L) their conditional probabilities (renormalised
    here). Each row's density is N(y_i; fitted, sigma^2) raised to ``row_weight``. Writes
    the (S, m) values into ``out`` and returns it.

    The rows of a unit depend on a configuration only through how many of the unit's
    observations fall below each threshold; configurations that agree on those counts give
    the unit identical residuals, so their weights are added before the sum (exact: only the
    order of the additions changes). A unit whose counts are equal at the smallest and the
    largest kept index of every threshold has a single such group, and
    l_i = log p(y_i | theta, j, sigma) - log sum_j w_j directly.
    """
    n_draws = theta0.shape[0]
    n_base = base.shape[1]
    n_units = unit_counts.shape[0]
    n_kept = kept.shape[1]
    k = configs.shape[1]
    n_regime = columns.shape[1]
    representative = np.empty(n_kept, dtype=np.int64)
    group_weight = np.empty(n_kept)
    terms = np.empty(n_kept)
    lowest = np.empty(k, dtype=np.int64)
    highest = np.empty(k, dtype=np.int64)
    for s in range(n_draws):
        constant = -0.5 * row_weight * (LOG_2PI + 2.0 * np.log(sigma[s]))
        inv_two_var = 1.0 / (2.0 * sigma[s] * sigma[s])
        mass = 0.0
        first = -1
        for r in range(k):
            lowest[r] = unit_counts.shape[1]
            highest[r] = -1
        for position in range(n_kept):
            config = kept[s, position]
            if config >= 0:
                mass += kept_weight[s, position]
                if first < 0:
                    first = config
                for r in range(k):
                    lowest[r] = min(lowest[r], configs[config, r])
                    highest[r] = max(highest[r], configs[config, r])
        total_weight = 0.0
        for position in range(n_kept):
            if kept[s, position] >= 0:
                total_weight += kept_weight[s, position] / mass
        log_total_weight = np.log(total_weight)
        for i in range(n_units):
            single = True
            for r in range(k):
                if unit_counts[i, lowest[r]] != unit_counts[i, highest[r]]:
                    single = False
                    break
            if single:
                for row in range(i * rows_per_unit, (i + 1) * rows_per_unit):
                    e = y[row]
                    for p in range(n_base):
                        e -= base[row, p] * theta0[s, p]
                    for r in range(k):
                        j = configs[first, r]
                        for c in range(n_regime):
                            e -= columns[j, c, row] * d[s, r, c]
                    out[s, row] = constant - e * e * inv_two_var - log_total_weight
                continue
            n_groups = 0
            for position in range(n_kept):
                config = kept[s, position]
                if config < 0:
                    continue
                group = -1
                for g in range(n_groups):
                    other = representative[g]
                    same = True
                    for r in range(k):
                        if unit_counts[i, configs[config, r]] != unit_counts[
                                i, configs[other, r]]:
                            same = False
                            break
                    if same:
                        group = g
                        break
                if group < 0:
                    group = n_groups
                    representative[group] = config
                    group_weight[group] = 0.0
                    n_groups += 1
                group_weight[group] += kept_weight[s, position] / mass
            for row in range(i * rows_per_unit, (i + 1) * rows_per_unit):
                base_residual = y[row]
                for p in range(n_base):
                    base_residual -= base[row, p] * theta0[s, p]
                largest = -np.inf
                for g in range(n_groups):
                    config = representative[g]
                    e = base_residual
                    for r in range(k):
                        j = configs[config, r]
                        for c in range(n_regime):
                            e -= columns[j, c, row] * d[s, r, c]
                    terms[g] = -(constant - e * e * inv_two_var)
                    if terms[g] > largest:
                        largest = terms[g]
                total = 0.0
                for g in range(n_groups):
                    total += group_weight[g] * np.exp(terms[g] - largest)
                out[s, row] = -(largest + np.log(total))
    return out

"""The collapsed Gaussian TWFE log density as one PyTensor Op with fused numba kernels.

Value and gradient of log p(y | beta, sigma, unit_sd, year_sd) of :mod:`models.panel.collapsed`
(intercept, Mundlak terms and year effects integrated out) in one pass: one Cholesky factor
of the d x d precision P (d = 1 + k + T - 1), its inverse for the trace terms, and no
allocation per observation. With u = P^-1 b and q any of sigma^2, unit_sd^2, year_sd^2,

    d/dq [1/2 b'u - 1/2 log|P|] = u' db/dq - 1/2 u' (dP/dq) u - 1/2 tr(P^-1 dP/dq).

When the year coordinates are decoupled from the rest (balanced panels: every unit's year
shares are 1/T, orthogonal to the zero-sum basis) their block of P is diagonal and only the
(1 + k) x (1 + k) block is factored. The exact draws of phi after sampling
(:func:`draw_phi`) assemble P the same way.

Op inputs: beta (k), sigma, unit_sd, year_sd and the statistics packed into one vector
(:func:`models.panel.collapsed.pack_stats`). Outputs: the value and its gradient in the four
parameters. The kernels are compiled once per machine and cached by numba.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from models.bayes.kernel_cache import install as _install_kernel_cache
from models.panel.kernels import quadratic_part

_install_kernel_cache()

_LOG_2PI = float(np.log(2.0 * np.pi))
N_PARAMETERS = 4


@numba.njit(cache=True)
def unpack(packed):
    """The statistics of :func:`models.panel.collapsed.pack_stats` as views, in the order of
    :data:`models.panel.collapsed.COLLAPSED_FIELDS`."""
    k = int(packed[0])
    d = int(packed[1])
    n_groups = int(packed[2])
    n_fixed = int(packed[3])
    n_eta = d - n_fixed
    sizes = (1, k * k, k, n_groups, n_groups, n_groups, n_groups * d, n_groups * d * d,
             n_eta * n_eta, n_eta, n_fixed, n_fixed, 1)
    parts = []
    pos = 4
    for size in sizes:
        parts.append(packed[pos:pos + size])
        pos += size
    syy_within, dense_size = parts[0][0], parts[12][0]
    sxx = parts[1].reshape((k, k))
    sxy, group_units, group_rows, group_syy = parts[2], parts[3], parts[4], parts[5]
    group_zy = parts[6].reshape((n_groups, d))
    group_zz = parts[7].reshape((n_groups, d, d))
    year_gram = parts[8].reshape((n_eta, n_eta))
    year_cross, prior_mean, prior_sd = parts[9], parts[10], parts[11]
    return (syy_within, sxx, sxy, group_units, group_rows, group_syy, group_zy, group_zz,
            year_gram, year_cross, prior_mean, prior_sd, dense_size)


@numba.njit(cache=True)
def assemble(sigma2, omega2, tau2, group_rows, group_zy, group_zz, year_gram, year_cross,
             prior_mean, prior_sd, nd):
    """P and b of :mod:`models.panel.collapsed`: the dense leading nd x nd block of P, the
    whole of b, and the diagonal of P's decoupled tail (zero in the dense part)."""
    d = group_zy.shape[1]
    n_fixed = prior_mean.shape[0]
    precision = np.zeros((nd, nd))
    shift = np.zeros(d)
    tail = np.zeros(d)
    for g in range(group_rows.shape[0]):
        inv_var = 1.0 / (sigma2 + group_rows[g] * omega2)
        for a in range(nd):
            shift[a] += group_zy[g, a] * inv_var
            for b in range(nd):
                precision[a, b] += group_zz[g, a, b] * inv_var
    for a in range(d - n_fixed):
        i = n_fixed + a
        shift[i] += year_cross[a] / sigma2
        if i < nd:
            for b in range(d - n_fixed):
                if n_fixed + b < nd:
                    precision[i, n_fixed + b] += year_gram[a, b] / sigma2
            precision[i, i] += 1.0 / tau2
        else:
            tail[i] = year_gram[a, a] / sigma2 + 1.0 / tau2
    for a in range(n_fixed):
        prior_precision = 1.0 / (prior_sd[a] * prior_sd[a])
        precision[a, a] += prior_precision
        shift[a] += prior_mean[a] * prior_precision
    return precision, shift, tail


@numba.njit(cache=True)
def cholesky_lower(matrix):
    """(L, log det, ok) with L L' = matrix; ok is False if a pivot is not positive."""
    n = matrix.shape[0]
    chol = np.zeros((n, n))
    log_det = 0.0
    for j in range(n):
        pivot = matrix[j, j]
        for m in range(j):
            pivot -= chol[j, m] * chol[j, m]
        if not pivot > 0.0:
            return chol, log_det, False
        chol[j, j] = np.sqrt(pivot)
        log_det += 2.0 * np.log(chol[j, j])
        for i in range(j + 1, n):
            entry = matrix[i, j]
            for m in range(j):
                entry -= chol[i, m] * chol[j, m]
            chol[i, j] = entry / chol[j, j]
    return chol, log_det, True


@numba.njit(cache=True)
def _inverse_from_cholesky(chol):
    n = chol.shape[0]
    chol_inv = np.zeros((n, n))
    for j in range(n):
        chol_inv[j, j] = 1.0 / chol[j, j]
        for i in range(j + 1, n):
            entry = 0.0
            for m in range(j, i):
                entry -= chol[i, m] * chol_inv[m, j]
            chol_inv[i, j] = entry / chol[i, i]
    inverse = np.zeros((n, n))
    for a in range(n):
        for b in range(a + 1):
            entry = 0.0
            for m in range(a, n):
                entry += chol_inv[m, a] * chol_inv[m, b]
            inverse[a, b] = entry
            inverse[b, a] = entry
    return inverse


@numba.njit(cache=True)
def collapsed_logp(slope, sigma, unit_sd, year_sd, packed):
    """(value, d/dbeta, d/dsigma, d/dunit_sd, d/dyear_sd) of the collapsed log density."""
    (syy_within, sxx, sxy, group_units, group_rows, group_syy, group_zy, group_zz, year_gram,
     year_cross, prior_mean, prior_sd, dense_size) = unpack(packed)
    k = slope.shape[0]
    d = group_zy.shape[1]
    n_fixed = prior_mean.shape[0]
    n_eta = d - n_fixed
    nd = int(dense_size)
    sigma2 = sigma * sigma
    omega2 = unit_sd * unit_sd
    tau2 = year_sd * year_sd
    within, grad_slope = quadratic_part(slope, syy_within, sxx, sxy, sigma2)

    precision, shift, tail = assemble(sigma2, omega2, tau2, group_rows, group_zy, group_zz,
                                      year_gram, year_cross, prior_mean, prior_sd, nd)
    chol, log_det, ok = cholesky_lower(precision)
    if not ok:
        return (np.asarray(-np.inf), np.zeros(k), np.asarray(0.0), np.asarray(0.0),
                np.asarray(0.0))
    cov = _inverse_from_cholesky(chol)
    mean = np.zeros(d)
    quad = 0.0
    for a in range(nd):
        entry = 0.0
        for b in range(nd):
            entry += cov[a, b] * shift[b]
        mean[a] = entry
        quad += shift[a] * entry
    for i in range(nd, d):
        mean[i] = shift[i] / tail[i]
        quad += shift[i] * mean[i]
        log_det += np.log(tail[i])

    n_obs = 0.0
    n_units = 0.0
    value = 0.0
    d_sigma2 = 0.0
    d_omega2 = 0.0
    for g in range(group_units.shape[0]):
        inv_var = 1.0 / (sigma2 + group_rows[g] * omega2)
        n_obs += group_units[g] * group_rows[g]
        n_units += group_units[g]
        value += 0.5 * group_units[g] * np.log(inv_var) - 0.5 * group_syy[g] * inv_var
        trace = 0.0
        form = 0.0
        cross = 0.0
        for a in range(nd):
            row = 0.0
            for b in range(nd):
                trace += cov[a, b] * group_zz[g, a, b]
                row += group_zz[g, a, b] * mean[b]
            form += mean[a] * row
            cross += mean[a] * group_zy[g, a]
        part = (-0.5 * group_units[g] * inv_var + 0.5 * group_syy[g] * inv_var ** 2
                + (-cross + 0.5 * form + 0.5 * trace) * inv_var ** 2)
        d_sigma2 += part
        d_omega2 += group_rows[g] * part
    for a in range(n_fixed):
        value -= np.log(prior_sd[a]) + 0.5 * (prior_mean[a] / prior_sd[a]) ** 2
    value += (-0.5 * (n_obs - n_units) * np.log(sigma2) - 0.5 * within / sigma2
              - 0.5 * n_obs * _LOG_2PI + 0.5 * quad - 0.5 * log_det - n_eta * np.log(year_sd))
    d_sigma2 += -0.5 * (n_obs - n_units) / sigma2 + 0.5 * within / (sigma2 * sigma2)
    d_tau2 = -0.5 * n_eta / tau2
    if n_eta > 0:
        trace = 0.0
        form = 0.0
        cross = 0.0
        norm = 0.0
        for a in range(n_eta):
            i = n_fixed + a
            row = 0.0
            for b in range(n_eta):
                row += year_gram[a, b] * mean[n_fixed + b]
            form += mean[i] * row
            cross += mean[i] * year_cross[a]
            if i < nd:
                for b in range(n_eta):
                    if n_fixed + b < nd:
                        trace += cov[i, n_fixed + b] * year_gram[a, b]
                norm += mean[i] ** 2 + cov[i, i]
            else:
                trace += year_gram[a, a] / tail[i]
                norm += mean[i] ** 2 + 1.0 / tail[i]
        d_sigma2 += (-cross + 0.5 * form + 0.5 * trace) / (sigma2 * sigma2)
        d_tau2 += 0.5 * norm / (tau2 * tau2)
    return (np.asarray(value), grad_slope, np.asarray(2.0 * sigma * d_sigma2),
            np.asarray(2.0 * unit_sd * d_omega2), np.asarray(2.0 * year_sd * d_tau2))


@numba.njit(cache=True)
def draw_phi(sigma, unit_sd, year_sd, packed, noise):
    """phi ~ N(P^-1 b, P^-1) for each draw: row n uses sigma[n], unit_sd[n], year_sd[n] and
    the standard normal noise[n] (shape (draws, d))."""
    (_, _, _, _, group_rows, _, group_zy, group_zz, year_gram, year_cross, prior_mean,
     prior_sd, dense_size) = unpack(packed)
    nd = int(dense_size)
    d = group_zy.shape[1]
    phi = np.empty(noise.shape)
    for n in range(noise.shape[0]):
        precision, shift, tail = assemble(sigma[n] ** 2, unit_sd[n] ** 2, year_sd[n] ** 2,
                                          group_rows, group_zy, group_zz, year_gram,
                                          year_cross, prior_mean, prior_sd, nd)
        chol, _, ok = cholesky_lower(precision)
        if not ok:
            phi[n] = np.nan
            continue
        # mean: L w = b, L' m = w; deviation: L' x = z, so that x ~ N(0, P^-1).
        work = np.empty(nd)
        for i in range(nd):
            entry = shift[i]
            for m in range(i):
                entry -= chol[i, m] * work[m]
            work[i] = entry / chol[i, i]
        for i in range(nd - 1, -1, -1):
            entry = work[i] + noise[n, i]
            for m in range(i + 1, nd):
                entry -= chol[m, i] * phi[n, m]
            phi[n, i] = entry / chol[i, i]
        for i in range(nd, d):
            phi[n, i] = (shift[i] + np.sqrt(tail[i]) * noise[n, i]) / tail[i]
    return phi


_OP: dict[str, Any] = {}


def _make_op():
    from pytensor.link.numba.dispatch.basic import (
        numba_njit,
        register_funcify_default_op_cache_key,
    )

    from models.bayes.fused_op import fused_logp_base

    class CollapsedTWFELogp(fused_logp_base(N_PARAMETERS)):
        """log p(y | beta, sigma, unit_sd, year_sd), intercept, Mundlak terms, year and unit
        effects integrated out, with its gradient in the four parameters as further outputs.
        The last input is the packed statistics (:func:`models.panel.collapsed.pack_stats`)."""

        def __reduce__(self):
            # The class is made at first use, so a pickled graph names the factory.
            return fused_op, ()

        def perform(self, node, inputs, outputs):
            slope, sigma, unit_sd, year_sd, packed = inputs
            values = collapsed_logp(np.asarray(slope, np.float64), float(sigma),
                                    float(unit_sd), float(year_sd),
                                    np.ascontiguousarray(packed, np.float64))
            for slot, value in zip(outputs, values, strict=True):
                slot[0] = np.asarray(value, dtype=np.float64)

    @register_funcify_default_op_cache_key(CollapsedTWFELogp)
    def funcify(op, node, **kwargs):
        @numba_njit
        def collapsed_twfe_logp(slope, sigma, unit_sd, year_sd, packed):
            return collapsed_logp(slope, sigma.item(), unit_sd.item(), year_sd.item(), packed)

        return collapsed_twfe_logp

    return CollapsedTWFELogp()


def fused_op():
    """The one instance of the fused collapsed TWFE log-density Op (made at first use)."""
    if "op" not in _OP:
        _OP["op"] = _make_op()
    return _OP["op"]


def collapsed_normal_logp_fused(packed, slope, sigma, unit_sd, year_sd=None):
    """log p(y | beta, sigma, unit_sd, year_sd) of :mod:`models.panel.collapsed` as one Op.

    ``packed`` is :func:`models.panel.collapsed.pack_stats` of the statistics (an array or a
    data container); ``year_sd`` is None without year effects.
    """
    import pytensor.tensor as pt

    year_sd = pt.constant(1.0) if year_sd is None else year_sd
    return fused_op()(slope, sigma, unit_sd, year_sd, packed)[0]

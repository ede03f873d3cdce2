"""The marginalised Gaussian TWFE log density as one PyTensor Op with a fused numba kernel.

It computes exactly :func:`models.panel.marginal.marginal_normal_logp` (same formula, same
sufficient statistics) and its gradient in one pass. Written as ~100 elementwise and dot
nodes, the log density and gradient cost about 25 microseconds per evaluation, almost all of
it per-node overhead on vectors of a few dozen numbers; fused, NUTS spends its time on the
geometry instead. The symbolic version stays the reference the tests hold this Op to.

Inputs: alpha, beta (k), lambda (k), tau (T, empty without year effects), sigma, unit_sd,
then the :data:`models.panel.marginal.MODEL_FIELDS` statistics in that order. Outputs: the log
density and its gradient in each of the six parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.panel.kernels import quadratic_part

_LOG_2PI = float(np.log(2.0 * np.pi))
N_PARAMETERS = 6
# alpha, sigma, unit_sd, ||P y||^2 and the centre of ybar are scalars.
_SCALAR_INPUTS = (0, 4, 5, 6, 11)


def _kernel(intercept, slope, between, year, sigma, unit_sd, syy_within, sxx, sxy, year_cross,
            year_gram, ybar_centre, group_units, group_rows, group_syy, group_zy, group_zz):
    k = slope.shape[0]
    n_years = year.shape[0]
    d = 1 + k + n_years
    sigma2 = sigma * sigma
    omega2 = unit_sd * unit_sd
    # within: W = syy - 2 beta'sxy + beta'Sxx beta - 2 tau'c + tau'G tau
    within, grad_slope = quadratic_part(slope, syy_within, sxx, sxy, sigma2)
    within, grad_year = quadratic_part(year, within, year_gram, year_cross, sigma2)
    theta = np.empty(d)
    theta[0] = intercept - ybar_centre
    theta[1:1 + k] = between
    theta[1 + k:] = year
    grad_theta = np.zeros(d)
    n_obs = 0.0
    n_units = 0.0
    log_var = 0.0
    between_term = 0.0
    d_sigma2 = 0.0
    d_omega2 = 0.0
    for g in range(group_units.shape[0]):
        variance = sigma2 + group_rows[g] * omega2
        ss = group_syy[g]
        for a in range(d):
            row = 0.0
            for b in range(d):
                row += group_zz[g, a, b] * theta[b]
            ss += theta[a] * (row - 2.0 * group_zy[g, a])
            grad_theta[a] -= (row - group_zy[g, a]) / variance
        n_obs += group_units[g] * group_rows[g]
        n_units += group_units[g]
        log_var += group_units[g] * np.log(variance)
        between_term += ss / variance
        d_sigma2 += -0.5 * group_units[g] / variance + 0.5 * ss / (variance * variance)
        d_omega2 += group_rows[g] * (-0.5 * group_units[g] / variance
                                     + 0.5 * ss / (variance * variance))
    value = (-0.5 * (n_obs - n_units) * np.log(sigma2) - 0.5 * log_var - 0.5 * within / sigma2
             - 0.5 * between_term - 0.5 * n_obs * _LOG_2PI)
    d_sigma2 += -0.5 * (n_obs - n_units) / sigma2 + 0.5 * within / (sigma2 * sigma2)
    grad_intercept = grad_theta[0]
    grad_between = grad_theta[1:1 + k].copy()
    for a in range(n_years):
        grad_year[a] += grad_theta[1 + k + a]
    return (np.asarray(value), np.asarray(grad_intercept), grad_slope, grad_between, grad_year,
            np.asarray(2.0 * sigma * d_sigma2), np.asarray(2.0 * unit_sd * d_omega2))


_COMPILED: dict[str, Any] = {}


def _jitted():
    if "kernel" not in _COMPILED:
        import numba

        from models.bayes.kernel_cache import install

        install()
        _COMPILED["kernel"] = numba.njit(cache=True)(_kernel)
    return _COMPILED["kernel"]


def _make_op():
    from pytensor.link.numba.dispatch.basic import (
        numba_njit,
        register_funcify_default_op_cache_key,
    )

    from models.bayes.fused_op import fused_logp_base

    class MarginalTWFELogp(fused_logp_base(N_PARAMETERS)):
        """log p(y | alpha, beta, lambda, tau, sigma, unit_sd), unit effects integrated out,
        with its gradient in the six parameters as further outputs."""

        def __reduce__(self):
            # The class is made at first use, so a pickled graph names the factory.
            return fused_op, ()

        def perform(self, node, inputs, outputs):
            values = _jitted()(*[float(v) if j in _SCALAR_INPUTS else np.asarray(v, np.float64)
                                 for j, v in enumerate(inputs)])
            for slot, value in zip(outputs, values, strict=True):
                slot[0] = np.asarray(value, dtype=np.float64)

    kernel = numba_njit(_kernel)

    @register_funcify_default_op_cache_key(MarginalTWFELogp)
    def funcify(op, node, **kwargs):
        @numba_njit
        def marginal_twfe_logp(intercept, slope, between, year, sigma, unit_sd, syy_within,
                               sxx, sxy, year_cross, year_gram, ybar_centre, group_units,
                               group_rows, group_syy, group_zy, group_zz):
            return kernel(intercept.item(), slope, between, year, sigma.item(), unit_sd.item(),
                          syy_within.item(), sxx, sxy, year_cross, year_gram,
                          ybar_centre.item(), group_units, group_rows, group_syy, group_zy,
                          group_zz)

        return marginal_twfe_logp

    return MarginalTWFELogp()


def fused_op():
    """The one instance of the fused marginal TWFE log-density Op (made at first use)."""
    if "op" not in _COMPILED:
        _COMPILED["op"] = _make_op()
    return _COMPILED["op"]


def marginal_normal_logp_fused(stats, intercept, slope, between, year_effect, sigma, unit_sd):
    """:func:`models.panel.marginal.marginal_normal_logp` as one fused Op (same value).

    ``stats`` holds the :data:`models.panel.marginal.MODEL_FIELDS` (arrays or data containers;
    ``year_cross`` / ``year_gram`` empty when ``year_effect`` is None).
    """
    import pytensor.tensor as pt

    from models.panel.marginal import MODEL_FIELDS

    year = pt.zeros(0) if year_effect is None else year_effect
    outputs = fused_op()(intercept, slope, between, year, sigma, unit_sd,
                              *[getattr(stats, name) for name in MODEL_FIELDS])
    return outputs[0]

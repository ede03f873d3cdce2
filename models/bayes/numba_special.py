"""Special functions for PyTensor's NUMBA mode whose compiled code numba can cache on disk.

PyTensor compiles ``psi`` (digamma) by calling SciPy's Cython function through its address,
which it must look up in every process, so a graph containing it has no cache key and its
whole log density is compiled again in every run: 12.5 s of each negative-binomial event-study
fit measured here with every other piece cached. The gradient of every log density with a
``gammaln`` of a parameter holds ``psi`` (the negative binomial's dispersion, the Student-t's
degrees of freedom).

:func:`register` gives PyTensor a pure-numba digamma with a cache key instead. It agrees with
``scipy.special.psi`` to 1e-13 relative for x > 0 (1e-15 absolute beside its root at 1.46) and
1e-11 relative for x < 0 (tested), with the same values at +-0, the negative integers, +-inf
and nan.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from models.bayes.kernel_cache import install as _install_kernel_cache

_install_kernel_cache()

# Versioned so that a change of the implementation cannot load an older cached one.
DIGAMMA_VERSION = 1

# B_2k / (2k) for k = 1..7: digamma(x) ~ log x - 1/(2x) - sum_k B_2k / (2k x^2k).
_ASYMPTOTIC = (1.0 / 12.0, -1.0 / 120.0, 1.0 / 252.0, -1.0 / 240.0, 1.0 / 132.0,
               -691.0 / 32760.0, 1.0 / 12.0)
# Beyond this the asymptotic series' first omitted term is below 1e-17 relative.
_ASYMPTOTIC_FROM = 10.0


@numba.njit(cache=True)
def digamma(x: float) -> float:
    """psi(x) = d/dx log Gamma(x): recurrence up to x >= 10, then the asymptotic series;
    reflection for x < 0."""
    if math.isnan(x):
        return math.nan
    if x == 0.0:
        return -math.inf if math.copysign(1.0, x) > 0 else math.inf
    if math.isinf(x):
        return math.inf if x > 0 else math.nan
    shift = 0.0
    if x < 0.0:
        if x == math.floor(x):
            return math.nan
        # psi(x) = psi(1 - x) - pi / tan(pi x); the tangent of pi * (x - round(x)) keeps the
        # argument small, so large negative x lose no digits.
        shift = -math.pi / math.tan(math.pi * (x - math.floor(x + 0.5)))
        x = 1.0 - x
    while x < _ASYMPTOTIC_FROM:
        shift -= 1.0 / x
        x += 1.0
    inverse_square = 1.0 / (x * x)
    series = 0.0
    for coefficient in _ASYMPTOTIC[::-1]:
        series = series * inverse_square + coefficient
    return shift + math.log(x) - 0.5 / x - series * inverse_square


_REGISTERED: list[bool] = []


def register() -> None:
    """Make PyTensor's NUMBA mode compile ``psi`` with :func:`digamma` and a cache key
    (once per process; later calls do nothing)."""
    if _REGISTERED:
        return
    from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key
    from pytensor.link.numba.dispatch.scalar import scalar_op_cache_key
    from pytensor.scalar.math import Psi

    @register_funcify_and_cache_key(Psi)
    def numba_funcify_psi(op, node, **kwargs):
        output = np.dtype(node.outputs[0].type.dtype)
        cast = np.float32 if output == np.float32 else np.float64

        @numba.njit
        def psi(x):
            return cast(digamma(np.float64(x)))

        return psi, scalar_op_cache_key(op, implementation=__name__,
                                        version=DIGAMMA_VERSION, dtype=str(output))

    _REGISTERED.append(True)

"""The C callbacks through which nutpie samples the scales of :mod:`models.panel.scales`.

nutpie calls them from its own threads, without Python: the log density and gradient of
:func:`models.panel.scales_op.balanced_scales_logp` (balanced panels; the unbalanced ones use
:mod:`models.panel.scales_general_callbacks`), and the expansion of a draw theta into the
scales exp(theta). Both read all their data from one float vector
(:func:`models.panel.scales.pack_scales`, its length first) through nutpie's user-data
pointer, so they hold no dynamic globals and numba caches them on disk with the kernels
(``cache=True``): compiled once per machine (per checkout), loaded in milliseconds after.
A C callback is compiled when its module is first imported, hence modules of their own, and
one per form: a machine that only fits balanced panels never compiles the general kernel.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types

from models.bayes.kernel_cache import install as _install_kernel_cache
from models.panel.scales_op import balanced_scales_logp

_install_kernel_cache()

LOGP_SIGNATURE = types.int64(types.uint64, types.CPointer(types.double),
                              types.CPointer(types.double), types.CPointer(types.double),
                              types.voidptr)
_EXPAND_SIGNATURE = types.int64(types.uint64, types.uint64, types.CPointer(types.double),
                                types.CPointer(types.double), types.voidptr)


@numba.njit(cache=True)
def packed_view(user_data):
    """The packed vector behind nutpie's user-data pointer (its first entry is its length)."""
    length = int(numba.carray(user_data, (1,), np.float64)[0])
    return numba.carray(user_data, (length,), np.float64)


@numba.njit(cache=True)
def store(value, gradient, grad_, logp_):
    """Write the value and gradient where nutpie reads them; the status nutpie expects."""
    dim = gradient.shape[0]
    grad = numba.carray(grad_, (dim,))
    numba.carray(logp_, (1,))[0] = value
    for j in range(dim):
        grad[j] = gradient[j]
    if not np.all(np.isfinite(gradient)):
        return 3
    if not np.isfinite(value):
        return 4
    return 0


@numba.cfunc(LOGP_SIGNATURE, cache=True)
def logp_callback(dim, theta_, grad_, logp_, user_data):
    """nutpie's log density callback: status 0 on success, 3/4 for a non-finite gradient or
    value (nutpie counts those as divergences), -1 for a wrong dimension or form."""
    packed = packed_view(user_data)
    if dim != int(packed[1]) or packed[12] != 1.0:
        return -1
    value, gradient = balanced_scales_logp(numba.carray(theta_, (dim,)), packed)
    return store(value, gradient, grad_, logp_)


@numba.cfunc(_EXPAND_SIGNATURE, cache=True)
def expand_callback(dim, n_expanded, theta_, out_, user_data):
    """nutpie's draw callback: the scales sigma, unit_sd[, year_sd] = exp(theta)."""
    if n_expanded != dim:
        return -1
    theta = numba.carray(theta_, (dim,))
    out = numba.carray(out_, (n_expanded,))
    for j in range(dim):
        out[j] = math.exp(theta[j])
    return 0

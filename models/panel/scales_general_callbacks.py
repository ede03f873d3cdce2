"""nutpie's log density callback for the general (unbalanced) form of the scales-only TWFE.

As :mod:`models.panel.scales_callbacks`, for a packed vector of the general form
(:func:`models.panel.scales_op.general_scales_logp`): several groups of units by their
number of rows, or year coordinates coupled to the intercept and Mundlak terms. A module of
its own so that only a machine fitting such panels compiles it.
"""

from __future__ import annotations

import numba

from models.bayes.kernel_cache import install as _install_kernel_cache
from models.panel.scales_callbacks import LOGP_SIGNATURE, packed_view, store
from models.panel.scales_op import general_scales_logp

_install_kernel_cache()


@numba.cfunc(LOGP_SIGNATURE, cache=True)
def logp_callback(dim, theta_, grad_, logp_, user_data):
    """nutpie's log density callback: status 0 on success, 3/4 for a non-finite gradient or
    value (nutpie counts those as divergences), -1 for a wrong dimension or form."""
    packed = packed_view(user_data)
    if dim != int(packed[1]) or packed[12] != 0.0:
        return -1
    value, gradient = general_scales_logp(numba.carray(theta_, (dim,)), packed)
    return store(value, gradient, grad_, logp_)

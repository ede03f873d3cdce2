"""numba pieces shared by the fused Gaussian TWFE kernels (:mod:`models.panel.marginal_op`,
:mod:`models.panel.collapsed_op`)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def quadratic_part(coef, constant, gram, cross, sigma2):
    """A part of the within sum of squares, W = constant - 2 coef'cross + coef'gram coef (for
    the slopes: ||P y||^2 - 2 beta'X~'y + beta'X~'X~ beta), and the gradient of
    -W / (2 sigma^2) in ``coef``."""
    grad = np.empty(coef.shape[0])
    value = constant
    for a in range(coef.shape[0]):
        row = 0.0
        for b in range(coef.shape[0]):
            row += gram[a, b] * coef[b]
        value += coef[a] * (row - 2.0 * cross[a])
        grad[a] = -(row - cross[a]) / sigma2
    return value, grad

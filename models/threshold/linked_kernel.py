"""The threshold model's marginal log likelihood as one C function that compiled models call
by name.

A numba function that calls another numba function takes in the callee's code and has LLVM
optimise and generate it again with its own. The marginal log likelihood
(:func:`models.threshold.kernels.marginal_loglik`) is large, so every compiled threshold model
(each number of thresholds, each set of regressors) spent 7-11 s of a cold start generating
the same kernel once more: the four models of a 0-3 threshold comparison on Hansen's data
took 84 s to compile on empty caches that way, and take 54 s this way. Here the kernel is
compiled once per machine as a C function (``numba.cfunc``, cached on disk), registered with
LLVM under a name, and the models call that name as an external function: their code holds
the name, not the kernel, and the name is resolved in each process when the code is loaded.
The name carries a digest of the kernels' source, so a model compiled against other kernels
never finds this one.

C signature: ``int64 f(int64 *dims, double *theta, double sigma, double dof, double yy,
double *base_y, double *base_gram, double *split_y, double *split_base, double *split_diag,
double *gram, int64 *configs, double *prior, int64 *rows, double *out)``, every array
C-contiguous, ``dims`` as :func:`kernel_dims` lays it out, and ``out`` receiving the value,
d/dsigma and d/dtheta (2 + P entries). It returns 0, or 1 when the kernel raised (a sigma
that underflowed to zero, say): a C function cannot pass a Python exception on, and numba
would print the exception, drop it and leave ``out`` as it was, so the caller raises instead
(:mod:`models.threshold.op`) and the sampler rejects the point as it did before.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import types

from models.bayes.kernel_cache import install as _install_kernel_cache
from models.threshold.kernels import marginal_loglik

_install_kernel_cache()

# (P, n_fixed, n_regime, k), then the shape of each array argument in signature order
_RANKS = (1, 2, 2, 3, 3, 3, 2, 1, 2)  # base_y .. rows
N_DIMS = 4 + sum(_RANKS)

_DOUBLES = types.CPointer(types.double)
_INTS = types.CPointer(types.int64)
SIGNATURE = types.int64(_INTS, _DOUBLES, types.double, types.double, types.double,
                       _DOUBLES, _DOUBLES, _DOUBLES, _DOUBLES, _DOUBLES, _DOUBLES,
                       _INTS, _DOUBLES, _INTS, _DOUBLES)


@numba.cfunc(SIGNATURE, cache=True)
def _c_marginal_loglik(dims_, theta_, sigma, dof, yy, base_y_, base_gram_, split_y_,
                       split_base_, split_diag_, gram_, configs_, prior_, rows_, out_):
    dims = numba.carray(dims_, (N_DIMS,))
    size, n_fixed, n_regime, k = dims[0], dims[1], dims[2], dims[3]
    theta = numba.carray(theta_, (size,))
    base_y = numba.carray(base_y_, (dims[4],))
    base_gram = numba.carray(base_gram_, (dims[5], dims[6]))
    split_y = numba.carray(split_y_, (dims[7], dims[8]))
    split_base = numba.carray(split_base_, (dims[9], dims[10], dims[11]))
    split_diag = numba.carray(split_diag_, (dims[12], dims[13], dims[14]))
    gram = numba.carray(gram_, (dims[15], dims[16], dims[17]))
    configs = numba.carray(configs_, (dims[18], dims[19]))
    prior = numba.carray(prior_, (dims[20],))
    rows = numba.carray(rows_, (dims[21], dims[22]))
    out = numba.carray(out_, (2 + size,))
    try:
        value, grad_theta, grad_sigma = marginal_loglik(
            theta, sigma, n_fixed, n_regime, k, dof, yy, base_y, base_gram, split_y,
            split_base, split_diag, gram, configs, prior, rows)
    except Exception:
        return 1
    out[0] = value
    out[1] = grad_sigma
    for p in range(size):
        out[2 + p] = grad_theta[p]
    return 0


_REGISTERED: dict[str, Any] = {}


def external_kernel(source_hash: str):
    """The numba external function calling the C kernel by a name that carries
    ``source_hash``; registers the name with LLVM on first use in the process."""
    if source_hash not in _REGISTERED:
        import llvmlite.binding as llvm

        name = f"ai_innovation_threshold_marginal_loglik_{source_hash}"
        llvm.add_symbol(name, _c_marginal_loglik.address)
        _REGISTERED[source_hash] = types.ExternalFunction(name, SIGNATURE)
    return _REGISTERED[source_hash]


@numba.njit(cache=True)
def kernel_dims(size, n_fixed, n_regime, k, base_y, base_gram, split_y, split_base,
                split_diag, gram, configs, prior, rows):
    """The ``dims`` argument of the C kernel: P, n_fixed, n_regime, k and every array's
    shape."""
    dims = np.empty(N_DIMS, dtype=np.int64)
    dims[0], dims[1], dims[2], dims[3] = size, n_fixed, n_regime, k
    dims[4] = base_y.shape[0]
    dims[5], dims[6] = base_gram.shape
    dims[7], dims[8] = split_y.shape
    dims[9], dims[10], dims[11] = split_base.shape
    dims[12], dims[13], dims[14] = split_diag.shape
    dims[15], dims[16], dims[17] = gram.shape
    dims[18], dims[19] = configs.shape
    dims[20] = prior.shape[0]
    dims[21], dims[22] = rows.shape
    return dims

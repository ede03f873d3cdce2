"""The exact marginal over the thresholds as one PyTensor Op.

The Op computes log sum_gamma p(gamma) p(y~ | theta, gamma, sigma).

One node of the PyMC graph computes the value and its gradient in the slopes theta and sigma
together (:func:`models.threshold.kernels.marginal_loglik`, a numba kernel compiled
with ``cache=True``; ``perform`` calls it, and under nutpie's numba backend a compiled model
calls it as a C function by name, :mod:`models.threshold.linked_kernel`), so the compiled log
density is a handful of nodes whatever the number of thresholds and regressors.
The Op has a PyTensor cache key (its sizes and the source of the kernels), so the compiled
model is kept in PyTensor's numba cache and the next process loads it
(:mod:`models.bayes.nutpie_compile`).

Importing this module does not import PyTensor; the Op class is built on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.threshold.data import ThresholdData
from models.threshold.likelihood import config_arrays, pair_gram_by_entry, split_diagonal
from models.threshold.row_kernels import config_rows

# Statistics the Op reads, in input order after theta and sigma. The first five may be
# replaced by shared variables (``data``) so that one compiled model serves many outcomes.
STATISTIC_NAMES = ("yy", "base_y", "base_gram", "split_y", "split_base", "split_diag",
                   "pair_gram", "configs", "config_prior", "config_rows")
SHAREABLE = ("yy", "base_y", "base_gram", "split_y", "split_base", "config_prior")

_OP_CLASS: list[Any] = []
_SOURCE_HASH: list[str] = []


def _kernel_source_hash() -> str:
    """The digest numba's kernel cache stamps this subpackage with
    (:func:`models.bayes.kernel_cache.subpackage_stamp`: every numba file here, the kernels,
    the C function around them and this module among them), shortened."""
    if not _SOURCE_HASH:
        from pathlib import Path

        from models.bayes.kernel_cache import subpackage_stamp

        _SOURCE_HASH.append(subpackage_stamp(Path(__file__).resolve().parent)[:16])
    return _SOURCE_HASH[0]


def marginal_statistics(stats: ThresholdData, k: int, log_prior_cfg: np.ndarray
                        ) -> dict[str, np.ndarray]:
    """The Op's statistics as contiguous float64 / int64 arrays, keyed by
    :data:`STATISTIC_NAMES` (empty placeholders for the configuration terms when k = 0)."""
    configs, config_prior = config_arrays(log_prior_cfg)
    if k:
        split_y, split_base = stats.split_y, stats.split_base
        diagonal, gram = split_diagonal(stats), pair_gram_by_entry(stats)
    else:
        n_regime, n_base = stats.n_regime, stats.base.shape[1]
        split_y, split_base = np.zeros((0, n_regime)), np.zeros((0, n_regime, n_base))
        diagonal, gram = np.zeros((0, n_regime, n_regime)), np.zeros((n_regime**2, 0, 0))
    return {
        "yy": np.asarray(stats.yy, dtype=float),
        "base_y": np.ascontiguousarray(stats.base_y, dtype=float),
        "base_gram": np.ascontiguousarray(stats.base_gram, dtype=float),
        "split_y": np.ascontiguousarray(split_y, dtype=float),
        "split_base": np.ascontiguousarray(split_base, dtype=float),
        "split_diag": diagonal,
        "pair_gram": gram,
        "configs": configs,
        "config_prior": config_prior,
        "config_rows": config_rows(configs) if k == 2 else np.zeros((0, 3), dtype=np.int64),
    }


def marginal_loglik_tensor(theta, sigma, stats: ThresholdData, k: int, log_prior_cfg,
                           data: dict | None = None):
    """PyTensor expression of log sum_gamma p(gamma) p(y~ | theta, gamma, sigma).

    ``theta`` (P,) regime-form slopes and ``sigma`` are tensors; ``data`` may hold shared
    variables replacing the statistics named in :data:`SHAREABLE` (e.g. ``pm.Data``), so that
    one compiled model serves many outcomes on the same covariates.
    """
    inputs = marginal_statistics(stats, k, log_prior_cfg)
    inputs.update({name: value for name, value in (data or {}).items() if name in SHAREABLE})
    op = marginal_loglik_op(stats.n_fixed, stats.n_regime, k, stats.dof)
    return op(theta, sigma, *(inputs[name] for name in STATISTIC_NAMES))[0]


def marginal_loglik_op(n_fixed: int, n_regime: int, k: int, dof: int):
    """The Op for a model with ``n_fixed`` fixed slopes, ``n_regime`` regime regressors, k
    thresholds and ``dof`` degrees of freedom (outputs: value, d/dtheta, d/dsigma)."""
    if not _OP_CLASS:
        _OP_CLASS.append(_make_op_class())
    return _OP_CLASS[0](n_fixed, n_regime, k, dof)


def _make_op_class():
    import pytensor.tensor as pt
    from pytensor.gradient import grad_undefined
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op
    from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_and_cache_key

    from models.threshold.kernels import marginal_loglik

    class MarginalLogLik(Op):
        """log sum_j p(j) p(y~ | theta, j, sigma) with its gradient in theta and sigma.

        Inputs: theta (P,), sigma (), then the statistics of :data:`STATISTIC_NAMES`.
        Outputs: the value, d value / d theta and d value / d sigma; the Op's own gradient
        reads the last two off, so value and gradient cost one pass over the configurations.
        """

        __props__ = ("n_fixed", "n_regime", "k", "dof")

        def __init__(self, n_fixed: int, n_regime: int, k: int, dof: int):
            self.n_fixed, self.n_regime, self.k, self.dof = (int(n_fixed), int(n_regime),
                                                            int(k), int(dof))
            super().__init__()

        def __reduce__(self):
            # The class is made at first use (PyTensor imports late), so a pickled graph
            # (models.bayes.graph_recipe) names the module-level factory instead.
            return marginal_loglik_op, (self.n_fixed, self.n_regime, self.k, self.dof)

        def load_native_symbols(self):
            """Register the kernel's C symbol with LLVM (converting the Op does it too): graph
            code loaded from numba's cache calls the kernel by that name."""
            from models.threshold.linked_kernel import external_kernel

            external_kernel(_kernel_source_hash())

        def make_node(self, theta, sigma, *statistics):
            theta = pt.as_tensor(theta, dtype="float64")
            sigma = pt.as_tensor(sigma, dtype="float64")
            statistics = [pt.as_tensor(value) for value in statistics]
            return Apply(self, [theta, sigma, *statistics],
                         [pt.dscalar(), theta.type(), pt.dscalar()])

        def perform(self, node, inputs, outputs):
            theta, sigma, *statistics = inputs
            value, grad_theta, grad_sigma = marginal_loglik(
                np.ascontiguousarray(theta, dtype=float), float(sigma), self.n_fixed,
                self.n_regime, self.k, float(self.dof), float(statistics[0]),
                *(np.ascontiguousarray(v) for v in statistics[1:]))
            outputs[0][0] = np.asarray(value)
            outputs[1][0] = grad_theta
            outputs[2][0] = np.asarray(grad_sigma)

        def grad(self, inputs, output_grads):
            _, grad_theta, grad_sigma = self(*inputs)
            upstream = output_grads[0]
            return [upstream * grad_theta, upstream * grad_sigma] + [
                grad_undefined(self, j, inputs[j]) for j in range(2, len(inputs))]

    @register_funcify_and_cache_key(MarginalLogLik)
    def funcify(op, node, **kwargs):
        from models.threshold.linked_kernel import external_kernel, kernel_dims

        n_fixed, n_regime, k, dof = op.n_fixed, op.n_regime, op.k, float(op.dof)
        # the kernel by name, not linked in: see models.threshold.linked_kernel
        kernel = external_kernel(_kernel_source_hash())

        @numba_njit
        def marginal(theta, sigma, yy, base_y, base_gram, split_y, split_base, split_diag,
                     gram, configs, prior, rows):
            # the C function reads plain C-ordered memory; numba's ascontiguousarray returns
            # an array that already is (every statistic here) without copying it
            slopes = np.ascontiguousarray(theta)
            arrays = (np.ascontiguousarray(base_y), np.ascontiguousarray(base_gram),
                      np.ascontiguousarray(split_y), np.ascontiguousarray(split_base),
                      np.ascontiguousarray(split_diag), np.ascontiguousarray(gram),
                      np.ascontiguousarray(configs), np.ascontiguousarray(prior),
                      np.ascontiguousarray(rows))
            size = slopes.shape[0]
            dims = kernel_dims(size, n_fixed, n_regime, k, *arrays)
            out = np.empty(2 + size)
            status = kernel(dims.ctypes, slopes.ctypes, sigma.item(), dof, yy.item(),
                            arrays[0].ctypes, arrays[1].ctypes, arrays[2].ctypes,
                            arrays[3].ctypes, arrays[4].ctypes, arrays[5].ctypes,
                            arrays[6].ctypes, arrays[7].ctypes, arrays[8].ctypes, out.ctypes)
            if status != 0:
                # what the kernel raised, passed on (the C function could not)
                raise FloatingPointError("the threshold log likelihood failed at this point")
            return np.asarray(out[0]), out[2:].copy(), np.asarray(out[1])

        # PyTensor's cached graph code names the kernel's symbol, which carries the kernels'
        # source hash, as does this key: editing the kernels invalidates the graphs compiled
        # against the old ones.
        return marginal, f"MarginalLogLik-linked-{op.n_fixed}-{op.n_regime}-{op.k}-" \
            f"{op.dof}-{_kernel_source_hash()}"

    return MarginalLogLik


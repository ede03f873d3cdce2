"""The shared shape of the project's fused log-density Ops.

Such an Op takes its parameters first and its data after them, and returns the log density
followed by its gradient in each parameter, computed in the same kernel call. Its ``grad``
reads those outputs off, so a NUTS step costs one kernel call for value and gradient.
"""

from __future__ import annotations

from typing import Any

_BASES: dict[int, Any] = {}


def fused_logp_base(n_parameters: int):
    """A PyTensor Op base class for ``n_parameters`` parameter inputs; subclasses add
    ``perform`` and a numba funcify."""
    if n_parameters not in _BASES:
        import pytensor.tensor as pt
        from pytensor.gradient import grad_undefined
        from pytensor.graph.basic import Apply
        from pytensor.graph.op import Op

        class FusedLogp(Op):
            __props__ = ()

            def make_node(self, *inputs):
                inputs = [pt.as_tensor(v, dtype="float64") for v in inputs]
                outputs = [pt.dscalar()] + [inputs[j].type() for j in range(n_parameters)]
                return Apply(self, inputs, outputs)

            def grad(self, inputs, output_grads):
                gradients = self(*inputs)[1:]
                upstream = output_grads[0]
                return [upstream * g for g in gradients] + [
                    grad_undefined(self, j, inputs[j]) for j in range(n_parameters, len(inputs))]

        _BASES[n_parameters] = FusedLogp
    return _BASES[n_parameters]

r"""Data envelopment analysis (DEA): input-oriented CCR and BCC efficiency scores.

Each decision-making unit (DMU) ``o`` of ``n`` units with inputs ``x_j`` (``m`` of them) and
outputs ``y_j`` (``s`` of them) gets its radial efficiency from the envelopment linear program

.. math::

    \theta_o^* = \min_{\theta, \lambda} \theta \quad \text{s.t.} \quad
    \sum_j \lambda_j x_{ij} \le \theta x_{io} \; (i = 1..m), \quad
    \sum_j \lambda_j y_{rj} \ge y_{ro} \; (r = 1..s), \quad \lambda_j \ge 0,

which is the CCR model (Charnes, Cooper & Rhodes 1978; constant returns to scale). The BCC model
(Banker, Charnes & Cooper 1984; variable returns to scale) adds the convexity constraint
:math:`\sum_j \lambda_j = 1`. The reference set is every DMU (or every DMU of the same group, see
``groups``), the evaluated one included, so :math:`0 < \theta_o^* \le 1` and
:math:`\theta^{BCC}_o \ge \theta^{CCR}_o`. The score is the radial (phase-one) efficiency: a
unit with :math:`\theta^* = 1` may still carry slacks (weak efficiency); no second phase
maximises them.

Each program is solved with :func:`scipy.optimize.linprog` (HiGHS). The constraint matrix is built
once per reference set; only the column of :math:`\theta` and the output right-hand side change
from one DMU to the next.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.optimize import linprog

Returns = Literal["constant", "variable"]


def _as_matrix(values: np.ndarray, name: str) -> np.ndarray:
    matrix = np.asarray(values, dtype=float)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (n_dmu, n_{name}) array, got {matrix.shape}")
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{name} hold a missing or non-finite value at DMU {row}, column {col}")
    return matrix


def _check(inputs: np.ndarray, outputs: np.ndarray) -> None:
    if inputs.shape[0] != outputs.shape[0]:
        raise ValueError(
            f"inputs have {inputs.shape[0]} DMUs but outputs have {outputs.shape[0]}; "
            "one row per DMU in both"
        )
    if (inputs <= 0).any():
        row, col = np.argwhere(inputs <= 0)[0]
        raise ValueError(
            f"inputs must be strictly positive; DMU {row}, input column {col} holds "
            f"{inputs[row, col]!r}"
        )
    if (outputs < 0).any():
        row, col = np.argwhere(outputs < 0)[0]
        raise ValueError(
            f"outputs must be non-negative; DMU {row}, output column {col} holds "
            f"{outputs[row, col]!r}"
        )
    empty = ~(outputs > 0).any(axis=1)
    if empty.any():
        raise ValueError(
            f"every DMU needs at least one positive output; DMU {int(np.flatnonzero(empty)[0])} "
            "has none"
        )


def _solve_reference_set(inputs: np.ndarray, outputs: np.ndarray, returns: Returns) -> np.ndarray:
    """Envelopment LPs for every DMU of one reference set; variables are (theta, lambda_1..n)."""
    n_dmu, n_inputs = inputs.shape
    n_outputs = outputs.shape[1]
    # Rows: m input constraints  sum_j l_j x_ij - theta x_io <= 0,
    #       s output constraints -sum_j l_j y_rj <= -y_ro.
    constraints = np.zeros((n_inputs + n_outputs, 1 + n_dmu))
    constraints[:n_inputs, 1:] = inputs.T
    constraints[n_inputs:, 1:] = -outputs.T
    rhs = np.zeros(n_inputs + n_outputs)
    objective = np.zeros(1 + n_dmu)
    objective[0] = 1.0
    bounds = [(None, None)] + [(0.0, None)] * n_dmu
    if returns == "variable":
        convexity = np.ones((1, 1 + n_dmu))
        convexity[0, 0] = 0.0
        equality, equality_rhs = convexity, np.ones(1)
    else:
        equality, equality_rhs = None, None
    scores = np.empty(n_dmu)
    for dmu in range(n_dmu):
        constraints[:n_inputs, 0] = -inputs[dmu]
        rhs[n_inputs:] = -outputs[dmu]
        solution = linprog(
            objective,
            A_ub=constraints,
            b_ub=rhs,
            A_eq=equality,
            b_eq=equality_rhs,
            bounds=bounds,
            method="highs",
        )
        if solution.status != 0:
            raise RuntimeError(f"DEA program of DMU {dmu} failed: {solution.message}")
        scores[dmu] = solution.x[0]
    # The evaluated DMU is in its own reference set, so theta <= 1 up to solver tolerance.
    return np.clip(scores, None, 1.0)


def dea_efficiency(
    inputs: np.ndarray,
    outputs: np.ndarray,
    returns: Returns = "constant",
    groups: np.ndarray | None = None,
) -> np.ndarray:
    r"""Input-oriented radial DEA efficiency of every DMU.

    For DMU ``o`` solve :math:`\min \theta` subject to
    :math:`\sum_j \lambda_j x_j \le \theta x_o`, :math:`\sum_j \lambda_j y_j \ge y_o`,
    :math:`\lambda \ge 0`, and for ``returns="variable"`` also :math:`\sum_j \lambda_j = 1`;
    the sum runs over the DMUs of ``o``'s reference set.

    Parameters
    ----------
    inputs
        ``(n_dmu, n_inputs)`` strictly positive inputs (a 1-d array is one input).
    outputs
        ``(n_dmu, n_outputs)`` non-negative outputs, at least one positive per DMU.
    returns
        ``"constant"`` (CCR) or ``"variable"`` (BCC).
    groups
        Optional label per DMU. DMUs are then scored against the frontier of their own group
        only (for example one frontier per year); by default all DMUs share one frontier.

    Returns
    -------
    numpy.ndarray
        ``(n_dmu,)`` efficiency scores :math:`\theta^* \in (0, 1]`.

    Raises
    ------
    ValueError
        On mismatched shapes, non-finite values, non-positive inputs, negative outputs, a DMU
        without positive output, or an unknown ``returns``.
    """
    if returns not in ("constant", "variable"):
        raise ValueError(f"returns must be 'constant' (CCR) or 'variable' (BCC), got {returns!r}")
    input_matrix = _as_matrix(inputs, "inputs")
    output_matrix = _as_matrix(outputs, "outputs")
    _check(input_matrix, output_matrix)
    if groups is None:
        return _solve_reference_set(input_matrix, output_matrix, returns)
    labels = np.asarray(groups)
    if labels.shape != (input_matrix.shape[0],):
        raise ValueError(
            f"groups must hold one label per DMU ({input_matrix.shape[0]}), got {labels.shape}"
        )
    scores = np.empty(input_matrix.shape[0])
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        scores[members] = _solve_reference_set(
            input_matrix[members], output_matrix[members], returns
        )
    return scores


def ccr_efficiency(
    inputs: np.ndarray, outputs: np.ndarray, groups: np.ndarray | None = None
) -> np.ndarray:
    r"""Input-oriented CCR (constant returns) efficiency; see :func:`dea_efficiency`.

    :math:`\theta^*_o = \min \{\theta : \sum_j \lambda_j x_j \le \theta x_o,
    \sum_j \lambda_j y_j \ge y_o, \lambda \ge 0\}`.
    """
    return dea_efficiency(inputs, outputs, returns="constant", groups=groups)


def bcc_efficiency(
    inputs: np.ndarray, outputs: np.ndarray, groups: np.ndarray | None = None
) -> np.ndarray:
    r"""Input-oriented BCC (variable returns) efficiency; see :func:`dea_efficiency`.

    :math:`\theta^*_o = \min \{\theta : \sum_j \lambda_j x_j \le \theta x_o,
    \sum_j \lambda_j y_j \ge y_o, \sum_j \lambda_j = 1, \lambda \ge 0\}`.
    """
    return dea_efficiency(inputs, outputs, returns="variable", groups=groups)


def scale_efficiency(
    inputs: np.ndarray, outputs: np.ndarray, groups: np.ndarray | None = None
) -> np.ndarray:
    r"""Scale efficiency :math:`SE_o = \theta^{CCR}_o / \theta^{BCC}_o \in (0, 1]`."""
    return ccr_efficiency(inputs, outputs, groups) / bcc_efficiency(inputs, outputs, groups)

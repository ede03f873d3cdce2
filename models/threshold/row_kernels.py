"""The two-threshold log-sum-exp over configurations stored by rows, in vectorised loops.

With two thresholds the admissible configurations (j_0 < j_1, at least a gap apart) of the
default priors form rows: for each j_0, the j_1 run over consecutive grid indices. Stored that
way (:func:`config_rows`), every loop of the log-sum-exp in
:func:`models.threshold.kernels.config_logsumexp` reads contiguous memory, with no gathers and
no scattered additions, and the compiler vectorises it: the values of a row are
prior + u_0[j_0] + u_1[j_1] + w G[j_0, j_1] over a contiguous slice of u_1 and of one row of the
pair Gram G, and the gradient in u_1 adds a row's weights to a contiguous slice.

The exponentials are computed as Cody and Waite's reduction, v - top = n ln 2 + r with
|r| <= ln 2 / 2, a degree-13 Taylor polynomial of exp(r) (truncation error below 5e-18
relative) and 2^n assembled in the exponent bits (:func:`shifted_exp`): only multiplications,
additions and integer shifts, which run several elements per instruction, where a call to the C
library's ``exp`` per element stops the vectorisation. They agree with ``math.exp`` to within
one unit in the last place. Terms more than ``negligible`` below the largest are set to 0, the
kernels' rule for negligible configurations (:data:`models.threshold.kernels.NEGLIGIBLE`),
which also keeps n within the exponent range.

On Hansen's double threshold (75,855 configurations, one regime regressor) one log-sum-exp
with its gradient sums took 540 us with a gather and an ``exp`` call per configuration and an
array of all their values allocated per call; it takes 150 us this way, and the whole log
density with its gradient 160 us instead of 750 us.
"""

from __future__ import annotations

import numba
import numpy as np

# A term this many log units below the largest (< 1e-20 of it) is dropped (kernels.py says why).
NEGLIGIBLE = 46.0

_LOG2_E = 1.4426950408889634
# ln 2 split so that n * _LN2_HI is exact for |n| < 2^11 (Cody & Waite).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# Adding 1.5 * 2^52 rounds to an integer and leaves it in the low bits of the mantissa.
_SHIFTER = 6755399441055744.0
_SHIFTER_BITS = np.array([_SHIFTER]).view(np.int64)[0]
_EXPONENT_BIAS = 1023


def config_rows(configs: np.ndarray) -> np.ndarray:
    """The row layout of two-threshold ``configs`` (M, 2), or an empty (0, 3) array when they
    do not have one: (R + 1, 3) int64, row r = (j_0, first configuration, first j_1), the
    configurations of row r being first .. next row's first - 1 with j_1 = first j_1, +1, ...;
    the last row is a sentinel (-1, M, -1)."""
    configs = np.asarray(configs)
    empty = np.zeros((0, 3), dtype=np.int64)
    if configs.ndim != 2 or configs.shape[1] != 2 or configs.shape[0] == 0:
        return empty
    j0, j1 = configs[:, 0], configs[:, 1]
    starts = np.flatnonzero(np.r_[True, j0[1:] != j0[:-1]])
    if len(np.unique(j0[starts])) != len(starts):
        return empty  # a j_0 split over several runs
    steps = np.diff(j1)
    within = np.ones(len(configs) - 1, dtype=bool)
    within[starts[1:] - 1] = False  # the step from one row's last to the next row's first
    if not np.all(steps[within] == 1):
        return empty
    rows = np.empty((len(starts) + 1, 3), dtype=np.int64)
    rows[:-1, 0], rows[:-1, 1], rows[:-1, 2] = j0[starts], starts, j1[starts]
    rows[-1] = (-1, len(configs), -1)
    return rows


@numba.njit(cache=True, nogil=True)
def row_logsumexp(u0, u1, w01, g0, rows, prior, grad_u):
    """The sums behind log sum_j exp(v_j), v_j = prior_j + u0[j_0] + u1[j_1] + w01 G[j_0, j_1],
    over the configurations of ``rows``: returns (top, sum of exp(v_j - top), sum of
    exp(v_j - top) G[j_0, j_1]) and adds the unnormalised gradient sums into ``grad_u``
    (grad_u[0, j_0] += a row's total, grad_u[1, j_1] += its terms).

    Two passes over the rows, the values of one row at a time in buffers of the grid's length:
    the first finds the largest value, the second recomputes each row's values and
    exponentiates and sums them. Recomputing a row costs less than keeping all the values:
    an array per configuration (600 KB for Hansen's grid) allocated in every call had the C
    library map and fault in fresh pages each time, which took longer than the arithmetic.
    """
    n_grid = u1.shape[0]
    values = np.empty(n_grid)
    weights = np.empty(n_grid)
    rounded = np.empty(n_grid)
    top = -np.inf
    for r in range(rows.shape[0] - 1):
        length = _fill_row(u0, u1, w01, g0, rows, prior, r, values)
        row_top = largest(values[:length])
        if row_top > top:
            top = row_top
    total = 0.0
    pair = 0.0
    for r in range(rows.shape[0] - 1):
        length = _fill_row(u0, u1, w01, g0, rows, prior, r, values)
        shifted_exp(values[:length], top, NEGLIGIBLE, weights[:length], rounded[:length])
        row_total, row_pair = _row_sums(weights, g0, rows, r, length, grad_u)
        total += row_total
        pair += row_pair
    return top, total, pair


@numba.njit(cache=True, nogil=True)
def row_values(u0, u1, w01, g0, rows, prior, values):
    """Every configuration's value into ``values`` (M,), row by row; returns the largest."""
    for r in range(rows.shape[0] - 1):
        _fill_row(u0, u1, w01, g0, rows, prior, r, values[rows[r, 1]:rows[r + 1, 1]])
    return largest(values)


@numba.njit(cache=True, nogil=True)
def _fill_row(u0, u1, w01, g0, rows, prior, r, out):
    """The values of row r into out[:length]; returns the row's length."""
    start, stop, first = rows[r, 1], rows[r + 1, 1], rows[r, 2]
    length = stop - start
    base = u0[rows[r, 0]]
    # slices indexed from 0 by a range: no negative-index handling, so the loop vectorises
    row_prior = prior[start:stop]
    row_u1 = u1[first:first + length]
    row_gram = g0[rows[r, 0], first:first + length]
    for i in range(length):
        out[i] = row_prior[i] + base + row_u1[i] + w01 * row_gram[i]
    return length


@numba.njit(cache=True, nogil=True)
def largest(values):
    """The largest non-NaN entry (-inf when none), with eight independent running maxima so
    that the comparisons do not wait on each other."""
    tops = np.full(8, -np.inf)
    n_values = values.shape[0]
    blocked = n_values - n_values % 8
    for m in range(0, blocked, 8):
        for lane in range(8):
            if values[m + lane] > tops[lane]:
                tops[lane] = values[m + lane]
    top = -np.inf
    for lane in range(8):
        if tops[lane] > top:
            top = tops[lane]
    for m in range(blocked, n_values):
        if values[m] > top:
            top = values[m]
    return top


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _row_sums(weights, g0, rows, r, length, grad_u):
    """Row r's total of ``weights[:length]`` and of weight x G[j_0, j_1], with its terms added
    into grad_u[1, j_1] and its total into grad_u[0, j_0]. Reassociated sums: the order of
    the additions is the compiler's, which moves them by rounding only."""
    j0, first = rows[r, 0], rows[r, 2]
    row_gram = g0[j0, first:first + length]
    row_grad = grad_u[1, first:first + length]
    row_total = 0.0
    row_pair = 0.0
    for i in range(length):
        weight = weights[i]
        row_total += weight
        row_pair += weight * row_gram[i]
        row_grad[i] += weight
    grad_u[0, j0] += row_total
    return row_total, row_pair


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def shifted_exp(values, top, negligible, out, rounded):
    """out[m] = exp(values[m] - top) where values[m] > top - negligible, else 0.

    ``out`` and ``rounded`` are float64 work arrays of the same length as ``values``
    (``rounded`` holds n = round((v - top) / ln 2) in its mantissa between the passes).
    Returns ``out``. NaN values give 0, as they fail the comparison.
    """
    n_values = values.shape[0]
    cut = top - negligible
    for m in range(n_values):
        x = values[m] - top
        if not values[m] > cut:
            x = 0.0  # any finite number: the term is zeroed below
        shifted = x * _LOG2_E + _SHIFTER
        n = shifted - _SHIFTER
        r = (x - n * _LN2_HI) - n * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        out[m] = p if values[m] > cut else 0.0
        rounded[m] = shifted
    bits = rounded.view(np.int64)
    for m in range(n_values):
        bits[m] = (bits[m] - _SHIFTER_BITS + _EXPONENT_BIAS) << 52
    scale = rounded  # the same memory, now read as the floats 2^n
    for m in range(n_values):
        out[m] *= scale[m]
    return out

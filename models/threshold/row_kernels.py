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

from models.bayes.kernel_cache import install as _install_kernel_cache

_install_kernel_cache()

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

    Only a row's live span is exponentiated: from its first to its last value above the cut
    (:func:`live_span`). The terms outside it are below the cut, so they are zero in the sums
    either way; near the posterior's mode about a third of Hansen's configurations lie in
    the spans.
    """
    n_grid = u1.shape[0]
    values = np.empty(n_grid)
    weights = np.empty(n_grid)
    rounded = np.empty(n_grid)
    bits = rounded.view(np.int64)
    top = -np.inf
    for r in range(rows.shape[0] - 1):
        length = _fill_row(u0, u1, w01, g0, rows, prior, r, values, 0)
        row_top = _largest_in(values, 0, length)
        if row_top > top:
            top = row_top
    total = 0.0
    pair = 0.0
    cut = top - NEGLIGIBLE
    for r in range(rows.shape[0] - 1):
        length = _fill_row(u0, u1, w01, g0, rows, prior, r, values, 0)
        low, high = live_span(values, 0, length, cut)
        if low == high:
            continue
        _shifted_exp_in(values, low, high, top, NEGLIGIBLE, weights, rounded, bits)
        row_total, row_pair = _row_sums(weights, low, high, g0, rows, r, grad_u)
        total += row_total
        pair += row_pair
    return top, total, pair


@numba.njit(cache=True, nogil=True)
def live_span(values, start, stop, cut):
    """(low, high): values[low:high] runs from the first to the last value above ``cut`` among
    values[start:stop] (NaN is not above it); low == high when there is none."""
    low = start
    while low < stop and not values[low] > cut:
        low += 1
    if low == stop:
        return start, start
    high = stop
    while not values[high - 1] > cut:
        high -= 1
    return low, high


@numba.njit(cache=True, nogil=True)
def row_values(u0, u1, w01, g0, rows, prior, values):
    """Every configuration's value into ``values`` (M,), row by row; returns the largest."""
    for r in range(rows.shape[0] - 1):
        _fill_row(u0, u1, w01, g0, rows, prior, r, values, rows[r, 1])
    return largest(values)


@numba.njit(cache=True, nogil=True)
def row_weights(values, rows, top, weights, scratch):
    """weights = exp(values - top) where a value is above top - NEGLIGIBLE, else 0, for
    configurations stored by ``rows``; only the rows' live spans are exponentiated
    (:func:`live_span`). ``scratch``: a float64 work array as long as ``values``."""
    cut = top - NEGLIGIBLE
    bits = scratch.view(np.int64)
    for r in range(rows.shape[0] - 1):
        start, stop = rows[r, 1], rows[r + 1, 1]
        low, high = live_span(values, start, stop, cut)
        for m in range(start, low):
            weights[m] = 0.0
        if high > low:
            _shifted_exp_in(values, low, high, top, NEGLIGIBLE, weights, scratch, bits)
        for m in range(high, stop):
            weights[m] = 0.0
    return weights


# The loops below index whole arrays from unsigned offsets rather than taking slices. A slice
# is a new array that shares its parent's memory: making and dropping one costs two atomic
# updates of the parent's reference count, and with one slice per array per row these updates
# took a sixth of a log-density evaluation; when the chains sample on threads, they all update
# the same counters of the shared statistics. An unsigned index also spares numba the branch
# that wraps negative indices, which would stop the loops from vectorising.


@numba.njit(cache=True, nogil=True)
def _fill_row(u0, u1, w01, g0, rows, prior, r, out, offset):
    """The values of row r into out[offset:offset + length]; returns the row's length."""
    start, first = np.uint64(rows[r, 1]), np.uint64(rows[r, 2])
    length = np.uint64(rows[r + 1, 1]) - start
    j0 = np.uint64(rows[r, 0])
    at = np.uint64(offset)
    base = u0[j0]
    for i in range(length):
        out[at + i] = prior[start + i] + base + u1[first + i] + w01 * g0[j0, first + i]
    return np.int64(length)


@numba.njit(cache=True, nogil=True)
def largest(values):
    """The largest non-NaN entry (-inf when none)."""
    return _largest_in(values, 0, values.shape[0])


@numba.njit(cache=True, nogil=True)
def _largest_in(values, start, stop):
    """The largest non-NaN entry of values[start:stop], with four independent running maxima
    so that the comparisons do not wait on each other. They are scalars rather than an array
    so that they stay in registers: with an array of eight the loop stored and reloaded them
    at every step and ran four times slower."""
    top0 = top1 = top2 = top3 = -np.inf
    begin = np.uint64(start)
    blocked = np.uint64(stop - (stop - start) % 4)
    m = begin
    while m < blocked:
        # a NaN fails every comparison, so it never replaces a maximum
        top0 = values[m] if values[m] > top0 else top0
        top1 = values[m + 1] if values[m + 1] > top1 else top1
        top2 = values[m + 2] if values[m + 2] > top2 else top2
        top3 = values[m + 3] if values[m + 3] > top3 else top3
        m += np.uint64(4)
    top = max(max(top0, top1), max(top2, top3))
    for rest in range(blocked, np.uint64(stop)):
        if values[rest] > top:
            top = values[rest]
    return top


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _row_sums(weights, low, high, g0, rows, r, grad_u):
    """The total of weights[low:high], the weights of row r's configurations ``low`` to
    ``high`` - 1, and of weight x G[j_0, j_1], with the terms added into grad_u[1, j_1] and
    the total into grad_u[0, j_0]. Reassociated sums: the order of the additions is the
    compiler's, which moves them by rounding only."""
    j0 = np.uint64(rows[r, 0])
    first = np.uint64(rows[r, 2] + low)
    begin = np.uint64(low)
    one = np.uint64(1)
    row_total = 0.0
    row_pair = 0.0
    for i in range(np.uint64(high - low)):
        weight = weights[begin + i]
        row_total += weight
        row_pair += weight * g0[j0, first + i]
        grad_u[one, first + i] += weight
    grad_u[0, j0] += row_total
    return row_total, row_pair


@numba.njit(cache=True, nogil=True)
def shifted_exp(values, top, negligible, out, rounded):
    """out[m] = exp(values[m] - top) where values[m] > top - negligible, else 0.

    ``out`` and ``rounded`` are float64 work arrays of the same length as ``values``
    (``rounded`` holds n = round((v - top) / ln 2) in its mantissa between the passes).
    Returns ``out``. NaN values give 0, as they fail the comparison.
    """
    _shifted_exp_in(values, 0, values.shape[0], top, negligible, out, rounded,
                    rounded.view(np.int64))
    return out


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _shifted_exp_in(values, start, stop, top, negligible, out, rounded, bits):
    """:func:`shifted_exp` on values[start:stop] into out[start:stop]; ``bits`` is
    ``rounded`` viewed as int64."""
    begin = np.uint64(start)
    length = np.uint64(stop - start)
    cut = top - negligible
    for i in range(length):
        m = begin + i
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
    for i in range(length):
        bits[begin + i] = (bits[begin + i] - _SHIFTER_BITS + _EXPONENT_BIAS) << 52
    for i in range(length):
        # the same memory as bits, now read as the floats 2^n
        out[begin + i] *= rounded[begin + i]

"""What an event-study posterior says: pre-trends, post-period effects and their sensitivity
to violations of parallel trends (relative magnitudes, Rambachan & Roth 2023).

All functions take draws of the path b (shape (..., n) over the event years, the reference
year excluded, b_ref = 0) and work draw by draw, so every summary carries the full posterior
uncertainty.

Pre-trends
    P(|b_k| < band for every k < ref): the posterior probability that the whole pre-period path
    lies inside the equivalence band (-band, band). Default band: 0.05 on the outcome's scale
    (5 log points for ln(1 + count) or log-link coefficients), about two thirds of the
    published event-study SEs of Zhu et al. (2025): differences smaller than that are not
    distinguishable at the paper's precision. Configurable per spec (``pretrend_band``).
Post period
    average effect mean_{k > ref} b_k, cumulative effect sum_{k > ref} b_k, and the peak year
    argmax_{k > ref} |b_k| (its posterior distribution; the peak effect is b at that year).
Relative magnitudes
    Delta^RM(Mbar): post-period violations delta_t of parallel trends whose first differences
    |delta_{t+1} - delta_t| (t >= ref, delta_ref = 0) are at most Mbar times the largest
    pre-period first difference max_{s < ref} |b_{s+1} - b_s| (b_ref = 0 included). The
    average post effect theta = l'(b_post - delta_post), l = 1/T_post, then lies in
    [l'b_post - B, l'b_post + B] with B = Mbar * max_pre * sum_t l_t t (t = 1..T_post counts
    years after ref): the maximum of l'delta over the box of first differences puts every
    difference at its bound. Per draw this is the identified set; the posterior of its lower
    and upper ends gives a 94% interval [q_3%(lower), q_97%(upper)] and the probability that
    the effect keeps its sign under every violation allowed. The pre-period maximum is taken
    draw by draw, so its posterior carries the noise of the pre-period coefficients (the mean
    of a maximum exceeds the maximum of the means): these sets are wider than the identified
    set at the point estimates, the more so the noisier the pre-period path. The frequentist
    counterpart, the C-LF confidence set (``models.event_study.honest``), accounts for the
    same noise by a conditional test instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_PRETREND_BAND = 0.05
MBARS = (0.0, 0.5, 1.0, 2.0)
INTERVAL_PROB = 0.94


def _split(path: np.ndarray, years: Sequence[int], reference: int):
    path = np.asarray(path, dtype=float)
    years = np.asarray(years)
    pre, post = years < reference, years > reference
    return path, years, pre, post


def pretrend_probability(path: np.ndarray, years: Sequence[int], reference: int,
                         band: float = DEFAULT_PRETREND_BAND) -> float:
    """P(|b_k| < band for every pre-period year k), the share of draws inside the band.

    ``path`` has shape (..., n). Raises ValueError without pre-period years or band <= 0.
    """
    if not band > 0:
        raise ValueError(f"the equivalence band must be positive, not {band}")
    path, _, pre, _ = _split(path, years, reference)
    if not pre.any():
        raise ValueError(f"no event year before the reference year {reference}")
    inside = np.all(np.abs(path[..., pre]) < band, axis=-1)
    return float(inside.mean())


def pretrend_sentence(probability: float, band: float, reference: int) -> str:
    """The pre-trend probability in words."""
    if probability >= 0.95:
        verdict = "the data support parallel pre-trends within the band"
    elif probability <= 0.05:
        verdict = "the data speak against parallel pre-trends within the band"
    else:
        verdict = "the data do not settle whether pre-trends lie within the band"
    return (f"posterior probability {probability:.2f} that every pre-{reference} coefficient "
            f"lies within +/-{band:g}: {verdict}")


def post_summaries(path: np.ndarray, years: Sequence[int], reference: int
                   ) -> dict[str, np.ndarray]:
    """Draws (shape path.shape[:-1]) of the average and cumulative post-period effect, the
    peak year (argmax |b_k| over post years) and the effect in that year."""
    path, years, _, post = _split(path, years, reference)
    if not post.any():
        raise ValueError(f"no event year after the reference year {reference}")
    after = path[..., post]
    peak = np.argmax(np.abs(after), axis=-1)
    return {
        "post_average": after.mean(axis=-1),
        "post_cumulative": after.sum(axis=-1),
        "peak_year": years[post][peak].astype(float),
        "peak_effect": np.take_along_axis(after, peak[..., None], axis=-1)[..., 0],
    }


def max_pre_difference(path: np.ndarray, years: Sequence[int], reference: int) -> np.ndarray:
    """max_{s < ref} |b_{s+1} - b_s| with b_ref = 0, per draw (shape path.shape[:-1])."""
    path, _, pre, _ = _split(path, years, reference)
    pre_path = path[..., pre]
    full = np.concatenate([pre_path, np.zeros(pre_path.shape[:-1] + (1,))], axis=-1)
    if full.shape[-1] < 2:
        raise ValueError("relative magnitudes need at least one pre-period year")
    return np.abs(np.diff(full, axis=-1)).max(axis=-1)


def relative_magnitude_bounds(path: np.ndarray, years: Sequence[int], reference: int,
                              mbar: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of the average post effect under Delta^RM(mbar), per draw (or for one
    point estimate when ``path`` is one vector). Post years must follow the reference year
    without gaps (t = 1..T_post)."""
    if mbar < 0:
        raise ValueError(f"Mbar must be non-negative, not {mbar}")
    path, years, _, post = _split(path, years, reference)
    post_years = years[post]
    steps = post_years - reference
    if not np.array_equal(steps, np.arange(1, post_years.size + 1)):
        raise ValueError(f"relative magnitudes need consecutive post years after {reference}; "
                         f"got {post_years.tolist()}")
    weights = np.full(post_years.size, 1.0 / post_years.size)
    centre = path[..., post] @ weights
    half_width = mbar * max_pre_difference(path, years, reference) * float(weights @ steps)
    return centre - half_width, centre + half_width


def relative_magnitude_summary(path: np.ndarray, years: Sequence[int], reference: int,
                               mbar: float, prob: float = INTERVAL_PROB) -> dict[str, float]:
    """Posterior summary of Delta^RM(mbar): mean of the set's centre, the interval
    [q_(1-prob)/2(lower), q_(1+prob)/2(upper)], P(lower > 0) and P(upper < 0)."""
    lower, upper = relative_magnitude_bounds(path, years, reference, mbar)
    tail = (1.0 - prob) / 2.0
    return {
        "centre": float(np.mean((lower + upper) / 2.0)),
        "ci_low": float(np.quantile(lower, tail)),
        "ci_high": float(np.quantile(upper, 1.0 - tail)),
        "prob_positive": float(np.mean(lower > 0)),
        "prob_negative": float(np.mean(upper < 0)),
    }

"""Tests of simulation-based-calibration ranks for uniformity, and of interval coverage.

A rank r of the truth among L posterior draws is uniform on 0..L when the posterior is right.
Two tests of that, each per parameter:

* chi-square on the rank histogram (Talts et al. 2018): the L + 1 possible ranks pooled into
  bins of equal width, expected count N / bins each;
* the ECDF test with simultaneous bands (Säilynoja, Bürkner & Vehtari 2022, Statistics and
  Computing 32:32). At the evaluation points z_j = j / (L + 1), j = 1..L, the count of ranks
  below j is Binomial(N, z_j) under uniformity (exactly, for discrete ranks). Each point gets
  its two-sided binomial tail probability; the statistic is the smallest of them over all
  points. Its null distribution is found by simulation here (uniform ranks drawn
  :data:`NULL_SIMULATIONS` times, a fixed seed), rather than by the paper's optimisation
  method: the p-value is the share of null samples whose smallest tail probability is at most
  the observed one, and the simultaneous 1 - alpha band at z_j is the binomial interval of
  tail probability gamma, gamma the alpha-quantile of the null statistic. Every point of a
  null ECDF lies inside the band with probability 1 - alpha, jointly.

Coverage: the share of simulations whose 94% HDI holds the truth, with its Clopper-Pearson
interval; a calibrated posterior covers 94% of the time (at least 94% for a parameter on a
discrete grid, whose HDI holds whole grid points).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

NULL_SIMULATIONS = 4000
BAND_ALPHA = 0.05
# Ranks are called non-uniform, and a coverage off its nominal value, below this p-value.
VERDICT_ALPHA = 0.01


def histogram_bins(n_ranks: int, n_draws: int) -> int:
    """Bins for the chi-square test: the most of 20, 10, 5, 4, 2 that divide the L + 1
    possible ranks evenly and leave an expected count of at least 5 per bin."""
    for bins in (20, 10, 5, 4, 2):
        if (n_draws + 1) % bins == 0 and n_ranks / bins >= 5:
            return bins
    return 1


def rank_counts(ranks: np.ndarray, n_draws: int, bins: int) -> np.ndarray:
    """Histogram of ranks 0..n_draws in ``bins`` bins of equal width."""
    ranks = np.asarray(ranks, dtype=int)
    return np.bincount(ranks * bins // (n_draws + 1), minlength=bins)


def chisquare_p(ranks: np.ndarray, n_draws: int) -> float:
    """p-value of the chi-square test of uniform ranks on 0..n_draws (nan when there are too
    few ranks for two bins of expected count 5)."""
    ranks = np.asarray(ranks, dtype=int)
    bins = histogram_bins(ranks.size, n_draws)
    if bins < 2:
        return float("nan")
    return float(stats.chisquare(rank_counts(ranks, n_draws, bins)).pvalue)


def _tail_probability(counts: np.ndarray, n: int, z: np.ndarray) -> np.ndarray:
    """Two-sided binomial tail probability of each count under Binomial(n, z)."""
    lower = stats.binom.cdf(counts, n, z)
    upper = stats.binom.sf(counts - 1, n, z)
    return np.minimum(1.0, 2.0 * np.minimum(lower, upper))


def _ecdf_counts(ranks: np.ndarray, n_draws: int) -> np.ndarray:
    """Number of ranks below j for j = 1..n_draws (last axis), for one or many samples."""
    ranks = np.asarray(ranks, dtype=int)
    histogram = np.apply_along_axis(np.bincount, -1, ranks, minlength=n_draws + 1)
    return np.cumsum(histogram, axis=-1)[..., :-1]


@lru_cache(maxsize=64)
def _null_statistics(n_ranks: int, n_draws: int) -> np.ndarray:
    """The smallest pointwise tail probability of :data:`NULL_SIMULATIONS` uniform samples."""
    rng = np.random.default_rng([n_ranks, n_draws, 20220401])
    samples = rng.integers(0, n_draws + 1, size=(NULL_SIMULATIONS, n_ranks))
    z = np.arange(1, n_draws + 1) / (n_draws + 1)
    tails = _tail_probability(_ecdf_counts(samples, n_draws), n_ranks, z)
    return np.sort(tails.min(axis=1))


@dataclass(frozen=True)
class EcdfTest:
    """The ECDF test of one parameter's ranks: ``p`` its p-value, ``inside`` whether the ECDF
    stays inside the simultaneous 1 - :data:`BAND_ALPHA` band, ``z`` the evaluation points,
    ``difference`` ECDF(z) - z, and ``lower`` / ``upper`` the band of ECDF(z) - z."""

    p: float
    inside: bool
    z: np.ndarray
    difference: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def _gamma(n_ranks: int, n_draws: int, alpha: float) -> float:
    """The alpha-quantile of the null statistic: the pointwise tail probability that makes the
    band simultaneous."""
    return float(np.quantile(_null_statistics(n_ranks, n_draws), alpha))


def ecdf_band(n_ranks: int, n_draws: int, alpha: float = BAND_ALPHA
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The evaluation points z_j and the simultaneous 1 - ``alpha`` band of ECDF(z) - z for
    ``n_ranks`` uniform ranks on 0..n_draws (module docstring): at each z_j, the counts whose
    two-sided binomial tail probability exceeds gamma."""
    gamma = _gamma(n_ranks, n_draws, alpha)
    z = np.arange(1, n_draws + 1) / (n_draws + 1)
    counts = np.arange(n_ranks + 1)[:, None]
    allowed = _tail_probability(counts, n_ranks, z[None, :]) > gamma
    lower = np.argmax(allowed, axis=0)
    upper = n_ranks - np.argmax(allowed[::-1], axis=0)
    return z, lower / n_ranks - z, upper / n_ranks - z


def ecdf_test(ranks: np.ndarray, n_draws: int, alpha: float = BAND_ALPHA) -> EcdfTest:
    """The ECDF uniformity test of ranks on 0..n_draws with its simultaneous band."""
    ranks = np.asarray(ranks, dtype=int)
    n = ranks.size
    if n == 0:
        empty = np.zeros(0)
        return EcdfTest(float("nan"), False, empty, empty, empty, empty)
    z, lower, upper = ecdf_band(n, n_draws, alpha)
    counts = _ecdf_counts(ranks, n_draws)
    observed = float(_tail_probability(counts, n, z).min())
    null = _null_statistics(n, n_draws)
    p = float((np.searchsorted(null, observed, side="right") + 1) / (null.size + 1))
    inside = observed > _gamma(n, n_draws, alpha)
    return EcdfTest(min(p, 1.0), inside, z, counts / n - z, lower, upper)


def coverage_interval(covered: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a coverage share ``covered / n``."""
    if n == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2
    low = stats.beta.ppf(tail, covered, n - covered + 1) if covered > 0 else 0.0
    high = stats.beta.ppf(1 - tail, covered + 1, n - covered) if covered < n else 1.0
    return float(low), float(high)


def coverage_p(covered: int, n: int, nominal: float, discrete: bool = False) -> float:
    """Exact binomial p-value of ``covered`` of ``n`` against ``nominal``: two-sided, or for a
    ``discrete`` parameter one-sided against too little coverage (an HDI of draws on a grid
    holds whole grid points, so it covers at least ``nominal`` of the time when calibrated)."""
    if n == 0:
        return float("nan")
    alternative = "less" if discrete else "two-sided"
    return float(stats.binomtest(covered, n, nominal, alternative=alternative).pvalue)


def verdict(chisquare: float, ecdf: float, coverage: float, ranked: int) -> str:
    """The summary in words of one parameter's calibration (tests at :data:`VERDICT_ALPHA`)."""
    if ranked == 0:
        return "no converged fit: nothing ranked"
    problems = []
    if np.isfinite(chisquare) and chisquare < VERDICT_ALPHA:
        problems.append("rank histogram not uniform")
    if np.isfinite(ecdf) and ecdf < VERDICT_ALPHA:
        problems.append("rank ECDF outside uniform")
    if np.isfinite(coverage) and coverage < VERDICT_ALPHA:
        problems.append("HDI coverage off nominal")
    if problems:
        return "miscalibrated: " + "; ".join(problems)
    if ranked < 50:
        return f"no evidence of miscalibration (only {ranked} ranks: weak test)"
    return "calibrated: no evidence of miscalibration"

"""The calibration statistics on ranks whose distribution is known: uniform ranks must pass,
biased, over-dispersed and under-dispersed ranks must fail; no sampling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.bayes.calibration import hdi, hdi_covers, rank_of, thin
from models.bayes.uniformity import (
    chisquare_p,
    coverage_interval,
    coverage_p,
    ecdf_band,
    ecdf_test,
    histogram_bins,
    rank_counts,
    verdict,
)

L = 99


def exact_posterior_ranks(rng, n, shift=0.0, scale=1.0):
    """Ranks of a N(0, 1) truth among L draws of N(shift, scale): uniform only when the
    'posterior' is the prior itself (shift 0, scale 1)."""
    truth = rng.normal(size=n)
    draws = rng.normal(shift, scale, size=(n, L))
    return np.array([rank_of(t, d, rng) for t, d in zip(truth, draws, strict=True)])


def test_rank_counts_draws_below_and_breaks_ties_uniformly():
    rng = np.random.default_rng(0)
    assert rank_of(0.5, np.array([0.1, 0.2, 0.9]), rng) == 2
    tied = [rank_of(1.0, np.array([0.0, 1.0, 1.0, 2.0]), rng) for _ in range(3000)]
    # One draw below, two tied: ranks 1, 2, 3 equally often.
    counts = np.bincount(tied, minlength=4)
    assert counts[0] == 0 and counts[1:].min() > 900


def test_thin_spreads_over_all_draws_and_refuses_too_few():
    draws = np.arange(1000.0)
    kept = thin(draws, 99)
    assert kept.size == 99 and kept[0] == 0 and kept[-1] == 999
    with pytest.raises(ValueError, match="cannot be thinned"):
        thin(np.arange(50.0), 99)


def test_hdi_of_normal_draws_is_the_central_interval():
    draws = np.random.default_rng(1).normal(size=200_000)
    low, high = hdi(draws, 0.94)
    expected = stats.norm.ppf(0.97)
    assert low == pytest.approx(-expected, abs=0.04)
    assert high == pytest.approx(expected, abs=0.04)
    # Of a skewed density the HDI is shorter than the central interval and shifted to the mode.
    skewed = np.random.default_rng(2).exponential(size=200_000)
    low, high = hdi(skewed, 0.94)
    assert low == pytest.approx(0.0, abs=0.01) and high == pytest.approx(-np.log(0.06), abs=0.03)
    assert hdi_covers(0.5, skewed) and not hdi_covers(3.5, skewed)


def test_uniform_ranks_pass_both_tests():
    rng = np.random.default_rng(3)
    ranks = exact_posterior_ranks(rng, 200)
    assert chisquare_p(ranks, L) > 0.05
    result = ecdf_test(ranks, L)
    assert result.p > 0.05 and result.inside


@pytest.mark.parametrize("shift, scale", [(0.5, 1.0), (0.0, 0.6), (0.0, 1.6)],
                         ids=["biased", "overconfident", "underconfident"])
def test_miscalibrated_ranks_fail_the_ecdf_test(shift, scale):
    rng = np.random.default_rng(4)
    ranks = exact_posterior_ranks(rng, 200, shift, scale)
    result = ecdf_test(ranks, L)
    assert result.p < 0.01 and not result.inside
    assert chisquare_p(ranks, L) < 0.01


def test_ecdf_test_rejects_at_its_level_under_uniformity():
    rng = np.random.default_rng(5)
    n_tests = 400
    p_values = np.array([ecdf_test(rng.integers(0, L + 1, 60), L).p for _ in range(n_tests)])
    rejected = int((p_values < 0.05).sum())
    # Binomial(400, 0.05): 20 expected; the 99.9% range is about 7-38.
    assert 7 <= rejected <= 38, rejected
    outside = sum(not ecdf_test(rng.integers(0, L + 1, 60), L).inside for _ in range(n_tests))
    assert 7 <= outside <= 38, outside


def test_band_is_simultaneous_and_wider_than_pointwise():
    z, lower, upper = ecdf_band(100, L)
    assert z.shape == lower.shape == upper.shape == (L,)
    assert np.all(lower <= 0) and np.all(upper >= 0)
    # A pointwise 95% interval at z = 0.5 is about +-0.098 for 100 ranks; the simultaneous
    # band must be wider.
    middle = L // 2
    assert upper[middle] - lower[middle] > 2 * 1.96 * 0.05


def test_histogram_bins_divide_the_ranks_and_keep_expected_counts():
    assert histogram_bins(200, 99) == 20
    assert histogram_bins(40, 99) == 5
    assert histogram_bins(4, 99) == 1
    assert np.isnan(chisquare_p(np.arange(4), 99))
    assert rank_counts(np.array([0, 9, 10, 99]), 99, 10).tolist() == [2, 1, 0, 0, 0, 0, 0, 0,
                                                                      0, 1]


def test_coverage_interval_is_clopper_pearson():
    low, high = coverage_interval(188, 200)
    assert low == pytest.approx(stats.beta.ppf(0.025, 188, 13))
    assert high == pytest.approx(stats.beta.ppf(0.975, 189, 12))
    assert coverage_interval(10, 10)[1] == 1.0
    assert coverage_p(188, 200, 0.94) > 0.5
    assert coverage_p(160, 200, 0.94) < 0.001
    # A discrete parameter's HDI may over-cover: only too little coverage counts against it.
    assert coverage_p(200, 200, 0.94) < 0.001
    assert coverage_p(200, 200, 0.94, discrete=True) == 1.0
    assert coverage_p(170, 200, 0.94, discrete=True) < 0.01


def test_verdict_names_the_failed_checks():
    assert verdict(0.5, 0.5, 0.5, 200).startswith("calibrated")
    assert "rank ECDF" in verdict(0.5, 0.001, 0.5, 200)
    assert "HDI coverage" in verdict(0.5, 0.5, 0.001, 200)
    assert "weak" in verdict(0.5, 0.5, 0.5, 10)
    assert verdict(np.nan, np.nan, np.nan, 0).startswith("no converged")

"""Pre-trend probability, post-period summaries and relative-magnitude arithmetic against hand
computations on known draws, and the event-path priors' densities against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.bayes.priors import PriorSpecError
from models.event_study.path_priors import EventPathPrior, _random_walk_logp, path_structure
from models.event_study.summaries import (
    max_pre_difference,
    post_summaries,
    pretrend_probability,
    relative_magnitude_bounds,
    relative_magnitude_summary,
)

YEARS = [2012, 2013, 2014, 2016, 2017, 2018]
REF = 2015
# Three draws of the path (pre 2012-2014, post 2016-2018).
DRAWS = np.array([
    [0.01, -0.02, 0.03, 0.10, 0.20, 0.30],
    [0.06, 0.00, 0.01, -0.10, 0.05, 0.02],
    [0.00, 0.04, -0.049, 0.20, 0.10, -0.40],
])


def test_pretrend_probability_counts_draws_inside_the_band():
    # Draw 1: all |pre| < 0.05; draw 2: 0.06 outside; draw 3: all inside (0.049 < 0.05).
    assert pretrend_probability(DRAWS, YEARS, REF, 0.05) == pytest.approx(2 / 3)
    assert pretrend_probability(DRAWS, YEARS, REF, 0.02) == 0.0
    assert pretrend_probability(DRAWS, YEARS, REF, 0.1) == 1.0
    with pytest.raises(ValueError, match="positive"):
        pretrend_probability(DRAWS, YEARS, REF, 0.0)


def test_post_summaries_by_hand():
    out = post_summaries(DRAWS, YEARS, REF)
    np.testing.assert_allclose(out["post_average"], [0.2, -0.01, -0.1 / 3])
    np.testing.assert_allclose(out["post_cumulative"], [0.6, -0.03, -0.1])
    np.testing.assert_array_equal(out["peak_year"], [2018, 2016, 2018])
    np.testing.assert_allclose(out["peak_effect"], [0.30, -0.10, -0.40])


def test_relative_magnitudes_by_hand():
    # Pre differences with b_2015 = 0: draw 1: |-0.03|, |0.05|, |-0.03| -> 0.05;
    # draw 2: 0.06, 0.01, 0.01 -> 0.06; draw 3: 0.04, 0.089, 0.049 -> 0.089.
    np.testing.assert_allclose(max_pre_difference(DRAWS, YEARS, REF), [0.05, 0.06, 0.089])
    # B = Mbar * max * (1 + 2 + 3) / 3 = 2 Mbar max.
    lower, upper = relative_magnitude_bounds(DRAWS, YEARS, REF, 0.5)
    np.testing.assert_allclose(lower, [0.2 - 0.05, -0.01 - 0.06, -0.1 / 3 - 0.089])
    np.testing.assert_allclose(upper, [0.2 + 0.05, -0.01 + 0.06, -0.1 / 3 + 0.089])
    lower0, upper0 = relative_magnitude_bounds(DRAWS, YEARS, REF, 0.0)
    np.testing.assert_allclose(lower0, upper0)
    summary = relative_magnitude_summary(DRAWS, YEARS, REF, 0.5, prob=0.5)
    assert summary["prob_positive"] == pytest.approx(1 / 3)
    assert summary["ci_low"] == pytest.approx(np.quantile(lower, 0.25))
    assert summary["ci_high"] == pytest.approx(np.quantile(upper, 0.75))


def test_identified_set_is_the_maximum_over_the_box_of_violations():
    # Brute force: every vertex of the box |delta_t - delta_(t-1)| <= c, delta_ref = 0.
    b = DRAWS[0]
    c = 1.0 * 0.05
    best = max(np.mean(np.cumsum(signs)) * c for signs in
               np.array(np.meshgrid(*[[-1, 1]] * 3)).T.reshape(-1, 3))
    _, upper = relative_magnitude_bounds(b, YEARS, REF, 1.0)
    assert upper == pytest.approx(b[3:].mean() + best)
    lower, _ = relative_magnitude_bounds(b, YEARS, REF, 1.0)
    assert lower == pytest.approx(b[3:].mean() - best)


def _random_walk_covariance(kind, years, reference, tau, scale):
    """The prior covariance built from the definitions, one row of differences at a time."""
    full = sorted([*years, reference])
    index = {y: i for i, y in enumerate(years)}
    rows, sds = [], []

    def unit(year):
        e = np.zeros(len(years))
        if year != reference:
            e[index[year]] = 1.0
        return e

    if kind == "rw1":
        for a, b in zip(full[:-1], full[1:]):
            rows.append(unit(b) - unit(a))
            sds.append(tau)
    else:
        r = full.index(reference)
        rows.append(unit(full[r]) - unit(full[r - 1]))
        sds.append(scale)
        for a, b, c in zip(full[:-2], full[1:-1], full[2:]):
            rows.append(unit(c) - 2 * unit(b) + unit(a))
            sds.append(tau)
    a = np.array(rows)
    precision = a.T @ np.diag(1 / np.square(sds)) @ a
    return np.linalg.inv(precision)


@pytest.mark.parametrize("kind", ["rw1", "rw2"])
def test_random_walk_log_density_against_scipy(kind):
    import pytensor
    import pytensor.tensor as pt

    years = [2010, 2011, 2012, 2013, 2014, 2016, 2017, 2018]
    prior = EventPathPrior(kind, scale=0.7, step=0.2)
    structure = path_structure(kind, years, 2015)
    rng = np.random.default_rng(3)
    path = rng.normal(0, 0.3, size=(5, len(years)))
    tau = np.array([0.1, 0.2, 0.3, 0.15, 0.5])
    expected = [stats.multivariate_normal(np.zeros(len(years)), _random_walk_covariance(
        kind, years, 2015, t, 0.7)).logpdf(p) for p, t in zip(path, tau)]
    numpy_value = prior.log_density(path, structure, {"path_tau": tau})
    np.testing.assert_allclose(numpy_value, expected, rtol=1e-10)
    value, tau_var = pt.dmatrix("value"), pt.dvector("tau")
    base = np.ones(len(years))
    if kind == "rw2":
        base[0] = -0.7
    graph = _random_walk_logp(structure)(value, tau_var[:, None], base)
    compiled = pytensor.function([value, tau_var], graph)
    np.testing.assert_allclose(compiled(path, tau), expected, rtol=1e-10)


def test_independent_and_hierarchical_densities():
    years = [2013, 2014, 2016, 2017]
    path = np.array([0.1, -0.2, 0.3, 0.05])
    independent = EventPathPrior("independent", scale=0.5)
    structure = path_structure("independent", years, 2015)
    assert independent.log_density(path, structure) == pytest.approx(
        stats.norm(0, 0.5).logpdf(path).sum())
    hierarchical = EventPathPrior("hierarchical", scale=1.0, step=0.3)
    value = hierarchical.log_density(path, structure, {"path_mean": np.array([0.2, -0.1]),
                                                       "path_sd": np.array([0.4, 0.2])})
    # Group 0 = post (mean 0.2, sd 0.4), group 1 = pre (mean -0.1, sd 0.2).
    expected = (stats.norm(-0.1, 0.2).logpdf(path[:2]).sum()
                + stats.norm(0.2, 0.4).logpdf(path[2:]).sum())
    assert value == pytest.approx(expected)


def test_path_prior_parsing_and_rules():
    prior = EventPathPrior.parse("rw2(step=0.1, scale=2)")
    assert (prior.kind, prior.step, prior.scale) == ("rw2", 0.1, 2.0)
    assert EventPathPrior.parse(None).kind == "independent"
    assert EventPathPrior.parse({"kind": "rw1", "step": 0.3}).step == 0.3
    with pytest.raises(PriorSpecError, match="Unknown event path prior"):
        EventPathPrior.parse("ar1")
    with pytest.raises(PriorSpecError, match="scale=... and step"):
        EventPathPrior.parse("rw1(width=2)")
    with pytest.raises(PriorSpecError, match="positive"):
        EventPathPrior.parse("rw1(step=-1)")
    with pytest.raises(ValueError, match="consecutive event years"):
        path_structure("rw1", [2010, 2012, 2013], 2011 + 3)
    resolved = EventPathPrior("rw1").resolved(0.8)
    assert (resolved.scale, resolved.step) == (2.0, 0.8)

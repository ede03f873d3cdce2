"""The collapsed Gaussian TWFE density (intercept, Mundlak terms, year effects integrated out).

Held to two independent references: the Gaussian identity p(y) = p(y | phi) p(phi) /
p(phi | y) at arbitrary phi, with the conditional posterior of phi computed by brute-force GLS
on the observation-level covariance (sigma^2 I + unit_sd^2 11' per unit); and central finite
differences for the gradient.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from models.bayes.priors import Prior
from models.panel.collapsed import (
    CollapsedStats,
    collapsed_logp_and_gradient,
    draw_linear_terms,
    pack_stats,
    zero_sum_basis,
)
from models.panel.collapsed_op import assemble, collapsed_normal_logp_fused, unpack
from models.panel.design import prepare_panel
from tests.models.panel.test_marginal import _unbalanced_panel

PARAMS = {"beta": np.array([0.4, -0.2]), "sigma": 0.9, "unit_sd": 0.7, "year_sd": 0.5}
INTERCEPT_PRIOR = Prior.of("normal", 0.8, 2.0)
BETWEEN_PRIORS = [Prior.of("normal", 0.1, 1.5), Prior.of("normal", -0.2, 3.0)]


def _balanced_panel(seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product([[f"u{i}" for i in range(30)], range(2000, 2008)],
                                       names=["unit", "year"])
    df = index.to_frame(index=False)
    df["x1"] = rng.normal(size=len(df)) + 0.05 * df["unit"].str[1:].astype(int)
    df["x2"] = rng.normal(size=len(df))
    df["y"] = 1.0 + df["x1"] + rng.normal(size=len(df))
    return df


@pytest.fixture(params=["unbalanced_years", "balanced_years", "no_years"])
def case(request):
    df = _balanced_panel() if request.param == "balanced_years" else _unbalanced_panel()
    time = None if request.param == "no_years" else "year"
    design = prepare_panel(df, "y", ["x1", "x2"], "unit", time)
    stats = CollapsedStats.from_design(design, INTERCEPT_PRIOR, BETWEEN_PRIORS)
    return design, stats


def _linear_map(design, stats):
    """Rows of A with y - X~ beta = A phi + unit effect + noise, phi = (alpha - c, lambda, eta)."""
    columns = [np.ones((design.n_obs, 1)), design.unit_means[design.unit_idx]]
    if stats.year_basis is not None:
        columns.append(stats.year_basis[design.time_idx])
    return np.hstack(columns)


def _gls_posterior(design, stats, params):
    """Conditional posterior of phi from the n x n covariance, without sufficient statistics."""
    a = _linear_map(design, stats)
    target = design.y - design.x_within @ params["beta"] - stats.ybar_centre
    cov = params["sigma"] ** 2 * np.eye(design.n_obs)
    same_unit = design.unit_idx[:, None] == design.unit_idx[None, :]
    cov += params["unit_sd"] ** 2 * same_unit
    cov_inv = np.linalg.inv(cov)
    prior_var = np.concatenate([stats.prior_sd**2,
                                np.full(a.shape[1] - stats.n_fixed, params["year_sd"] ** 2)])
    prior_mean = np.concatenate([stats.prior_mean, np.zeros(a.shape[1] - stats.n_fixed)])
    precision = a.T @ cov_inv @ a + np.diag(1.0 / prior_var)
    shift = a.T @ cov_inv @ target + prior_mean / prior_var
    return precision, shift, a, target, cov, prior_mean, prior_var


def test_precision_equals_brute_force_gls(case):
    import dataclasses

    design, stats = case
    dense = dataclasses.replace(stats, dense_size=float(stats.group_zy.shape[1]))
    fields = unpack(pack_stats(dense))
    precision, shift, _ = assemble(PARAMS["sigma"] ** 2, PARAMS["unit_sd"] ** 2,
                                   PARAMS["year_sd"] ** 2, *fields[4:5], *fields[6:12],
                                   int(dense.dense_size))
    # b of the sufficient statistics leaves beta out: it enters the within part only.
    expected_p, expected_b, *_ = _gls_posterior(design, stats, PARAMS)
    np.testing.assert_allclose(precision, expected_p, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(shift, expected_b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("anchor_seed", [0, 1])
def test_collapsed_density_equals_gaussian_identity(case, anchor_seed):
    design, stats = case
    precision, shift, a, target, cov, prior_mean, prior_var = _gls_posterior(design, stats,
                                                                            PARAMS)
    phi = np.random.default_rng(anchor_seed).normal(size=a.shape[1])
    log_lik = st.multivariate_normal(a @ phi, cov).logpdf(target)
    log_prior = st.norm(prior_mean, np.sqrt(prior_var)).logpdf(phi).sum()
    post_cov = np.linalg.inv(precision)
    log_post = st.multivariate_normal(post_cov @ shift, post_cov).logpdf(phi)
    expected = log_lik + log_prior - log_post
    value, *_ = collapsed_logp_and_gradient(PARAMS["beta"], PARAMS["sigma"], PARAMS["unit_sd"],
                                            PARAMS["year_sd"], stats)
    assert float(value) == pytest.approx(expected, rel=1e-10, abs=1e-8)


def test_gradient_equals_finite_differences(case):
    _, stats = case
    point = np.concatenate([PARAMS["beta"], [PARAMS["sigma"], PARAMS["unit_sd"],
                                             PARAMS["year_sd"]]])

    def value_at(x):
        return float(collapsed_logp_and_gradient(x[:2], x[2], x[3], x[4], stats)[0])

    _, grad_beta, grad_sigma, grad_unit, grad_year = collapsed_logp_and_gradient(
        point[:2], *point[2:], stats)
    analytic = np.concatenate([grad_beta, [grad_sigma, grad_unit, grad_year]])
    step = 1e-6
    numeric = np.array([(value_at(point + step * e) - value_at(point - step * e)) / (2 * step)
                        for e in np.eye(point.size)])
    if stats.year_basis is None:
        assert analytic[-1] == 0.0
        analytic, numeric = analytic[:-1], numeric[:-1]
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["FAST_COMPILE", "NUMBA"])
def test_op_equals_kernel_in_both_backends(case, mode):
    import pytensor
    import pytensor.tensor as pt

    _, stats = case
    beta, sigma, unit_sd, year_sd = (pt.dvector("beta"), pt.dscalar("sigma"),
                                     pt.dscalar("unit_sd"), pt.dscalar("year_sd"))
    has_years = stats.year_basis is not None
    value = collapsed_normal_logp_fused(pack_stats(stats), beta, sigma, unit_sd,
                                        year_sd if has_years else None)
    inputs = [beta, sigma, unit_sd] + ([year_sd] if has_years else [])
    function = pytensor.function(inputs, [value, *pytensor.grad(value, inputs)], mode=mode)
    args = [PARAMS["beta"], PARAMS["sigma"], PARAMS["unit_sd"]] + (
        [PARAMS["year_sd"]] if has_years else [])
    got = function(*args)
    expected = collapsed_logp_and_gradient(PARAMS["beta"], PARAMS["sigma"], PARAMS["unit_sd"],
                                           PARAMS["year_sd"], stats)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-10)
    np.testing.assert_allclose(got[2:], expected[2:2 + len(got) - 2], rtol=1e-10)


def test_exact_draws_have_the_gls_mean_and_covariance(case):
    design, stats = case
    n = 20_000
    draws = draw_linear_terms(stats, np.full(n, PARAMS["sigma"]), np.full(n, PARAMS["unit_sd"]),
                              np.full(n, PARAMS["year_sd"]), seed=3)
    precision, shift, *_ = _gls_posterior(design, stats, PARAMS)
    cov = np.linalg.inv(precision)
    mean = cov @ shift
    phi = np.column_stack([draws["intercept"] - stats.ybar_centre, draws["between"]])
    if stats.year_basis is not None:
        year = draws["year_effect"]
        np.testing.assert_allclose(year.sum(axis=1), 0.0, atol=1e-10)
        phi = np.column_stack([phi, year @ stats.year_basis])
    sd = np.sqrt(np.diag(cov))
    # Monte Carlo error of a mean of 20,000 draws is sd / 141; allow 4.5 of them.
    np.testing.assert_array_less(np.abs(phi.mean(axis=0) - mean), 4.5 * sd / np.sqrt(n))
    np.testing.assert_allclose(np.cov(phi.T), cov, atol=0.05 * sd.max() ** 2)


def test_balanced_years_take_the_diagonal_path_with_the_dense_value(case):
    import dataclasses

    design, stats = case
    balanced = design.time_idx is not None and np.all(
        np.bincount(design.unit_idx) == len(design.time_labels))
    assert stats.dense_size == (stats.n_fixed if balanced or design.time_idx is None
                                else stats.group_zy.shape[1])
    dense = dataclasses.replace(stats, dense_size=float(stats.group_zy.shape[1]))
    args = (PARAMS["beta"], PARAMS["sigma"], PARAMS["unit_sd"], PARAMS["year_sd"])
    for got, expected in zip(collapsed_logp_and_gradient(*args, stats),
                             collapsed_logp_and_gradient(*args, dense), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_zero_sum_basis_is_orthonormal_and_sums_to_zero():
    basis = zero_sum_basis(7)
    np.testing.assert_allclose(basis.T @ basis, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(basis.sum(axis=0), 0.0, atol=1e-12)


def test_non_normal_prior_is_refused():
    design = prepare_panel(_unbalanced_panel(), "y", ["x1", "x2"], "unit", "year")
    with pytest.raises(ValueError, match="between.x2"):
        CollapsedStats.from_design(design, INTERCEPT_PRIOR,
                                   [BETWEEN_PRIORS[0], Prior.of("student_t", 3, 0, 1)])


def test_auto_collapses_only_small_dense_blocks_with_normal_priors():
    from models.panel.bayes import resolve_priors
    from models.panel.model import MAX_COLLAPSED_DENSE_BLOCK, unit_effects_mode

    balanced = prepare_panel(_balanced_panel(), "y", ["x1", "x2"], "unit", "year")
    priors = resolve_priors(None, balanced, "identity")
    assert unit_effects_mode("normal", "mundlak", "auto", priors, balanced) == "collapsed"
    assert unit_effects_mode("student_t", "mundlak", "auto", priors, balanced) == "sampled"
    heavy = resolve_priors({"between": "student_t(3, 0, 1)"}, balanced, "identity")
    assert unit_effects_mode("normal", "mundlak", "auto", heavy, balanced) == "marginalised"
    with pytest.raises(ValueError, match="normal priors on the intercept"):
        unit_effects_mode("normal", "mundlak", "collapsed", heavy, balanced)
    # Unbalanced over 40 years: the year block is coupled and too large to factor per step.
    rng = np.random.default_rng(1)
    rows = [(f"u{i}", 1980 + t) for i in range(60) for t in range(40) if rng.random() < 0.8]
    df = pd.DataFrame(rows, columns=["unit", "year"])
    df["x1"], df["x2"], df["y"] = rng.normal(size=(3, len(df)))
    unbalanced = prepare_panel(df, "y", ["x1", "x2"], "unit", "year")
    priors = resolve_priors(None, unbalanced, "identity")
    assert collapsed_dense_size(unbalanced, priors) > MAX_COLLAPSED_DENSE_BLOCK
    assert unit_effects_mode("normal", "mundlak", "auto", priors, unbalanced) == "marginalised"


def collapsed_dense_size(design, priors) -> float:
    from models.panel.model import collapsed_stats

    return collapsed_stats(design, priors).dense_size

"""Bayesian panel threshold model: exact marginalisation, recovery, and Hansen's (1999) data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp

from models.threshold.bayes import fit_bayes_threshold
from models.threshold.data import (
    ThresholdData,
    admissible_configs,
    prepare_threshold_data,
    threshold_log_prior,
)
from models.threshold.likelihood import config_loglik, profile_fit
from models.threshold.model import build_threshold_model, whitening
from models.threshold.posterior import log_marginal_likelihood, pointwise_loglik, recover_thresholds
from models.threshold.priors import resolve_slope_priors
from tests.models.bayes.recipe_processes import store_then_load


def simulate_panel(n_units=60, n_periods=8, gammas=(0.0,), deltas=(1.0, 2.0), beta=0.5,
                   sigma=0.5, seed=1) -> pd.DataFrame:
    """y_it = mu_i + beta f_it + delta_r(q_it) x_it + sigma e_it, regimes cut by ``gammas``."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(n_periods), n_units)
    effect = rng.normal(size=n_units)[unit]
    q = rng.normal(size=unit.size) + 0.3 * effect
    x = rng.normal(size=unit.size) + 0.5 * effect
    f = rng.normal(size=unit.size)
    slope = np.asarray(deltas)[np.searchsorted(np.asarray(gammas), q, side="right")]
    y = effect + beta * f + slope * x + sigma * rng.normal(size=unit.size)
    return pd.DataFrame(dict(unit=unit, year=period, y=y, x=x, f=f, q=q))


def prepare(frame, demean="hansen", grid_size=40, trim=0.05, time=False):
    return prepare_threshold_data(frame, y="y", regime="x", threshold="q", fixed=["f"],
                                     unit="unit", period="year", demean=demean, time=time,
                                     grid_size=grid_size, trim=trim)


def brute_force_design(data: ThresholdData, thresholds) -> np.ndarray:
    """The transformed regime-split design built column by column from the panel."""
    panel = data.panel
    bounds = np.concatenate([[-np.inf], np.sort(thresholds), [np.inf]])
    columns = [data.base[:, :data.n_fixed]]
    for low, high in zip(bounds[:-1], bounds[1:]):
        inside = (panel.q >= low) & (panel.q < high)
        columns.append(panel.transform(panel.regime * inside[:, :, None]))
    return np.concatenate(columns, axis=1)


def brute_force_loglik(data: ThresholdData, thresholds, theta, sigma) -> float:
    residual = data.y - brute_force_design(data, thresholds) @ theta
    return (-0.5 * data.dof * math.log(2 * math.pi * sigma**2)
            - residual @ residual / (2 * sigma**2))


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return simulate_panel(gammas=(-0.5, 0.6), deltas=(1.0, 2.0, 0.5))


@pytest.mark.parametrize("demean", ["hansen", "all"])
def test_pair_gram_equals_dense_cross_products(panel, demean):
    data = prepare(panel, demean)
    columns = data.split_columns()
    dense = np.einsum("mjc,mkd->jkcd", columns, columns)
    assert np.allclose(data.split_gram, dense, rtol=1e-10, atol=1e-9)
    assert np.allclose(data.split_y, np.einsum("mjc,m->jc", columns, data.y), atol=1e-9)


@pytest.mark.parametrize("demean", ["hansen", "all"])
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_config_loglik_equals_brute_force(panel, demean, k):
    data = prepare(panel, demean, time=True)
    log_prior = threshold_log_prior(data.grid, k, "uniform", 2)
    rng = np.random.default_rng(k)
    size = data.n_fixed + (k + 1) * data.n_regime
    theta = rng.normal(size=(2, size))
    sigma = np.array([0.6, 1.3])
    loglik = config_loglik(theta, sigma, data, k)
    configs = admissible_configs(log_prior)
    picks = configs[rng.choice(configs.shape[0], size=min(25, configs.shape[0]), replace=False)]
    for s in range(2):
        for config in picks:
            expected = brute_force_loglik(data, data.grid[config], theta[s], sigma[s])
            assert abs(loglik[(s, *config)] - expected) < 1e-8 * abs(expected)


@pytest.mark.parametrize("k", [1, 2])
def test_pymc_log_density_is_exact_marginal(panel, k):
    """The PyMC model's log density = slope priors + sigma prior + log-sum-exp of brute force."""
    data = prepare(panel, "hansen", grid_size=24, trim=0.1)
    log_prior = threshold_log_prior(data.grid, k, "uniform", 2)
    priors = resolve_slope_priors(None, data, k)
    profile = profile_fit(data, k, log_prior)
    centre, chol = whitening(profile)
    model = build_threshold_model(data, k, priors, log_prior, centre, chol)
    white = np.random.default_rng(3).normal(size=centre.size)
    sigma = 0.8
    point = {"slope_white": white, "sigma_log__": np.log(sigma)}
    value = model.compile_logp(jacobian=False)(point)
    theta = centre + chol @ white
    configs = admissible_configs(log_prior)
    marginal = logsumexp([log_prior[tuple(c)] + brute_force_loglik(data, data.grid[c], theta,
                                                                   sigma) for c in configs])
    terms = data.term_names(k)
    slope_prior = sum(stats.norm.logpdf(theta[j], 0.0,
                                        priors.term_prior("slope", t).kwargs["sigma"])
                      for j, t in enumerate(terms))
    sigma_prior = stats.halfnorm.logpdf(sigma, scale=priors.sigma.kwargs["sigma"])
    assert value == pytest.approx(marginal + slope_prior + sigma_prior, abs=1e-8)


@pytest.mark.parametrize("demean", ["hansen", "all"])
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_marginal_kernel_value_and_gradient(panel, demean, k):
    """The Op's kernel: value = log-sum-exp of brute force, gradient = central differences
    (two regime regressors, so every block of the chain rule is exercised)."""
    from models.threshold.kernels import marginal_loglik
    from models.threshold.op import STATISTIC_NAMES, marginal_statistics

    frame = panel.assign(x2=np.random.default_rng(7).normal(size=len(panel)))
    data = prepare_threshold_data(frame, y="y", regime=["x", "x2"], threshold="q",
                                     fixed=["f"], unit="unit", period="year", demean=demean,
                                     grid_size=24, trim=0.1)
    log_prior = threshold_log_prior(data.grid, k, "uniform", 2)
    statistics = marginal_statistics(data, k, log_prior)
    arrays = [statistics[name] for name in STATISTIC_NAMES]

    def kernel(theta, sigma):
        return marginal_loglik(theta, sigma, data.n_fixed, data.n_regime, k, float(data.dof),
                               float(arrays[0]), *arrays[1:])

    rng = np.random.default_rng(k)
    theta = 0.5 * rng.normal(size=data.n_fixed + (k + 1) * data.n_regime)
    sigma = 0.9
    value, grad_theta, grad_sigma = kernel(theta, sigma)
    loglik = config_loglik(theta, np.array([sigma]), data, k)[0]
    expected = logsumexp(loglik + log_prior) if k else float(loglik)
    assert value == pytest.approx(expected, rel=1e-12)
    step = 1e-6
    numeric = [(kernel(theta + step * e, sigma)[0] - kernel(theta - step * e, sigma)[0])
               / (2 * step) for e in np.eye(theta.size)]
    assert np.allclose(grad_theta, numeric, rtol=1e-6, atol=1e-6 * np.abs(grad_theta).max())
    numeric_sigma = (kernel(theta, sigma + step)[0] - kernel(theta, sigma - step)[0]) / (2 * step)
    assert grad_sigma == pytest.approx(numeric_sigma, rel=1e-6)


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_numba_log_density_equals_python_backend(panel, k):
    """The compiled (numba, as under nutpie) log density and gradient, which call the kernel
    as a C function by name, equal PyMC's default backend, which runs the Op's ``perform``."""
    import pytensor

    data = prepare(panel, "hansen", grid_size=24, trim=0.1)
    log_prior = threshold_log_prior(data.grid, k, "uniform", 2)
    priors = resolve_slope_priors(None, data, k)
    centre, chol = whitening(profile_fit(data, k, log_prior))
    model = build_threshold_model(data, k, priors, log_prior, centre, chol)
    inputs = model.value_vars
    outputs = [model.logp(), *pytensor.grad(model.logp(), inputs)]
    point = [np.random.default_rng(4).normal(size=centre.size), np.array(np.log(0.7))]
    default = pytensor.function(inputs, outputs)(*point)
    numba = pytensor.function(inputs, outputs, mode="NUMBA")(*point)
    for left, right in zip(default, numba, strict=True):
        assert np.allclose(left, right, rtol=1e-10, atol=1e-10)


def test_numba_log_density_raises_where_the_kernel_raises(panel):
    """A sigma that underflows to zero makes the kernel raise; through the C function the
    compiled log density raises too instead of returning what its output buffer held."""
    import pytensor

    data = prepare(panel, "hansen", grid_size=24, trim=0.1)
    log_prior = threshold_log_prior(data.grid, 2, "uniform", 2)
    priors = resolve_slope_priors(None, data, 2)
    centre, chol = whitening(profile_fit(data, 2, log_prior))
    model = build_threshold_model(data, 2, priors, log_prior, centre, chol)
    point = [np.zeros(centre.size), np.array(-800.0)]  # exp(-800) is 0.0 in float64
    outputs = [model.logp(), *pytensor.grad(model.logp(), model.value_vars)]
    with pytest.raises(ZeroDivisionError):
        pytensor.function(model.value_vars, outputs)(*point)
    with pytest.raises(FloatingPointError, match="threshold log likelihood failed"):
        pytensor.function(model.value_vars, outputs, mode="NUMBA")(*point)


_FRESH_PROCESS = """
import numpy as np
from models.threshold.data import threshold_log_prior
from models.threshold.likelihood import profile_fit
from models.threshold.model import build_threshold_model, whitening
from models.threshold.priors import resolve_slope_priors
from tests.models.threshold.test_bayes import prepare, simulate_panel
data = prepare(simulate_panel(gammas=(-0.5, 0.6), deltas=(1.0, 2.0, 0.5)), grid_size=24,
               trim=0.1)
log_prior = threshold_log_prior(data.grid, 2, "uniform", 2)
centre, chol = whitening(profile_fit(data, 2, log_prior))
model = build_threshold_model(data, 2, resolve_slope_priors(None, data, 2), log_prior, centre,
                              chol)
compiled = nutpie_compile.compile_model(model)
x = np.random.default_rng(4).normal(size=compiled._n_dim)
value, gradient = nutpie_compile.logp_function(compiled)(x)
print(json.dumps({"value": value, "gradient": list(gradient)}))
"""


def test_a_fresh_process_loads_the_compiled_model_from_its_recipe(tmp_path):
    """The second process loads the stored recipe and numba's cached code without converting
    the Op, which would register the kernel's C symbol: the model registers it itself, else
    LLVM aborts the process ("Symbol not found"). Both processes give the same density."""
    results = store_then_load(_FRESH_PROCESS, tmp_path)
    assert len(list(tmp_path.glob("*.pkl"))) == 1
    assert results[0] == results[1]


def test_threshold_prior_is_ordered_uniform_with_gaps():
    grid = np.linspace(0.0, 1.0, 10)
    log_prior = threshold_log_prior(grid, 2, "uniform", 3)
    configs = admissible_configs(log_prior)
    assert np.all(configs[:, 1] - configs[:, 0] >= 3)
    # pairs (i, j) with j - i >= 3 among 10 points: sum_{g=3}^{9} (10 - g) = 28
    assert configs.shape[0] == 28
    assert np.allclose(np.exp(log_prior[tuple(configs.T)]), 1.0 / 28)
    weighted = threshold_log_prior(grid ** 2, 1, "uniform_value")
    assert np.exp(weighted).sum() == pytest.approx(1.0)
    assert weighted[-1] > weighted[0]
    with pytest.raises(ValueError, match="threshold prior"):
        threshold_log_prior(grid, 1, "beta")


def test_bad_column_is_named(panel):
    with pytest.raises(ValueError, match="qq"):
        prepare_threshold_data(panel, y="y", regime="x", threshold="qq", fixed=["f"],
                                  unit="unit", period="year")


def test_recovered_thresholds_concentrate_on_truth():
    """Exact conditional draws of gamma, given slope draws near the posterior, find the truth."""
    truth = (-0.4, 0.5)
    frame = simulate_panel(n_units=150, n_periods=8, gammas=truth, deltas=(0.0, 1.5, -0.5),
                           sigma=0.4, seed=5)
    data = prepare(frame, grid_size=100, trim=0.05)
    log_prior = threshold_log_prior(data.grid, 2, "uniform", 5)
    profile = profile_fit(data, 2, log_prior)
    rng = np.random.default_rng(0)
    centre, chol = whitening(profile)
    theta = centre + rng.standard_normal((400, centre.size)) @ chol.T
    sigma = np.full(400, profile["sigma"])
    recovered = recover_thresholds(theta, sigma, data, 2, log_prior, rng)
    gamma = data.grid[recovered["index"]]
    spacing = np.diff(np.quantile(frame["q"], [0.45, 0.55]))[0]
    for r in range(2):
        assert abs(np.median(gamma[:, r]) - truth[r]) < spacing
        assert np.mean(np.abs(gamma[:, r] - truth[r]) < 2 * spacing) > 0.9
    assert np.allclose(recovered["probability"].sum(axis=1), 1.0)


def test_pointwise_loglik_matches_brute_force(panel):
    data = prepare(panel, "all", grid_size=30, trim=0.1)
    k = 1
    log_prior = threshold_log_prior(data.grid, k)
    profile = profile_fit(data, k, log_prior)
    centre, chol = whitening(profile, inflate=4.0)
    rng = np.random.default_rng(1)
    theta = centre + rng.standard_normal((3, centre.size)) @ chol.T
    sigma = np.full(3, profile["sigma"])
    recovered = recover_thresholds(theta, sigma, data, k, log_prior, rng)
    pointwise, retained = pointwise_loglik(theta, sigma, data, k, recovered)
    assert retained > 1 - 1e-6
    weight_row = data.dof / data.n_rows
    for s in range(3):
        logits = config_loglik(theta[s:s + 1], sigma[s:s + 1], data, k)[0] + log_prior
        conditional = np.exp(logits - logsumexp(logits))
        per_config = []
        for g in data.grid:
            residual = data.y - brute_force_design(data, [g]) @ theta[s]
            per_config.append(-0.5 * weight_row * math.log(2 * math.pi * sigma[s] ** 2)
                              - residual**2 / (2 * sigma[s] ** 2))
        per_config = np.array(per_config)                                   # (K, m)
        expected = -logsumexp(-per_config, b=conditional[:, None], axis=0)
        assert np.allclose(pointwise[s], expected, atol=1e-6)
    # without thresholds the rows add up to the likelihood
    k0, _ = pointwise_loglik(theta[:, :2], sigma, data, 0, {})
    total = config_loglik(theta[:, :2], sigma, data, 0)
    assert np.allclose(k0.sum(axis=1), total, rtol=1e-10)


def test_rao_blackwellised_probability_is_exact_average():
    """The threshold posterior over the grid = mean over draws of the exact conditionals, and
    the draws follow the conditional (checked on one draw repeated)."""
    frame = simulate_panel(n_units=40, n_periods=6, gammas=(-0.3, 0.5), deltas=(0.0, 1.0, 0.3),
                           seed=8)
    data = prepare(frame, grid_size=30, trim=0.1)
    k = 2
    log_prior = threshold_log_prior(data.grid, k, "uniform", 2)
    centre, chol = whitening(profile_fit(data, k, log_prior), inflate=4.0)
    rng = np.random.default_rng(2)
    theta = centre + rng.standard_normal((50, centre.size)) @ chol.T
    sigma = np.full(50, 1.0)
    recovered = recover_thresholds(theta, sigma, data, k, log_prior, rng)
    logits = config_loglik(theta, sigma, data, k) + log_prior
    conditional = np.exp(logits - logsumexp(logits, axis=(1, 2), keepdims=True))
    assert np.allclose(recovered["probability"][0], conditional.sum(axis=2).mean(axis=0),
                       atol=1e-12)
    assert np.allclose(recovered["probability"][1], conditional.sum(axis=1).mean(axis=0),
                       atol=1e-12)
    repeated = np.repeat(theta[:1], 4000, axis=0)
    draws = recover_thresholds(repeated, np.full(4000, 1.0), data, k, log_prior, rng)
    frequency = np.bincount(draws["index"][:, 0], minlength=data.n_candidates) / 4000
    expected = conditional[0].sum(axis=1)
    assert np.abs(frequency - expected).max() < 4 * np.sqrt(expected.max() / 4000)


@pytest.mark.parametrize("demean", ["hansen", "all"])
def test_pointwise_loglik_two_thresholds_matches_brute_force(panel, demean):
    """Two thresholds, spread conditional: units with several distinct residual patterns."""
    data = prepare(panel, demean, grid_size=30, trim=0.1)
    k = 2
    log_prior = threshold_log_prior(data.grid, k, "uniform", 2)
    centre, chol = whitening(profile_fit(data, k, log_prior), inflate=4.0)
    rng = np.random.default_rng(3)
    theta = centre + rng.standard_normal((3, centre.size)) @ chol.T
    sigma = np.full(3, 2.0)
    recovered = recover_thresholds(theta, sigma, data, k, log_prior, rng)
    pointwise, _ = pointwise_loglik(theta, sigma, data, k, recovered)
    weight_row = data.dof / data.n_rows
    configs = recovered["configs"]
    for s in range(3):
        keep = recovered["top"][s] >= 0
        weights = recovered["top_weight"][s][keep] / recovered["top_weight"][s][keep].sum()
        per_config = []
        for j in recovered["top"][s][keep]:
            residual = data.y - brute_force_design(data, data.grid[configs[j]]) @ theta[s]
            per_config.append(-0.5 * weight_row * math.log(2 * math.pi * sigma[s] ** 2)
                              - residual**2 / (2 * sigma[s] ** 2))
        expected = -logsumexp(-np.array(per_config), b=weights[:, None], axis=0)
        assert np.allclose(pointwise[s], expected, atol=1e-9)


def test_log_marginal_likelihood_equals_quadrature():
    """Closed form in the slopes + Gauss-Legendre in sigma = direct Gaussian integral by quad."""
    frame = simulate_panel(n_units=12, n_periods=5, gammas=(0.2,), deltas=(1.0, 1.8), seed=2)
    data = prepare(frame, "hansen", grid_size=10, trim=0.2)
    k = 1
    log_prior = threshold_log_prior(data.grid, k)
    priors = resolve_slope_priors({"slope": "normal(0, 2)", "sigma": "halfnormal(1)"},
                                     data, k)
    value = log_marginal_likelihood(data, k, priors, log_prior)
    prior_var = np.full(data.n_fixed + 2, 4.0)
    total = []
    for j, g in enumerate(data.grid):
        design = brute_force_design(data, [g])

        def density(sigma, design=design):
            covariance = sigma**2 * np.eye(data.n_rows) + design @ np.diag(prior_var) @ design.T
            return math.exp(stats.multivariate_normal.logpdf(data.y, cov=covariance) + 60.0
                            ) * stats.halfnorm.pdf(sigma)

        area, _ = integrate.quad(density, 1e-3, 5.0, limit=200, epsabs=0, epsrel=1e-10)
        total.append(log_prior[j] + math.log(area) - 60.0)
    assert value == pytest.approx(logsumexp(total), abs=1e-6)


@pytest.mark.slow
def test_small_fit_recovers_single_threshold():
    """NUTS end to end on a small panel: posterior of gamma around the truth, slopes covered."""
    frame = simulate_panel(n_units=80, n_periods=6, gammas=(0.3,), deltas=(0.5, 1.5), seed=11)
    fit = fit_bayes_threshold(frame, y="y", regime="x", threshold="q", fixed=["f"],
                                 unit="unit", period="year", n_thresholds=1, grid_size=60,
                                 trim=(0.05,), draws=300, tune=300, chains=2, seed=1)
    table = fit.tidy().set_index("term")
    spacing = np.diff(np.quantile(frame["q"], [0.45, 0.55]))[0]
    assert abs(table.loc["gamma_1", "estimate"] - 0.3) < 2 * spacing
    for term, truth in (("x_regime1", 0.5), ("x_regime2", 1.5), ("f", 0.5)):
        row = table.loc[term]
        assert abs(row["estimate"] - truth) < 4 * row["std_error"]
    assert fit.idata.log_likelihood["y"].shape[-1] == fit.spec["n_rows"]
    assert set(fit.idata.log_prior.data_vars) == {"slope", "sigma", "thresholds"}
    assert np.isfinite(fit.log_marginal_likelihood)


@pytest.mark.slow
def test_hansen_double_threshold_posterior():
    """Hansen (1999): gamma posteriors inside his 95% LR sets; regime slopes near Table 5."""
    from data.hansen1999 import load_invest_panel

    fit = fit_bayes_threshold(load_invest_panel(), y="I", regime="CF", threshold="D",
                                 fixed=["Q", "Q2", "Q3", "D", "QD"], unit="firm",
                                 period="year", n_thresholds=2, draws=1000, tune=1000,
                                 chains=4, seed=1, pointwise=False)
    gamma = fit.idata.posterior["gamma"]
    for r, (low, high) in enumerate([(0.0139, 0.0181), (0.5305, 0.5629)]):
        draws = gamma.isel(threshold=r).values.ravel()
        assert np.mean((draws >= low) & (draws <= high)) > 0.9
    table = fit.tidy().set_index("term")
    for term, published in (("CF_regime1", 0.063), ("CF_regime2", 0.098),
                            ("CF_regime3", 0.039)):
        assert abs(table.loc[term, "estimate"] - published) < table.loc[term, "std_error"]
    assert fit.converged, fit.convergence_problems()


@pytest.mark.slow
def test_smooth_transition_approaches_sharp_threshold():
    """On data with a sharp threshold the PSTR location sits at it and the slopes match."""
    from models.threshold.smooth_transition import fit_smooth_transition

    frame = simulate_panel(n_units=100, n_periods=6, gammas=(0.3,), deltas=(0.0, 1.5),
                           sigma=0.4, seed=21)
    fit = fit_smooth_transition(frame, y="y", regime="x", threshold="q", fixed=["f"],
                                unit="unit", period="year", draws=400, tune=400, chains=2,
                                seed=2)
    table = fit.tidy().set_index("term")
    spacing = np.diff(np.quantile(frame["q"], [0.45, 0.55]))[0]
    assert abs(table.loc["location", "estimate"] - 0.3) < 2 * spacing
    assert table.loc["log_gamma", "estimate"] > math.log(10.0)
    for term, truth in (("x_regime1", 0.0), ("x_regime2", 1.5)):
        assert abs(table.loc[term, "estimate"] - truth) < 4 * table.loc[term, "std_error"]

"""The scales-only Gaussian TWFE: its density is the PyMC model's with the slopes integrated out.

References: the PyMC collapsed model (:func:`models.panel.model.build_twfe_model`), whose log
density is exactly quadratic in the slopes, so that its integral over them is the Gaussian
integral at the mode with the Hessian from finite differences of PyMC's gradient; PyMC's own
prior densities; central finite differences; direct linear algebra for the slope draws; and
for the posterior, pyfixest's TWFE estimate and the exact conjugate draws.
"""

from __future__ import annotations

import numpy as np
import pytest

from models.bayes.priors import Prior
from models.panel import scales
from models.panel.bayes import resolve_priors
from models.panel.design import prepare_panel
from models.panel.model import build_twfe_model, collapsed_stats
from models.panel.scales_op import SCALE_FAMILIES, draw_slopes, scale_log_priors, scales_logp
from tests.models.panel.test_collapsed import _balanced_panel
from tests.models.panel.test_marginal import _unbalanced_panel

# Informative-ish priors of several families, so the test sees every part of the density.
PRIORS = ["slope.x1=normal(0.3, 0.5)", "slope.x2=normal(-0.1, 2)", "sigma=gamma(2, 1.5)",
          "unit_sd=halfstudentt(4, 1)", "year_sd=lognormal(-1, 0.8)",
          "intercept=normal(1, 3)", "between=normal(0.2, 1.5)"]


@pytest.fixture(params=["unbalanced_years", "balanced_years", "no_years", "balanced_no_years"],
                scope="module")
def case(request):
    df = _balanced_panel() if request.param.startswith("balanced") else _unbalanced_panel()
    time = None if request.param.endswith("no_years") else "year"
    design = prepare_panel(df, "y", ["x1", "x2"], "unit", time)
    priors = resolve_priors(PRIORS, design, "identity")
    stats = collapsed_stats(design, priors)
    return request.param, design, priors, stats


def _pymc_density_without_slopes(design, priors):
    """theta -> log of the integral over the slopes of the PyMC collapsed model's density
    (unconstrained, Jacobian included)."""
    import pytensor

    model = build_twfe_model(design, priors, unit_effects="collapsed")
    names = [v.name for v in model.value_vars]
    slope = model.rvs_to_values[model["slope"]]
    logp = model.logp(jacobian=True)
    function = pytensor.function(model.value_vars, [logp, pytensor.grad(logp, slope)],
                                 mode="FAST_COMPILE")
    k = len(design.regressors)

    def at(theta, beta):
        values = {"sigma_log__": theta[0], "unit_sd_log__": theta[1], "slope": beta}
        if len(theta) == 3:
            values["year_sd_log__"] = theta[2]
        return function(*[np.asarray(values[n], dtype=float) for n in names])

    def density(theta):
        beta = np.zeros(k)
        _, grad = at(theta, beta)
        # The density is quadratic in beta: central differences of its gradient are exact.
        hessian = np.column_stack([at(theta, beta + e)[1] - at(theta, beta - e)[1]
                                   for e in 0.5 * np.eye(k)])
        mode = beta - np.linalg.solve(hessian, grad)
        value, _ = at(theta, mode)
        return value + 0.5 * k * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(-hessian)[1]

    return density


def _points(design, stats, n=4, seed=0):
    start = scales.moment_scales(design, stats)
    rng = np.random.default_rng(seed)
    return [start + rng.uniform(-0.6, 0.6, start.size) for _ in range(n)]


def test_density_equals_pymc_model_with_slopes_integrated_out(case):
    name, design, priors, stats = case
    packed = scales.pack_scales(design, priors, stats)
    assert packed[12] == (1.0 if name.startswith("balanced") else 0.0)
    reference = _pymc_density_without_slopes(design, priors)
    points = _points(design, stats)
    ours = np.array([scales_logp(p, packed)[0] for p in points])
    theirs = np.array([reference(p) for p in points])
    # Up to a constant: compare the differences between points (they span tens of units).
    assert np.ptp(theirs) > 1.0
    np.testing.assert_allclose(ours - ours[0], theirs - theirs[0], rtol=1e-9, atol=1e-7)


def test_gradient_equals_finite_differences(case):
    _, design, priors, stats = case
    packed = scales.pack_scales(design, priors, stats)
    for point in _points(design, stats, n=2, seed=1):
        _, analytic = scales_logp(point, packed)
        step = 1e-6
        numeric = [(scales_logp(point + step * e, packed)[0]
                    - scales_logp(point - step * e, packed)[0]) / (2 * step)
                   for e in np.eye(point.size)]
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-5)


def test_balanced_closed_form_equals_the_general_kernel(case, monkeypatch):
    name, design, priors, stats = case
    if not name.startswith("balanced"):
        pytest.skip("the closed form serves balanced panels only")
    closed = scales.pack_scales(design, priors, stats)
    monkeypatch.setattr(scales, "balanced", lambda _: False)
    general = scales.pack_scales(design, priors, stats)
    assert general[12] == 0.0
    for point in _points(design, stats):
        value, grad = scales_logp(point, closed)
        expected_value, expected_grad = scales_logp(point, general)
        assert value == pytest.approx(expected_value, rel=1e-12)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("family", sorted(SCALE_FAMILIES))
def test_scale_prior_kernel_equals_pymc(family):
    import pymc as pm
    from scipy import stats as st

    from models.bayes.priors import FAMILIES

    parameters = {"halfnormal": (1.7,), "halfstudentt": (3.0, 0.8), "halfcauchy": (0.6,),
                  "exponential": (1.3,), "gamma": (2.5, 1.2), "inversegamma": (3.0, 2.0),
                  "lognormal": (-0.4, 0.7), "halfflat": ()}[family]
    prior = Prior.of(family, *parameters)
    values = np.array([0.05, 0.4, 1.0, 2.7, 9.0])
    expected = pm.logp(getattr(pm, FAMILIES[family].pymc_name).dist(**prior.kwargs),
                       values).eval()
    df = _balanced_panel()
    design = prepare_panel(df, "y", ["x1", "x2"], "unit", "year")
    priors = resolve_priors([f"unit_sd={prior}"], design, "identity")
    packed = scales.pack_scales(design, priors, collapsed_stats(design, priors))
    grid = np.column_stack([np.ones_like(values), values, np.ones_like(values)])
    ours = scale_log_priors(packed, grid)[:, 1]
    # PyMC's graphs of these densities round to about 1e-8 (scipy agrees with ours to 1e-14).
    np.testing.assert_allclose(ours, expected, rtol=1e-7, atol=1e-7)
    exact = {"halfnormal": lambda v: st.halfnorm.logpdf(v, scale=1.7),
             "halfstudentt": lambda v: st.t.logpdf(v, 3.0, scale=0.8) + np.log(2.0),
             "halfcauchy": lambda v: st.halfcauchy.logpdf(v, scale=0.6),
             "exponential": lambda v: st.expon.logpdf(v, scale=1 / 1.3),
             "gamma": lambda v: st.gamma.logpdf(v, 2.5, scale=1 / 1.2),
             "inversegamma": lambda v: st.invgamma.logpdf(v, 3.0, scale=2.0),
             "lognormal": lambda v: st.lognorm.logpdf(v, 0.7, scale=np.exp(-0.4)),
             "halfflat": np.zeros_like}[family](values)
    np.testing.assert_allclose(ours, exact, rtol=1e-12, atol=1e-12)


def test_slope_draws_have_the_conditional_mean_and_covariance(case):
    _, design, priors, stats = case
    packed = scales.pack_scales(design, priors, stats)
    k = len(design.regressors)
    sigma = 0.8
    slope_priors = [priors.term_prior("slope", t).kwargs for t in design.regressors]
    prior_mean = np.array([p["mu"] for p in slope_priors])
    prior_var = np.array([p["sigma"] for p in slope_priors]) ** 2
    precision = stats.sxx / sigma**2 + np.diag(1.0 / prior_var)
    mean = np.linalg.solve(precision, stats.sxy / sigma**2 + prior_mean / prior_var)
    # Zero noise gives the mean; unit noise vectors give a square root of the covariance.
    centre = draw_slopes(np.array([sigma]), packed, np.zeros((1, k)))[0]
    np.testing.assert_allclose(centre, mean, rtol=1e-10)
    root = draw_slopes(np.full(k, sigma), packed, np.eye(k)) - centre
    np.testing.assert_allclose(root.T @ root, np.linalg.inv(precision), rtol=1e-9, atol=1e-14)


def test_supports_only_normal_slopes_and_known_scale_families():
    design = prepare_panel(_balanced_panel(), "y", ["x1", "x2"], "unit", "year")
    assert scales.supports(design, resolve_priors(None, design, "identity"))
    assert not scales.supports(design, resolve_priors(["slope.x2=studentt(3, 0, 1)"], design,
                                                      "identity"))


@pytest.fixture(scope="module")
def flat_fit():
    from models.panel.bayes import fit_bayes_twfe
    from tests.models.panel.test_bayes import simulate_panel

    panel = simulate_panel()
    fit = fit_bayes_twfe(panel, "y", ["x1", "x2"], "city", "year", seed=4, draws=1000,
                         tune=500, chains=4, priors=["slope=normal(0, 100)"])
    return panel, fit


def test_posterior_matches_pyfixest_and_the_exact_conjugate_draws(flat_fit):
    import pyfixest as pf

    from models.panel.bayes import conjugate_twfe_draws

    panel, fit = flat_fit
    assert fit.spec["nuts_parameters"] == ["sigma", "unit_sd", "year_sd"]
    assert fit.converged, fit.convergence_problems()
    feols = pf.feols("y ~ x1 + x2 | city + year", data=panel, vcov="iid")
    exact = conjugate_twfe_draws(panel, "y", ["x1", "x2"], "city", "year", 40_000, seed=2)
    table = fit.tidy().set_index("term")
    for term in ("x1", "x2"):
        estimate, sd = table.loc[term, ["estimate", "std_error"]]
        # 4,000 draws with ESS above 3,000: Monte Carlo error ~ 0.02 sd on the mean.
        assert abs(estimate - feols.coef()[term]) < 0.08 * sd, term
        assert abs(estimate - exact[term].mean()) < 0.08 * sd, term
        assert abs(sd / exact[term].std() - 1.0) < 0.05, term
        assert abs(sd / feols.se()[term] - 1.0) < 0.05, term
    assert abs(table.loc["sigma", "estimate"] / exact["sigma"].mean() - 1.0) < 0.005


def test_log_likelihood_and_log_prior_are_the_pymc_models(flat_fit):
    """The groups equal what the sampled-slopes path computes: PyMC's log prior of the
    collapsed model's variables and the Gaussian density of each row."""
    import pymc as pm
    from scipy import stats as st

    panel, fit = flat_fit
    idata = fit.idata
    post = idata.posterior
    design = prepare_panel(panel, "y", ["x1", "x2"], "city", "year")
    priors = resolve_priors(["slope=normal(0, 100)"], design, "identity")
    model = build_twfe_model(design, priors, unit_effects="collapsed")
    reference = pm.compute_log_prior(
        idata.isel(draw=slice(0, 50)).copy(), model=model,
        var_names=["slope", "sigma", "unit_sd", "year_sd"], progressbar=False,
        extend_inferencedata=False, compile_kwargs={"mode": "FAST_COMPILE"})
    for name in ("slope", "sigma", "unit_sd", "year_sd"):
        np.testing.assert_allclose(idata.log_prior[name].isel(draw=slice(0, 50)).values,
                                   reference[name].values, rtol=1e-10, atol=1e-10)
    assert set(idata.log_prior.data_vars) == {"slope", "sigma", "unit_sd", "year_sd",
                                              "intercept", "between"}
    sub = post.isel(draw=slice(0, 20))
    eta = (sub["intercept"].values[..., None] + sub["slope"].values @ design.x_within.T
           + sub["unit_effect"].values[..., design.unit_idx]
           + sub["year_effect"].values[..., design.time_idx])
    expected = st.norm(eta, sub["sigma"].values[..., None]).logpdf(design.y)
    np.testing.assert_allclose(idata.log_likelihood["y"].isel(draw=slice(0, 20)).values,
                               expected, rtol=1e-10)
    # The unit effects are the exact conditional draws: their offsets are standard normal a
    # priori, so across units and draws about N(0, 1) in the posterior too.
    offsets = post["unit_offset"].values
    assert abs(offsets.mean()) < 0.05 and abs(offsets.std() - 1.0) < 0.05


def test_fit_without_periods_samples_two_scales():
    from models.panel.bayes import fit_bayes_twfe

    df = _balanced_panel()
    fit = fit_bayes_twfe(df, "y", ["x1", "x2"], "unit", None, seed=1, draws=300, tune=300,
                         chains=2)
    assert fit.spec["nuts_parameters"] == ["sigma", "unit_sd"]
    assert "year_sd" not in fit.idata.posterior
    assert fit.idata.log_likelihood["y"].shape == (2, 300, len(df))
    x_within = prepare_panel(df, "y", ["x1", "x2"], "unit", None).x_within
    estimate = np.linalg.lstsq(x_within, df["y"].to_numpy() - df.groupby("unit")["y"].transform(
        "mean").to_numpy(), rcond=None)[0]
    slopes = fit.idata.posterior["slope"].values.reshape(-1, 2)
    np.testing.assert_allclose(slopes.mean(axis=0), estimate, atol=4 * slopes.std(axis=0).max()
                               / np.sqrt(300))


@pytest.mark.slow
def test_posterior_matches_the_sampled_slopes_path():
    """Same model, two samplers: NUTS on slopes and scales against NUTS on the scales with the
    slopes drawn exactly. Means and sds agree within Monte Carlo error."""
    from models.panel.bayes import fit_bayes_twfe
    from tests.models.panel.test_bayes import simulate_panel

    panel = simulate_panel()
    kwargs = {"draws": 2000, "tune": 1000, "chains": 4, "priors": ["slope=normal(0, 0.05)"]}
    fast = fit_bayes_twfe(panel, "y", ["x1", "x2"], "city", "year", seed=5, **kwargs)
    slow = fit_bayes_twfe(panel, "y", ["x1", "x2"], "city", "year", seed=6,
                          integrate_slopes=False, **kwargs)
    assert "nuts_parameters" in fast.spec and "nuts_parameters" not in slow.spec
    fast_table, slow_table = (f.tidy().set_index("term") for f in (fast, slow))
    for term in ("x1", "x2", "sigma", "unit_sd", "year_sd", "intercept", "mundlak_x1"):
        sd = slow_table.loc[term, "std_error"]
        error = sd * np.sqrt(1 / fast_table.loc[term, "ess_bulk"]
                             + 1 / slow_table.loc[term, "ess_bulk"])
        assert abs(fast_table.loc[term, "estimate"] - slow_table.loc[term, "estimate"]) < (
            4 * error), term
        assert abs(fast_table.loc[term, "std_error"] / sd - 1.0) < 0.06, term



def test_unbalanced_panel_samples_through_the_general_callback():
    """Under a flat-ish prior beta | sigma, y is centred on the within estimate whatever
    sigma is, so the posterior mean of the slopes is that estimate up to Monte Carlo error."""
    import pyfixest as pf

    from models.panel.bayes import fit_bayes_twfe

    df = _unbalanced_panel()
    fit = fit_bayes_twfe(df, "y", ["x1", "x2"], "unit", "year", seed=2, draws=500, tune=500,
                         chains=4, priors=["slope=normal(0, 100)"])
    assert fit.spec["nuts_parameters"] == ["sigma", "unit_sd", "year_sd"]
    # This panel has no unit effects (unit_sd near 0, a hard posterior for any sampler); the
    # slopes are exact draws given sigma and mix regardless.
    assert fit.tidy().set_index("term").loc[["x1", "x2"], "r_hat"].max() < 1.01
    feols = pf.feols("y ~ x1 + x2 | unit + year", data=df, vcov="iid")
    slopes = fit.idata.posterior["slope"].values.reshape(-1, 2)
    error = 4 * slopes.std(axis=0) / np.sqrt(slopes.shape[0])
    np.testing.assert_array_less(np.abs(slopes.mean(axis=0)
                                        - feols.coef()[["x1", "x2"]].to_numpy()), error)

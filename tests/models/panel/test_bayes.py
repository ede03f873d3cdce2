"""Bayesian TWFE: agreement with pyfixest, recovery of known slopes, priors, LOO.

The simulated panel orthogonalises its errors against the two-way demeaned regressors, so the
within (TWFE) estimate equals the true slopes exactly; the remaining uncertainty in the tests is
Monte Carlo error only. The regressors load on the unit effects and the unit effects are small
relative to the noise, so a plain random intercept puts real weight on the (biased) between
variation: its interval must miss the truth.
"""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from models.bayes.panel_priors import load_priors_toml, parse_prior_override
from models.bayes.priors import Prior, PriorSpecError
from models.panel.bayes import conjugate_twfe_draws, fit_bayes_twfe, resolve_priors
from models.panel.design import prepare_panel

TRUE_SLOPES = {"x1": 0.3, "x2": -0.2}
N_UNITS, N_YEARS = 271, 12
FAST = {"draws": 500, "tune": 300, "chains": 4}


def simulate_panel(seed: int = 7) -> pd.DataFrame:
    """y = 1 + 0.3 x1 - 0.2 x2 + u_i + tau_t + e, with x loading on u_i.

    e is drawn iid N(0, 1) and then made exactly orthogonal to the two-way demeaned
    regressors, which leaves it iid-like but makes the TWFE estimate equal the truth.
    """
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(N_UNITS), N_YEARS)
    year = np.tile(np.arange(2011, 2011 + N_YEARS), N_UNITS)
    unit_effect = rng.normal(0.0, 0.6, N_UNITS)
    year_effect = rng.normal(0.0, 0.5, N_YEARS)
    x1 = (
        2.5 * unit_effect[unit]
        + rng.normal(0.0, 0.5, N_UNITS)[unit]
        + rng.normal(0.0, 1.0, unit.size)
    )
    x2 = -1.5 * unit_effect[unit] + 0.05 * (year - 2011) + rng.normal(0.0, 1.0, unit.size)
    frame = pd.DataFrame({"city": unit, "year": year, "x1": x1, "x2": x2})
    design = prepare_panel(frame.assign(y=0.0), "y", ["x1", "x2"], "city", "year")
    noise = rng.normal(0.0, 1.0, unit.size)
    xw = design.x_within
    noise -= xw @ np.linalg.lstsq(xw, noise, rcond=None)[0]
    frame["y"] = (
        1.0
        + TRUE_SLOPES["x1"] * x1
        + TRUE_SLOPES["x2"] * x2
        + unit_effect[unit]
        + year_effect[year - 2011]
        + noise
    )
    return frame


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return simulate_panel()


@pytest.fixture(scope="module")
def feols(panel):
    return pf.feols("y ~ x1 + x2 | city + year", data=panel, vcov="iid")


@pytest.fixture(scope="module")
def fit(panel):
    # A CLI-style override that stays weak, so the within estimate must come through.
    return fit_bayes_twfe(
        panel,
        "y",
        ["x1", "x2"],
        "city",
        "year",
        priors=["slope=normal(0, 10)"],
        seed=1,
        **FAST,
    )


@pytest.fixture(scope="module")
def naive_fit(panel):
    return fit_bayes_twfe(
        panel, "y", ["x1", "x2"], "city", "year", parametrisation="naive", seed=2, **FAST
    )


def test_simulated_twfe_estimate_is_the_truth(feols):
    assert np.allclose(feols.coef()[["x1", "x2"]].to_numpy(), [0.3, -0.2], atol=1e-10)


def test_posterior_matches_pyfixest_twfe(fit, feols):
    table = fit.tidy().set_index("term")
    for term in ("x1", "x2"):
        estimate, sd = table.loc[term, ["estimate", "std_error"]]
        assert abs(estimate - feols.coef()[term]) < 0.25 * sd, term
        assert abs(sd / feols.se()[term] - 1.0) < 0.20, term
        low, high = table.loc[term, ["ci_low", "ci_high"]]
        assert low < TRUE_SLOPES[term] < high, term
    assert fit.converged, fit.convergence_problems()
    assert table.loc["x1", "n_obs"] == N_UNITS * N_YEARS


def test_posterior_matches_exact_conjugate_draws(fit, panel):
    exact = conjugate_twfe_draws(panel, "y", ["x1", "x2"], "city", "year", 20_000, seed=3)
    table = fit.tidy().set_index("term")
    for term in ("x1", "x2"):
        assert abs(table.loc[term, "estimate"] - exact[term].mean()) < 0.25 * exact[term].std()
        assert abs(table.loc[term, "std_error"] / exact[term].std() - 1.0) < 0.1
    assert abs(table.loc["sigma", "estimate"] / exact["sigma"].mean() - 1.0) < 0.01


def test_naive_random_intercept_is_biased(naive_fit, feols):
    table = naive_fit.tidy().set_index("term")
    low, high = table.loc["x1", ["ci_low", "ci_high"]]
    assert not low < TRUE_SLOPES["x1"] < high
    # The bias points the way the between variation does (x1 loads positively on u_i).
    assert table.loc["x1", "estimate"] - feols.coef()["x1"] > 4 * table.loc["x1", "std_error"]


def test_fit_records_priors_and_provenance(fit, tmp_path):
    assert fit.priors["slope.x1"] == {"prior": "normal(0, 10)", "source": "cli"}
    assert fit.priors["sigma"]["source"] == "default"
    assert len(fit.data_hash) == 64 and fit.seed == 1
    path = fit.save_netcdf(tmp_path / "fit.nc")
    loaded = az.from_netcdf(str(path))
    assert loaded.posterior.attrs["data_hash"] == fit.data_hash
    assert json.loads(loaded.posterior.attrs["priors"])["slope.x2"]["prior"] == "normal(0, 10)"
    assert json.loads(loaded.posterior.attrs["spec"])["regressors"] == ["x1", "x2"]


def test_log_likelihood_log_prior_and_loo(fit, panel):
    groups = fit.idata.groups()
    assert "log_likelihood" in groups and "log_prior" in groups
    loglik = fit.idata.log_likelihood["y"]
    assert loglik.shape == (FAST["chains"], FAST["draws"], len(panel))
    # Pointwise values must sum to the Gaussian log-likelihood at the posterior mean, roughly:
    # -n/2 log(2 pi sigma^2) - n/2 with sigma ~ 1.
    total = float(loglik.sum("obs").mean())
    assert abs(total - (-0.5 * len(panel) * (np.log(2 * np.pi) + 1.0))) < 0.03 * len(panel)
    assert set(fit.idata.log_prior.data_vars) >= {"slope", "sigma", "unit_sd"}
    loo = az.loo(fit.idata)
    assert np.isfinite(loo.elpd_loo)
    # p_loo ~ effective number of parameters: slopes, Mundlak terms, intercept, sigma, the
    # year effects and each unit effect's shrinkage weight T sd_u^2 / (sigma^2 + T sd_u^2).
    post = fit.idata.posterior
    unit_sd2, sigma2 = float(post["unit_sd"].mean()) ** 2, float(post["sigma"].mean()) ** 2
    weight = N_YEARS * unit_sd2 / (sigma2 + N_YEARS * unit_sd2)
    expected = 2 + 2 + 1 + 1 + (N_YEARS - 1) + N_UNITS * weight
    assert abs(loo.p_loo / expected - 1.0) < 0.2


@pytest.mark.slow
def test_student_t_matches_normal_on_gaussian_data(panel, feols):
    fit_t = fit_bayes_twfe(
        panel.iloc[: 100 * N_YEARS],
        "y",
        ["x1", "x2"],
        "city",
        "year",
        likelihood="student_t",
        seed=4,
        **FAST,
    )
    small = pf.feols("y ~ x1 + x2 | city + year", data=panel.iloc[: 100 * N_YEARS])
    table = fit_t.tidy().set_index("term")
    for term in ("x1", "x2"):
        assert (
            abs(table.loc[term, "estimate"] - small.coef()[term])
            < 0.5 * table.loc[term, "std_error"]
        )
    assert table.loc["nu", "estimate"] > 10  # Gaussian noise: heavy tails not wanted


def test_negative_binomial_recovers_slope():
    rng = np.random.default_rng(11)
    n_units, n_years = 120, 10
    unit = np.repeat(np.arange(n_units), n_years)
    year = np.tile(np.arange(n_years), n_units)
    unit_effect = rng.normal(0.0, 0.5, n_units)
    x = 1.2 * unit_effect[unit] + rng.normal(0.0, 0.7, unit.size)
    mu = np.exp(1.5 + 0.4 * x + unit_effect[unit] + 0.1 * np.sin(year))
    counts = rng.negative_binomial(5.0, 5.0 / (5.0 + mu))
    frame = pd.DataFrame({"unit": unit, "year": year, "x": x, "count": counts})
    fit_nb = fit_bayes_twfe(
        frame, "count", ["x"], "unit", "year", likelihood="negbin", seed=5, **FAST
    )
    table = fit_nb.tidy().set_index("term")
    low, high = table.loc["x", ["ci_low", "ci_high"]]
    assert low < 0.4 < high
    assert abs(table.loc["x", "estimate"] - 0.4) < 0.06
    poisson = pf.fepois("count ~ x | unit + year", data=frame)
    assert abs(table.loc["x", "estimate"] - poisson.coef()["x"]) < 2 * table.loc["x", "std_error"]
    assert 2.5 < table.loc["alpha", "estimate"] < 10.0
    assert "log_likelihood" in fit_nb.idata.groups()


def test_negative_binomial_rejects_non_counts(panel):
    with pytest.raises(ValueError, match="non-negative integer counts in 'y'"):
        fit_bayes_twfe(panel, "y", ["x1"], "city", "year", likelihood="negbin")


# ---------------------------------------------------------------------------------- priors


def test_cli_override_parses():
    role, term, prior = parse_prior_override("slope=normal(0,1)")
    assert (role, term, prior.family, prior.kwargs) == (
        "slope",
        None,
        "normal",
        {"mu": 0.0, "sigma": 1.0},
    )
    role, term, prior = parse_prior_override("slope.AI = normal(mu=0.1, sigma=.5)")
    assert (role, term, prior.kwargs) == ("slope", "AI", {"mu": 0.1, "sigma": 0.5})
    assert str(parse_prior_override("sigma=exponential(2)")[2]) == "exponential(2)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("slope=normal(0,", "Cannot parse prior .normal\\(0,.: expected family"),
        ("slope normal(0, 1)", "expected name=family"),
        ("slope=norml(0, 1)", "Unknown prior family 'norml'"),
        ("slope=normal(0)", "needs parameter\\(s\\) sigma"),
        ("slope=normal(0, -1)", "sigma must be > 0"),
        ("slope=normal(0, abc)", "'abc' is not a number"),
        ("sigma=normal(0, 1)", "sigma must be positive"),
        ("slop=normal(0, 1)", "Unknown prior name 'slop'"),
        ("sigma.AI=halfnormal(1)", "cannot be set per regressor"),
    ],
)
def test_bad_prior_string_gives_clear_error(text, message):
    with pytest.raises(PriorSpecError, match=message):
        parse_prior_override(text)


def test_toml_override_is_loaded_and_recorded(tmp_path, panel):
    path = tmp_path / "priors.toml"
    path.write_text(
        "[priors]\n"
        'sigma = { family = "halfnormal", sigma = 2 }\n'
        'slope.x1 = "normal(0.1, 0.5)"\n'
        'unit_sd = "exponential(1)"\n'
    )
    priors = load_priors_toml(path)
    assert priors.sigma == Prior.of("halfnormal", 2)
    design = prepare_panel(panel, "y", ["x1", "x2"], "city", "year")
    record = priors.resolve(design.scales("identity")).describe()
    assert record["slope.x1"] == {"prior": "normal(0.1, 0.5)", "source": str(path)}
    assert record["unit_sd"] == {"prior": "exponential(1)", "source": str(path)}
    # Unset roles get the data-scaled default: slope scale 2.5 sd(y) / sd(within x2).
    expected = 2.5 * panel["y"].std() / design.x_within[:, 1].std(ddof=1)
    assert record["slope.x2"]["source"] == "default"
    assert record["slope.x2"]["prior"] == f"normal(0, {expected:.6g})"


def test_bad_toml_names_the_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('slope = "normal(0, 1"\n')
    with pytest.raises(PriorSpecError, match="bad.toml.*'slope'"):
        load_priors_toml(path)


@pytest.mark.slow
def test_informative_prior_gives_the_conjugate_compromise(panel, feols):
    """With slope.x1 ~ N(0, se), the posterior mean is the precision-weighted average."""
    se = float(feols.se()["x1"])
    fit_inf = fit_bayes_twfe(
        panel,
        "y",
        ["x1", "x2"],
        "city",
        "year",
        priors={"slope": {"x1": f"normal(0, {se:.6g})"}},
        seed=6,
        **FAST,
    )
    design = prepare_panel(panel, "y", ["x1", "x2"], "city", "year")
    resolved = resolve_priors({"slope": {"x1": f"normal(0, {se:.6g})"}}, design, "identity")
    prior_sd = np.array([resolved.term_prior("slope", t).kwargs["sigma"] for t in ("x1", "x2")])
    sigma2 = float(fit_inf.tidy().set_index("term").loc["sigma", "estimate"]) ** 2
    xw = design.x_within
    precision = xw.T @ xw / sigma2 + np.diag(1.0 / prior_sd**2)
    expected = np.linalg.solve(precision, xw.T @ design.y_within() / sigma2)
    table = fit_inf.tidy().set_index("term")
    assert abs(expected[0] - 0.15) < 0.03  # about half-way between 0 and 0.3
    for j, term in enumerate(("x1", "x2")):
        assert abs(table.loc[term, "estimate"] - expected[j]) < 0.25 * table.loc[term, "std_error"]
    assert fit_inf.priors["slope.x1"]["source"] == "user"


def test_bad_input_names_column(panel):
    with pytest.raises(ValueError, match="Column\\(s\\) \\['x3'\\] not in the data"):
        fit_bayes_twfe(panel, "y", ["x1", "x3"], "city", "year")
    broken = panel.copy()
    broken.loc[5, "x2"] = np.nan
    with pytest.raises(ValueError, match="Column 'x2' has 1 missing value.*\\[5\\]"):
        fit_bayes_twfe(broken, "y", ["x1", "x2"], "city", "year")
    with pytest.raises(ValueError, match="'trend' has no variation left"):
        fit_bayes_twfe(
            panel.assign(trend=panel["year"] * 1.0), "y", ["x1", "trend"], "city", "year"
        )


def test_conjugate_draws_match_pyfixest(panel, feols):
    exact = conjugate_twfe_draws(panel, "y", ["x1", "x2"], "city", "year", 40_000, seed=0)
    for term in ("x1", "x2"):
        assert abs(exact[term].mean() - feols.coef()[term]) < 0.02 * feols.se()[term]
        # Multivariate t with ~3,000 dof: sd = se * sqrt(nu / (nu - 2)).
        assert abs(exact[term].std() / feols.se()[term] - 1.0) < 0.015


@pytest.mark.slow
def test_unbalanced_panel_matches_pyfixest(panel):
    """Unbalanced rows exercise the alternating-projection demeaning and the year terms of the
    integrated-out likelihood (D'PD is no longer diagonal)."""
    rng = np.random.default_rng(0)
    data = panel.drop(index=rng.choice(panel.index, 600, replace=False)).reset_index(drop=True)
    reference = pf.feols("y ~ x1 + x2 | city + year", data=data, vcov="iid")
    fit_unb = fit_bayes_twfe(data, "y", ["x1", "x2"], "city", "year", seed=3, **FAST)
    table = fit_unb.tidy().set_index("term")
    for term in ("x1", "x2"):
        estimate, sd = table.loc[term, ["estimate", "std_error"]]
        assert abs(estimate - reference.coef()[term]) < 0.25 * sd, term
        assert abs(sd / reference.se()[term] - 1.0) < 0.20, term

"""The power-scaling sequence against a conjugate normal model whose power-scaled posteriors
are known exactly, and the closed forms of priors raised to a power."""

from __future__ import annotations

import math

import arviz as az
import numpy as np
import pytest
from scipy import stats

from models.bayes.power_scaling import (
    DEFAULT_ALPHAS,
    pareto_k_threshold,
    power_scaled_lkj,
    power_scaled_prior,
    power_scaling_sequence,
)
from models.bayes.priors import Prior, PriorSpecError

M0, S0, SIGMA = 0.5, 0.4, 1.0


def _exact(y: np.ndarray, prior_alpha: float, likelihood_alpha: float) -> tuple[float, float]:
    """Posterior of mu under N(M0, S0)^prior_alpha x prod N(y_i | mu, SIGMA)^likelihood_alpha."""
    precision = prior_alpha / S0**2 + likelihood_alpha * y.size / SIGMA**2
    mean = (prior_alpha * M0 / S0**2 + likelihood_alpha * y.sum() / SIGMA**2) / precision
    return mean, 1.0 / math.sqrt(precision)


def _conjugate_idata(seed: int = 1, n_obs: int = 6, chains: int = 4, draws: int = 10_000):
    rng = np.random.default_rng(seed)
    y = rng.normal(1.5, SIGMA, n_obs)
    mean, sd = _exact(y, 1.0, 1.0)
    mu = rng.normal(mean, sd, (chains, draws))
    log_prior = stats.norm(M0, S0).logpdf(mu)
    log_lik = stats.norm(mu[..., None], SIGMA).logpdf(y)
    idata = az.from_dict(posterior={"mu": mu}, log_likelihood={"y": log_lik},
                         dims={"y": ["obs"]})
    idata.add_groups(log_prior={"mu": log_prior})
    return idata, y, mu.reshape(-1)


def test_sequence_matches_the_exact_power_scaled_posteriors():
    idata, y, draws = _conjugate_idata()
    sequence = power_scaling_sequence(idata, {"mu": draws})
    assert set(sequence["component"]) == {"prior", "likelihood"}
    assert np.isclose(sequence["alpha"].min(), 0.8) and np.isclose(sequence["alpha"].max(), 1.25)
    gaps = []
    for row in sequence.itertuples():
        prior_alpha = row.alpha if row.component == "prior" else 1.0
        likelihood_alpha = row.alpha if row.component == "likelihood" else 1.0
        mean, sd = _exact(y, prior_alpha, likelihood_alpha)
        # Monte Carlo error of a mean / sd from 40,000 (importance-weighted) draws is about
        # sd / 200; allow four times that, with room for the weights' loss of efficiency.
        tolerance = 4 * sd / math.sqrt(draws.size / 2)
        assert abs(row.mean - mean) < tolerance, (row.component, row.alpha, row.mean, mean)
        assert abs(row.sd - sd) < tolerance, (row.component, row.alpha, row.sd, sd)
        assert row.reliable
        # The same rows with the power misapplied (1 / alpha) must be told apart.
        wrong_mean, _ = _exact(y, 1 / prior_alpha, 1 / likelihood_alpha)
        gaps.append(abs(wrong_mean - mean) / tolerance)
    assert max(gaps) > 3


def test_heavy_reweighting_is_flagged_by_pareto_k():
    # Draws of N(0, 1) whose log prior has curvature 100: scaling the prior by 0.8 gives
    # weights exp(10 mu^2), whose tail (Pareto k about 2 * 10) no draw set can supply; 1.25
    # gives light-tailed weights.
    rng = np.random.default_rng(3)
    mu = rng.normal(0, 1, (2, 500))
    idata = az.from_dict(posterior={"mu": mu}, log_likelihood={"y": np.zeros((2, 500, 1))},
                         dims={"y": ["obs"]})
    idata.add_groups(log_prior={"mu": -50 * mu**2})
    sequence = power_scaling_sequence(idata, {"mu": mu.reshape(-1)}, alphas=(0.8, 1.25))
    prior = sequence[sequence["component"] == "prior"].set_index("alpha")
    assert prior.loc[0.8, "pareto_k"] > pareto_k_threshold(1000)
    assert not prior.loc[0.8, "reliable"]
    assert prior.loc[1.25, "reliable"]


def test_pareto_k_threshold():
    assert pareto_k_threshold(100) == pytest.approx(0.5)
    assert pareto_k_threshold(1000) == pytest.approx(1 - 1 / 3)
    assert pareto_k_threshold(4000) == pytest.approx(0.7)
    assert len(DEFAULT_ALPHAS) == 9


def _logpdf(prior: Prior, x: np.ndarray) -> np.ndarray:
    p = prior.kwargs
    match prior.family:
        case "normal":
            return stats.norm(p["mu"], p["sigma"]).logpdf(x)
        case "halfnormal":
            return stats.halfnorm(scale=p["sigma"]).logpdf(x)
        case "lognormal":
            return stats.lognorm(s=p["sigma"], scale=math.exp(p["mu"])).logpdf(x)
        case "studentt":
            return stats.t(p["nu"], p["mu"], p["sigma"]).logpdf(x)
        case "halfstudentt":
            return math.log(2) + stats.t(p["nu"], 0, p["sigma"]).logpdf(x)
        case "cauchy":
            return stats.cauchy(p["alpha"], p["beta"]).logpdf(x)
        case "halfcauchy":
            return stats.halfcauchy(scale=p["beta"]).logpdf(x)
        case "exponential":
            return stats.expon(scale=1 / p["lam"]).logpdf(x)
        case "gamma":
            return stats.gamma(p["alpha"], scale=1 / p["beta"]).logpdf(x)
        case "inversegamma":
            return stats.invgamma(p["alpha"], scale=p["beta"]).logpdf(x)
        case "uniform":
            return stats.uniform(p["lower"], p["upper"] - p["lower"]).logpdf(x)
    raise AssertionError(prior.family)


PRIORS = ["normal(0.3, 2)", "halfnormal(1.5)", "lognormal(0.2, 0.7)", "studentt(3, 1, 2)",
          "halfstudentt(4, 1.2)", "cauchy(0, 2)", "halfcauchy(1)", "exponential(0.5)",
          "gamma(2, 0.1)", "inversegamma(3, 2)", "uniform(-1, 2)"]


@pytest.mark.parametrize("text", PRIORS)
@pytest.mark.parametrize("alpha", [0.8, 1.25, 2.0])
def test_scaled_prior_density_is_the_power_of_the_original(text, alpha):
    from models.bayes.priors import parse_prior

    prior = parse_prior(text)
    scaled = power_scaled_prior(prior, alpha)
    positive = prior.support == "positive"
    x = np.linspace(0.05, 6, 40) if positive else np.linspace(-0.9, 1.9, 40)
    difference = _logpdf(scaled, x) - alpha * _logpdf(prior, x)
    # Proportional densities: the log ratio is one constant (the normalising constants).
    assert np.ptp(difference) < 1e-8, (text, alpha, scaled)
    if alpha != 1.0 and prior.family not in ("uniform",):
        assert scaled != prior


def test_scaled_normal_scale_is_sd_over_root_alpha():
    assert power_scaled_prior(Prior.of("normal", 0, 2), 4).kwargs["sigma"] == pytest.approx(1)
    assert power_scaled_prior(Prior.of("halfnormal", 3), 0.25).kwargs["sigma"] == pytest.approx(6)


def test_scaled_lkj_and_impossible_powers():
    rho = np.linspace(-0.9, 0.9, 30)
    eta = power_scaled_lkj(2.0, 1.25)
    difference = (eta - 1) * np.log1p(-rho**2) - 1.25 * np.log1p(-rho**2)
    assert np.ptp(difference) < 1e-12
    with pytest.raises(PriorSpecError, match="Student-t"):
        power_scaled_prior(Prior.of("cauchy", 0, 1), 0.4)
    with pytest.raises(PriorSpecError, match="alpha"):
        power_scaled_prior(Prior.of("normal", 0, 1), -1)


def test_diagnosis_words_name_the_case_and_the_unreliable_component():
    from models.bayes.power_scaling import diagnosis_words

    assert diagnosis_words(0.2, 0.3, 0.1, 0.1, 0.7).startswith("prior-data conflict")
    assert diagnosis_words(0.2, 0.01, 0.1, 0.1, 0.7).startswith("strong prior, weak likelihood")
    assert diagnosis_words(0.01, 0.2, 0.1, 0.1, 0.7) == (
        "data-driven: the likelihood, not the prior, determines it")
    text = diagnosis_words(0.01, 0.2, 0.1, 1.3, 0.7)
    assert "likelihood-scaling weights unreliable" in text and "prior-scaling" not in text
    assert "refit at the scaled prior" in diagnosis_words(0.01, 0.2, 0.9, 0.1, 0.7)

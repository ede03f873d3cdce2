"""The negative-binomial TWFE density summed over distinct counts (models.panel.negbin) is
PyMC's observed NegativeBinomial density, and the stored pointwise log-likelihood is scipy's.

References: ``pm.NegativeBinomial(mu=exp(eta), alpha)`` observed on the counts, in the model
that ``build_twfe_model`` otherwise builds, and ``scipy.stats.nbinom.logpmf(y, alpha,
alpha / (alpha + mu))``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import models.panel.model as panel_model
from models.panel import negbin
from models.panel.bayes import resolve_priors
from models.panel.design import prepare_panel
from models.panel.model import build_twfe_model

REGRESSORS = ["x1", "x2"]


def count_panel(seed: int, n_units: int = 25, n_years: int = 6) -> pd.DataFrame:
    """Over-dispersed counts with many zeros, repeated values and a long right tail."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_years)
    year = np.tile(np.arange(2010, 2010 + n_years), n_units)
    x1 = rng.normal(size=unit.size) + 0.5 * rng.normal(size=n_units)[unit]
    x2 = rng.normal(size=unit.size)
    eta = 0.3 + 0.4 * x1 - 0.2 * x2 + rng.normal(0, 1.2, n_units)[unit]
    mu = np.exp(eta)
    y = rng.poisson(rng.gamma(1.5, mu / 1.5)).astype(float)
    return pd.DataFrame({"unit": unit, "year": year, "x1": x1, "x2": x2, "y": y})


def reference_likelihood(outcome, eta, alpha, y, container=False):
    import pymc as pm

    return pm.NegativeBinomial(outcome, mu=pm.math.exp(eta), alpha=alpha, observed=y,
                               dims="obs")


def build_pair(design, parametrisation, monkeypatch):
    priors = resolve_priors(None, design, "log")
    summed = build_twfe_model(design, priors, "negbin", parametrisation, "sampled")
    with monkeypatch.context() as patch:
        patch.setattr(panel_model, "add_negbin_likelihood", reference_likelihood)
        reference = build_twfe_model(design, priors, "negbin", parametrisation, "sampled")
    return summed, reference


def random_points(model, n, seed):
    rng = np.random.default_rng(seed)
    start = model.initial_point()
    return [{k: v + rng.normal(0, 0.5, np.shape(v)) for k, v in start.items()}
            for _ in range(n)]


@pytest.fixture(scope="module")
def design():
    panel = count_panel(3)
    assert (panel["y"] == 0).mean() > 0.2 and panel["y"].nunique() < len(panel) / 2
    return prepare_panel(panel, "y", REGRESSORS, "unit", "year")


@pytest.mark.parametrize("parametrisation", ["mundlak", "naive"])
def test_summed_density_equals_observed_negative_binomial(design, parametrisation,
                                                          monkeypatch):
    summed, reference = build_pair(design, parametrisation, monkeypatch)
    assert [v.name for v in summed.free_RVs] == [v.name for v in reference.free_RVs]
    assert ({v.name: summed.rvs_to_transforms[v].__class__ for v in summed.free_RVs}
            == {v.name: reference.rvs_to_transforms[v].__class__
                for v in reference.free_RVs})
    assert not summed.observed_RVs and reference.observed_RVs
    logp, ref_logp = summed.compile_logp(), reference.compile_logp()
    dlogp, ref_dlogp = summed.compile_dlogp(), reference.compile_dlogp()
    for point in random_points(summed, 5, seed=1):
        assert logp(point) == pytest.approx(ref_logp(point), rel=1e-9)
        np.testing.assert_allclose(dlogp(point), ref_dlogp(point), rtol=1e-9, atol=1e-9)


def test_count_containers_serve_new_counts(design, monkeypatch):
    """Built with the counts in data containers and given other counts (another number of
    distinct values), the model's density is the reference model's on those counts."""
    priors = resolve_priors(None, design, "log")
    template = build_twfe_model(design, priors, "negbin", "mundlak", "sampled",
                                outcome_container=True)
    rng = np.random.default_rng(11)
    other_y = rng.poisson(rng.gamma(0.8, 4.0 / 0.8, design.n_obs)).astype(float)
    new_counts = negbin.negbin_data("y", other_y)
    assert new_counts["y_values"].size != negbin.count_table(design.y)[0].size
    for name, value in new_counts.items():
        template[name].set_value(value)
    with monkeypatch.context() as patch:
        patch.setattr(panel_model, "add_negbin_likelihood", reference_likelihood)
        reference = build_twfe_model(dataclasses.replace(design, y=other_y), priors,
                                     "negbin", "mundlak", "sampled")
    logp, ref_logp = template.compile_logp(), reference.compile_logp()
    for point in random_points(template, 3, seed=2):
        assert logp(point) == pytest.approx(ref_logp(point), rel=1e-9)


def value_function(model, outputs):
    """point (value variables) -> ``outputs``."""
    return model.compile_fn(model.replace_rvs_by_values(outputs), inputs=model.value_vars,
                            on_unused_input="ignore", point_fn=True)


def posterior_at(model, points):
    """A one-chain posterior holding the model's variables at the given value points."""
    names = ["intercept", "slope", "unit_effect", "year_effect", "alpha"]
    function = value_function(model, [model[n] for n in names])
    values = [function(p) for p in points]
    data = {n: (("chain", "draw", *model.named_vars_to_dims.get(n, ())),
                np.stack([v[i] for v in values])[None])
            for i, n in enumerate(names)}
    coords = {k: list(v) for k, v in model.coords.items()}
    return xr.Dataset(data, coords=coords)


@pytest.mark.parametrize("parametrisation", ["mundlak", "naive"])
def test_pointwise_log_likelihood_is_scipy_nbinom(design, parametrisation, monkeypatch):
    import arviz as az

    summed, _ = build_pair(design, parametrisation, monkeypatch)
    points = random_points(summed, 7, seed=4)
    posterior = posterior_at(summed, points)
    idata = az.InferenceData(posterior=posterior)
    # Chunks of two draws: the chunking must not change the values.
    monkeypatch.setattr(negbin, "_CHUNK_ELEMENTS", 2 * design.n_obs)
    negbin.add_negbin_log_likelihood(idata, design, parametrisation)
    loglik = idata.log_likelihood["y"]
    assert loglik.dims == ("chain", "draw", "obs")
    assert loglik.shape == (1, len(points), design.n_obs)

    x = design.x_within if parametrisation == "mundlak" else design.x_raw - design.x_mean
    potential = value_function(summed, [summed["y_likelihood"]])
    for draw, point in enumerate(points):
        post = posterior.isel(chain=0, draw=draw)
        eta = (float(post["intercept"]) + x @ post["slope"].values
               + post["unit_effect"].values[design.unit_idx]
               + post["year_effect"].values[design.time_idx])
        alpha = float(post["alpha"])
        expected = stats.nbinom.logpmf(design.y, alpha, alpha / (alpha + np.exp(eta)))
        np.testing.assert_allclose(loglik.values[0, draw], expected, rtol=1e-10, atol=1e-12)
        # The model's summed density is the sum of the stored pointwise values.
        assert float(potential(point)[0]) == pytest.approx(expected.sum(), rel=1e-10)


def test_logpmf_far_tails():
    """Small and large means and dispersions, zeros and large counts, against scipy."""
    y = np.array([0, 0, 1, 2, 7, 50, 603, 3493], dtype=float)
    eta = np.array([-30.0, 3.0, -5.0, 0.0, 2.0, 4.0, 6.4, 12.0])
    for alpha in (1e-3, 0.5, 18.0, 1e6):
        p = alpha / (alpha + np.exp(eta))
        np.testing.assert_allclose(negbin.negbin_logpmf(y, eta[None], np.array([alpha]))[0],
                                   stats.nbinom.logpmf(y, alpha, p), rtol=1e-9, atol=1e-10)


def test_compiled_container_model_on_new_counts(design, monkeypatch):
    """The sampler's route (numba, data as inputs) with counts swapped in as the calibration
    does: log density and gradient of the reference model on those counts."""
    from models.bayes.nutpie_compile import compile_model, logp_function

    priors = resolve_priors(None, design, "log")
    template = build_twfe_model(design, priors, "negbin", "mundlak", "sampled",
                                outcome_container=True)
    rng = np.random.default_rng(12)
    other_y = rng.poisson(rng.gamma(2.0, 6.0 / 2.0, design.n_obs)).astype(float)
    compiled = compile_model(template).with_data(**negbin.negbin_data("y", other_y))
    with monkeypatch.context() as patch:
        patch.setattr(panel_model, "add_negbin_likelihood", reference_likelihood)
        reference = build_twfe_model(dataclasses.replace(design, y=other_y), priors,
                                     "negbin", "mundlak", "sampled")
    names, slices, _ = compiled.shape_info
    n_dim = compiled._n_dim
    free = [(n, s) for n, s in zip(names, slices, strict=True) if s.stop <= n_dim]
    logp, ref_logp, ref_dlogp = (logp_function(compiled), reference.compile_logp(),
                                 reference.compile_dlogp())
    ref_order = [reference.rvs_to_values[v].name for v in reference.free_RVs]
    for point in random_points(reference, 3, seed=5):
        x = np.concatenate([np.ravel(point[n]) for n, _ in free])
        value, gradient = logp(x)
        assert value == pytest.approx(ref_logp(point), rel=1e-9)
        sizes = {n: np.size(point[n]) for n in ref_order}
        starts = np.cumsum([0] + [sizes[n] for n in ref_order])
        expected = ref_dlogp(point)
        reordered = np.concatenate([expected[starts[ref_order.index(n)]:
                                             starts[ref_order.index(n)] + sizes[n]]
                                    for n, _ in free])
        np.testing.assert_allclose(gradient, reordered, rtol=1e-9, atol=1e-9)

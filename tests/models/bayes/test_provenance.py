"""Saved posteriors: provenance on every group, the log-likelihood as float32 without moving
LOO, and the in-memory InferenceData untouched."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np

from models.bayes.provenance import save_with_attributes


def test_saved_log_likelihood_is_float32_and_loo_is_unchanged(tmp_path):
    rng = np.random.default_rng(1)
    mu = rng.normal(0.3, 0.05, size=(2, 500))
    y = rng.normal(0.3, 1.0, size=400)
    loglik = -0.5 * np.log(2 * np.pi) - 0.5 * (y[None, None, :] - mu[..., None]) ** 2
    idata = az.from_dict(posterior={"mu": mu}, log_likelihood={"y": loglik},
                         sample_stats={"diverging": np.zeros((2, 500), dtype=bool)})
    path = save_with_attributes(idata, tmp_path / "fit.nc", {"model": "test", "seed": "1"})
    saved = az.from_netcdf(path)
    assert saved.log_likelihood["y"].dtype == np.float32
    assert idata.log_likelihood["y"].dtype == np.float64  # the caller's object is unchanged
    assert saved.posterior["mu"].dtype == np.float64
    assert saved.posterior.attrs["model"] == "test" and saved.log_likelihood.attrs["seed"] == "1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full, stored = az.loo(idata), az.loo(saved)
    assert abs(full.elpd_loo - stored.elpd_loo) < 1e-3
    assert abs(full.p_loo - stored.p_loo) < 1e-3

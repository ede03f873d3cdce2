"""Saved posteriors: provenance on every group, compressed integers and large arrays, a
stored log-likelihood as float32 without moving LOO, and what a family leaves out recomputed on
load to the same numbers (LOO, Pareto k, power-scaling) or refused when it would differ."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import ClassVar

import arviz as az
import h5py
import numpy as np
import pandas as pd
import pytest

from models.bayes.fit import PosteriorFit
from models.bayes.sensitivity import power_scaling_table
from models.bayes.storage import load_posterior, write_posterior


def _normal_loglik(mu: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -0.5 * np.log(2 * np.pi) - 0.5 * (y[None, None, :] - mu[..., None]) ** 2


def _idata(seed: int = 1):
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.3, 0.05, size=(2, 500))
    y = rng.normal(0.3, 1.0, size=400)
    sd = np.exp(rng.normal(0.0, 0.03, size=(2, 500)))
    idata = az.from_dict(posterior={"mu": mu, "sd": sd},
                         log_likelihood={"y": _normal_loglik(mu, y)},
                         constant_data={"y_data": y}, dims={"y_data": ["obs"]},
                         sample_stats={"diverging": np.zeros((2, 500), dtype=bool)})
    idata.add_groups({"log_prior": idata.posterior.map(lambda v: -0.5 * v**2)})
    return idata


@dataclass(frozen=True, eq=False)
class _MeanFit(PosteriorFit):
    """A normal mean whose file leaves the pointwise log-likelihood out: y is stored."""

    model_name: ClassVar[str] = "test_mean"

    def recomputed_on_load(self):
        return {"log_likelihood": ()}

    @classmethod
    def restore(cls, idata) -> None:
        import xarray as xr

        post = idata.posterior
        values = _normal_loglik(post["mu"].values, idata.constant_data["y_data"].values)
        idata.add_groups({"log_likelihood": xr.Dataset(
            {"y": (("chain", "draw", "y_dim_0"), values)},
            coords={"chain": post.chain, "draw": post.draw})})


def _fit(idata):
    return _MeanFit.record(idata, spec={}, priors={}, data_hash="h", seed=1, times={})


def _loo(idata):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.loo(idata, pointwise=True)


def test_saved_log_likelihood_is_float32_and_loo_is_unchanged(tmp_path):
    idata = _idata()
    path = write_posterior(idata, tmp_path / "fit.nc", {"model": "test", "seed": "1"})
    saved = load_posterior(path)
    assert saved.log_likelihood["y"].dtype == np.float32
    assert idata.log_likelihood["y"].dtype == np.float64  # the caller's object is unchanged
    assert saved.posterior["mu"].dtype == np.float64
    assert saved.posterior.attrs["model"] == "test" and saved.log_likelihood.attrs["seed"] == "1"
    full, stored = _loo(idata), _loo(saved)
    assert abs(full.elpd_loo - stored.elpd_loo) < 1e-3
    assert abs(full.p_loo - stored.p_loo) < 1e-3


def test_integers_and_large_float_arrays_are_compressed_small_float_arrays_are_not(
        tmp_path, monkeypatch):
    import models.bayes.storage as storage

    # 400 x 1,000 pointwise values: "large" once the threshold is below their count.
    monkeypatch.setattr(storage, "COMPRESS_FLOATS_FROM", 100_000)
    path = write_posterior(_idata(), tmp_path / "fit.nc", {"model": "test"})
    with h5py.File(path, "r") as handle:
        for name in ("log_likelihood/y", "sample_stats/diverging", "posterior/draw"):
            assert handle[name].compression == "gzip" and handle[name].shuffle, name
        assert handle["posterior/mu"].compression is None
    back = load_posterior(path)
    assert np.array_equal(back.posterior["mu"].values, _idata().posterior["mu"].values)
    assert back.log_likelihood["y"].dtype == np.float32


def test_a_left_out_log_likelihood_is_recomputed_to_the_same_loo_and_power_scaling(tmp_path):
    fit = _fit(_idata())
    path = fit.save_netcdf(tmp_path / "fit.nc")
    with h5py.File(path, "r") as handle:
        assert "log_likelihood" not in handle and "constant_data" in handle
    assert "log_likelihood" in fit.idata.groups()  # the fit in memory keeps it
    loaded = load_posterior(path)
    assert np.array_equal(loaded.log_likelihood["y"].values, fit.idata.log_likelihood["y"].values)
    memory, disk = _loo(fit.idata), _loo(loaded)
    assert disk.elpd_loo == memory.elpd_loo and disk.p_loo == memory.p_loo
    assert np.array_equal(disk.pareto_k.values, memory.pareto_k.values)
    pd.testing.assert_frame_equal(power_scaling_table(loaded), power_scaling_table(fit.idata))
    assert json.loads(loaded.posterior.attrs["recomputed_on_load"]) == {"log_likelihood": []}


def test_a_recomputation_that_differs_from_the_fit_is_refused(tmp_path):
    fit = _fit(_idata())
    path = fit.save_netcdf(tmp_path / "fit.nc")
    with h5py.File(path, "r+") as handle:
        handle["constant_data/y_data"][0] += 1.0  # not the data the fit saw
    with pytest.raises(ValueError, match=r"log_likelihood/y recomputed on load"):
        load_posterior(path)


def test_selected_groups_are_read_as_stored(tmp_path):
    path = _fit(_idata()).save_netcdf(tmp_path / "fit.nc")
    only = load_posterior(path, groups=("posterior", "log_likelihood"))
    assert only.groups() == ["posterior"]


def test_a_file_whose_fit_class_is_gone_is_refused_in_one_line(tmp_path):
    path = _fit(_idata()).save_netcdf(tmp_path / "fit.nc")
    with h5py.File(path, "r+") as handle:
        handle["posterior"].attrs["fit_class"] = "models.bayes.fit:NoSuchFit"
    with pytest.raises(ValueError, match="fit class models.bayes.fit:NoSuchFit"):
        load_posterior(path)

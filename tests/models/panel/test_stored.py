"""A saved Bayesian TWFE leaves out its unit effects and pointwise log-likelihood and gets them
back on load, equal to those at fit time: same LOO (elpd, p_loo, every Pareto k) and same
power-scaling diagnostics; a file that holds them (sampled unit offsets) is read as saved."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.bayes.storage import load_posterior
from models.panel.bayes import fit_bayes_twfe
from models.panel.design import prepare_panel
from models.panel.stored import design_dataset, design_from_dataset
from tests.models.bayes.stored_checks import assert_reloads_the_same

SMALL = {"draws": 300, "tune": 300, "chains": 2}


def _panel(seed: int = 3, n_units: int = 40, n_years: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_years)
    year = np.tile(np.arange(2011, 2011 + n_years), n_units)
    effect = rng.normal(0.0, 0.5, n_units)
    x1 = effect[unit] + rng.normal(0.0, 1.0, unit.size)
    x2 = rng.normal(0.0, 1.0, unit.size)
    y = 1.0 + 0.3 * x1 - 0.2 * x2 + effect[unit] + 0.1 * (year - 2011) + rng.normal(
        0.0, 1.0, unit.size)
    frame = pd.DataFrame({"city": [f"c{u}" for u in unit], "year": year, "x1": x1, "x2": x2,
                          "y": y})
    return frame.drop(index=[5, 17, 60]).reset_index(drop=True)  # unbalanced


@pytest.fixture(scope="module")
def fit():
    return fit_bayes_twfe(_panel(), "y", ["x1", "x2"], "city", "year", seed=5, **SMALL)


def test_the_design_is_stored_whole(fit):
    design = prepare_panel(_panel(), "y", ["x1", "x2"], "city", "year")
    rebuilt = design_from_dataset(design_dataset(design))
    assert rebuilt.data_hash() == design.data_hash() == fit.data_hash
    for name in ("x_within", "x_mean", "unit_means", "unit_idx", "time_idx"):
        assert np.array_equal(getattr(rebuilt, name), getattr(design, name)), name
    for name in ("x_within", "unit_means"):
        assert getattr(rebuilt, name).flags.f_contiguous == getattr(design, name).flags.f_contiguous
    assert (rebuilt.unit_labels, rebuilt.time_labels, rebuilt.fe_rank) == (
        design.unit_labels, design.time_labels, design.fe_rank)


def test_saved_fit_leaves_out_what_it_recomputes_and_gets_it_back(fit, tmp_path):
    assert fit.spec["unit_effects"] in ("collapsed", "marginalised")
    assert_reloads_the_same(fit, tmp_path / "fit.nc")
    loaded = load_posterior(tmp_path / "fit.nc")
    assert list(loaded.posterior["unit"].values) == list(fit.idata.posterior["unit"].values)


@pytest.mark.slow
def test_sampled_unit_offsets_are_stored_as_they_are(tmp_path):
    fit = fit_bayes_twfe(_panel(), "y", ["x1", "x2"], "city", "year", seed=5,
                         likelihood="student_t", draws=100, tune=100, chains=1)
    assert fit.recomputed_on_load() == {}
    loaded = load_posterior(fit.save_netcdf(tmp_path / "fit.nc"))
    assert np.array_equal(loaded.posterior["unit_offset"].values,
                          fit.idata.posterior["unit_offset"].values)
    assert loaded.log_likelihood["y"].dtype == np.float32

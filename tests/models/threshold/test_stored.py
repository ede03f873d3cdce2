"""A saved threshold posterior leaves out its pointwise log-likelihood and gets it back on load
from the stored data: the same values, LOO (elpd, p_loo, every Pareto k) and power-scaling
diagnostics as the fit in memory; altered data are refused."""

from __future__ import annotations

import h5py
import pytest

from models.bayes.storage import load_posterior
from models.threshold.bayes import fit_bayes_threshold
from tests.models.bayes.stored_checks import assert_reloads_the_same
from tests.models.threshold.test_bayes import simulate_panel


@pytest.fixture(scope="module")
def fit():
    frame = simulate_panel(n_units=40, n_periods=6, seed=7)
    return fit_bayes_threshold(frame, y="y", regime="x", threshold="q", fixed=["f"],
                               unit="unit", period="year", grid_size=30, trim=(0.05,),
                               draws=200, tune=200, chains=2, seed=4,
                               marginal_likelihood=False)


def test_the_log_likelihood_is_recomputed_to_the_same_loo_and_power_scaling(fit, tmp_path):
    assert_reloads_the_same(fit, tmp_path / "threshold.nc")


def test_altered_data_are_refused(fit, tmp_path):
    path = fit.save_netcdf(tmp_path / "threshold.nc")
    with h5py.File(path, "r+") as handle:
        handle["constant_data/column_y"][3] += 0.5
    with pytest.raises(ValueError, match="do not hash to its data_hash"):
        load_posterior(path)

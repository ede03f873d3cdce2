"""The check every family whose file leaves out its pointwise log-likelihood passes: the
reloaded fit has the same values of everything left out, the same LOO (elpd, p_loo, every
Pareto k) and the same power-scaling diagnostics as the fit in memory (to 1e-6: sums over
arrays laid out differently in memory, as a sampler's and a file's are, round differently;
the diagnostics flag at 0.05)."""

from __future__ import annotations

import warnings

import arviz as az
import h5py
import numpy as np
import pandas as pd

from models.bayes.sensitivity import power_scaling_table
from models.bayes.storage import load_posterior


def _loo(idata):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.loo(idata, pointwise=True)


def assert_same_power_scaling(loaded, idata) -> None:
    """The power-scaling diagnostics of ``loaded`` and ``idata`` agree to 1e-6."""
    pd.testing.assert_frame_equal(power_scaling_table(loaded), power_scaling_table(idata),
                                  check_exact=False, rtol=0.0, atol=1e-6)


def assert_reloads_the_same(fit, path) -> None:
    """Save ``fit`` to ``path``, check the file lacks the log-likelihood, reload and compare."""
    left_out = fit.recomputed_on_load()
    assert "log_likelihood" in left_out
    fit.save_netcdf(path)
    with h5py.File(path, "r") as handle:
        assert "log_likelihood" not in handle and "constant_data" in handle
        for name in left_out.get("posterior", ()):
            assert name not in handle["posterior"], name
    loaded = load_posterior(path)
    for group, names in left_out.items():
        memory = getattr(fit.idata, group)
        for name in names or memory.data_vars:
            np.testing.assert_array_equal(getattr(loaded, group)[name].values,
                                          memory[name].values, err_msg=f"{group}/{name}")
    memory, disk = _loo(fit.idata), _loo(loaded)
    assert (disk.elpd_loo, disk.p_loo) == (memory.elpd_loo, memory.p_loo)
    assert np.array_equal(disk.pareto_k.values, memory.pareto_k.values)
    assert_same_power_scaling(loaded, fit.idata)

"""The lean conversion of nutpie's raw trace equals nutpie's own InferenceData."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def compiled():
    import nutpie
    import pymc as pm

    with pm.Model(coords={"coef": ["a", "b", "c"]}) as model:
        slope = pm.Normal("slope", 0.0, 1.0, dims="coef")
        scale = pm.HalfNormal("scale", 1.0)
        pm.Normal("y", slope.sum(), scale, observed=np.array([0.3, -0.2, 0.5, 0.1]))
        pm.Deterministic("matrix", pm.math.stack([slope, 2.0 * slope]))
    return nutpie.compile_pymc_model(model, backend="numba")


def test_raw_trace_conversion_equals_nutpie(compiled):
    import nutpie

    from models.bayes.trace import raw_trace_to_inference_data

    settings = {"draws": 150, "tune": 100, "chains": 3, "seed": 11, "progress_bar": False,
                "save_warmup": False}
    reference = nutpie.sample(compiled, **settings)
    ours = raw_trace_to_inference_data(nutpie.sample(compiled, return_raw_trace=True,
                                                     **settings), compiled.coords)
    for group in ("posterior", "sample_stats"):
        expected, got = reference[group], ours[group]
        assert set(got.data_vars) == set(expected.data_vars)
        for name in expected.data_vars:
            assert got[name].dims == expected[name].dims, name
            assert got[name].dtype == expected[name].dtype, name
            np.testing.assert_array_equal(got[name].values, expected[name].values)
        for dim in expected.dims:
            np.testing.assert_array_equal(got[dim].values, expected[dim].values)
    assert ours.posterior.sizes["draw"] == 150
    assert list(ours.posterior["coef"].values) == ["a", "b", "c"]


def test_a_trace_cut_short_is_an_interruption_not_a_posterior():
    import arviz as az
    import numpy as np
    import pytest

    from models.bayes.sampler import check_complete

    idata = az.from_dict(posterior={"slope": np.zeros((1, 250))})
    check_complete(idata, draws=250, chains=1)
    with pytest.raises(KeyboardInterrupt, match="1 chain"):
        check_complete(idata, draws=1000, chains=4)

"""Power-scaling sensitivity: quiet under the weak defaults, loud under a prior that fights the
data."""

from __future__ import annotations

import pandas as pd
import pytest

from inference.datasets import default_data_path
from models.bayes.sensitivity import power_scaling_table
from models.panel.bayes import fit_bayes_twfe


@pytest.fixture(scope="module")
def panel():
    return pd.read_csv(default_data_path("zhao2025"))


def _table(panel, priors):
    fit = fit_bayes_twfe(panel, "Inn", ["AI", "Eco"], "city", "year", priors=priors,
                         draws=500, tune=500, chains=2, seed=11)
    return power_scaling_table(fit.idata).set_index("parameter")


def test_default_priors_are_data_driven_and_a_tight_wrong_prior_is_flagged(panel):
    default = _table(panel, None)
    assert (default.loc[["slope[AI]", "slope[Eco]"], "prior_sensitivity"] < 0.05).all()
    assert (default.loc[["slope[AI]", "slope[Eco]"], "diagnosis"] == "data-driven").all()
    assert not any("__" in name for name in default.index)
    # A prior centred at 0 with sd 0.01 against a within estimate of 0.25 (SE 0.05).
    tight = _table(panel, ["slope=normal(0,0.01)"])
    assert tight.loc["slope[AI]", "prior_sensitivity"] > 0.05
    assert tight.loc["slope[AI]", "diagnosis"] == "prior-data conflict"


def test_psens_equals_arviz_on_a_fit(panel):
    """The array computation gives ArviZ's numbers for every parameter and both components,
    on a fit with a prior the data fight (so the values are not all near zero)."""
    import arviz as az
    import numpy as np

    from models.bayes.sensitivity import psens

    fit = fit_bayes_twfe(panel, "Inn", ["AI", "Eco"], "city", "year",
                         priors=["slope=normal(0,0.05)"], draws=500, tune=500, chains=2,
                         seed=3)
    names = [n for n in fit.idata.posterior.data_vars if "__" not in n
             and fit.idata.posterior[n].size // (2 * 500) <= 64]
    for component in ("prior", "likelihood"):
        ours = psens(fit.idata, component, names)
        theirs = az.psens(fit.idata, component=component, var_names=names)
        for name in names:
            np.testing.assert_allclose(ours[name].values, theirs[name].values, rtol=1e-8,
                                       atol=1e-12, err_msg=f"{component} {name}")
            assert ours[name].dims == theirs[name].dims
        assert max(float(np.max(ours[n].values)) for n in names) > 0.05

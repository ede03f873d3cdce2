"""The worker's reading of a fit: draws of results terms that a family stores under a
variable and a coordinate label, and the claim draws taken from the fit that wrote the row."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd

from inference.estimators.base import Estimate
from inference.sensitivity.tasks import _claims, _row_draws, fit_draws


class _Fit:
    def __init__(self, idata):
        self.idata = idata


def _idata(seed: int, shift: float) -> az.InferenceData:
    rng = np.random.default_rng(seed)
    indirect = rng.normal([shift, -shift], 1.0, size=(2, 50, 2))
    return az.from_dict(posterior={"indirect": indirect, "total": rng.normal(size=(2, 50))},
                        coords={"mediator": ["Va", "Ind"]}, dims={"indirect": ["mediator"]})


def test_fit_draws_reads_variable_label_terms():
    idata = _idata(0, 1.0)
    np.testing.assert_array_equal(fit_draws(idata, "indirect_Va"),
                                  idata.posterior["indirect"].sel(mediator="Va").values.ravel())
    np.testing.assert_array_equal(fit_draws(idata, "total"),
                                  idata.posterior["total"].values.ravel())
    assert fit_draws(idata, "indirect_Gdp") is None
    assert fit_draws(idata, "share_mediated_Va") is None


def test_claim_draws_come_from_the_fit_that_wrote_the_row():
    """Two fits both hold ``indirect_Va``; the row of column 3 is the second fit's mean, so
    the claim reads the second fit's draws (P(indirect > 0) differs between them)."""
    first, second = _idata(1, -0.5), _idata(2, 2.0)
    mean = float(second.posterior["indirect"].sel(mediator="Va").mean())
    other = float(first.posterior["indirect"].sel(mediator="Ind").mean())
    tidy = pd.DataFrame({"table": ["6", "6"], "column": ["3", "5"],
                         "term": ["indirect_Va", "indirect_Ind"], "estimate": [mean, other]})
    estimate = Estimate(tidy, fits={"joint": _Fit(first), "Va": _Fit(second)})
    draws = _row_draws(estimate, tidy, "6/3/indirect_Va")
    np.testing.assert_array_equal(draws, second.posterior["indirect"].sel(mediator="Va")
                                  .values.ravel())
    probabilities = _claims("zhao2025", estimate, tidy)
    assert probabilities["va_mediates"] == float((draws > 0).mean())
    assert probabilities["ind_mediates"] == float(
        (first.posterior["indirect"].sel(mediator="Ind").values.ravel() > 0).mean())
    assert "ai_raises_innovation" not in probabilities     # its row (2/6/AI) is not here
    # A row whose mean no fit's draws reproduce has no draws, and its claim no probability.
    tidy.loc[0, "estimate"] += 1.0
    assert _row_draws(estimate, tidy, "6/3/indirect_Va") is None
    assert _claims("zhao2025", estimate, tidy)["va_mediates"] is None

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


def test_power_scaling_reads_the_row_quantity_not_another_with_its_label():
    """Mediation's b path is the row ``Va``, and ``a`` carries the label ``Va`` too: with the
    row's mean the power-scaling numbers are b's, as ArviZ's psens gives them for b[Va]."""
    from inference.sensitivity.tasks import power_scaling_summary
    from models.bayes.sensitivity import power_scaling_table

    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 0.2, (2, 200, 2)), rng.normal(-0.5, 0.3, (2, 200, 2))
    log_prior = -0.5 * (a**2).sum(axis=2) - 0.5 * (b**2 / 4).sum(axis=2)
    log_likelihood = -0.5 * (b[..., :1] - 0.4) ** 2 * 50 + rng.normal(0, 0.01, (2, 200, 1))
    idata = az.from_dict(posterior={"a": a, "b": b}, coords={"mediator": ["Va", "Ind"]},
                         dims={"a": ["mediator"], "b": ["mediator"]},
                         log_likelihood={"y": log_likelihood})
    idata.add_groups({"log_prior": az.from_dict(posterior={"prior": log_prior}).posterior})
    b_va = float(b[..., 0].mean())
    summary = power_scaling_summary(idata, ["Va"], means={"Va": b_va})
    row = summary["diagnosis"][0]
    reference = power_scaling_table(idata).set_index("parameter").loc["b[Va]"]
    assert row["quantity"] == "Va"
    assert row["prior_sensitivity"] == reference["prior_sensitivity"]
    assert row["likelihood_sensitivity"] == reference["likelihood_sensitivity"]
    sequence = pd.DataFrame(summary["sequence"])
    at_one = sequence[(sequence["alpha"] == 1.0) & (sequence["component"] == "prior")]
    assert at_one["mean"].iloc[0] == np.float64(b_va) or abs(at_one["mean"].iloc[0] - b_va) < 1e-12

"""claims.csv: every claim of the ledger appears, with its probability and range over the grid
or, in words, why the run gives it none."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from inference.registry import load_study
from inference.sensitivity.claims import claims_frame, owners, spec_columns
from inference.sensitivity.tasks import find_spec


def _grid(spec: str, values: dict[str, list[float]]) -> pd.DataFrame:
    n = len(next(iter(values.values())))
    frame = pd.DataFrame({"spec": spec, "role": ["default"] + ["slope.AI"] * (n - 1),
                          "mean": 0.3})
    for claim, probabilities in values.items():
        frame[f"claim_{claim}"] = probabilities
    return frame


def test_mediation_columns_belong_to_their_spec():
    study = load_study("zhao2025")
    mediation = find_spec(study, "6/1")
    assert spec_columns(mediation) == {"1", "2", "3", "4", "5", "joint"}
    assert [f"{s.table}/{s.column}" for s in owners(study, "6/3/indirect_Va")] == ["6/1"]
    assert [f"{s.table}/{s.column}" for s in owners(study, "5/2/AI_regime1")] == ["5/2"]


def test_every_claim_is_listed_with_a_probability_or_the_reason():
    study = load_study("zhao2025")
    specs = [find_spec(study, "2/6"), find_spec(study, "6/1")]
    grid = pd.concat([_grid("2/6", {"ai_raises_innovation": [1.0, 0.98, 0.9]}),
                      _grid("6/1", {"va_mediates": [0.7, 0.6], "ind_mediates": [np.nan, 0.2]})],
                     ignore_index=True)
    frame = claims_frame(study, specs, grid, "SYNTHETIC").set_index("claim_id")
    from inference.claims import load_claims

    assert list(frame.index) == [c.id for c in load_claims("zhao2025")]
    ai = frame.loc["ai_raises_innovation"]
    assert (ai["default_probability"], ai["min_probability"], ai["max_probability"],
            ai["alternatives"]) == (1.0, 0.9, 1.0, 2)
    assert ai["status"].startswith("assessed on 2/6: 1.00 under the default prior, 0.90 to 1.00")
    # A claim with a probability only under an alternative is still assessed, its default
    # left empty.
    assert np.isnan(frame.loc["ind_mediates", "default_probability"])
    assert frame.loc["ind_mediates", "max_probability"] == pytest.approx(0.2)
    assert frame.loc["rise_then_fall", "status"] == (
        "not assessed: rests on 5/1, which this run did not refit (add --spec 5/1)")
    assert frame.loc["east_strongest", "specs"] == "7/region_pooled"
    assert "7/region_pooled, which this run did not refit" in frame.loc["east_strongest",
                                                                       "status"]
    assert frame.loc["after_2016", "status"].startswith(
        "not assessed here: its draws come from 2 specifications (abstract/before_2016, "
        "abstract/from_2016)")
    assert frame["data_label"].eq("SYNTHETIC").all()


def test_a_refitted_spec_without_draws_of_the_claim_says_so():
    study = load_study("zhao2025")
    frame = claims_frame(study, [find_spec(study, "5/1")],
                         pd.DataFrame({"spec": ["5/1"], "role": ["default"], "mean": [0.2]}),
                         "SYNTHETIC").set_index("claim_id")
    assert frame.loc["rise_then_fall", "status"] == (
        "not assessed: the fit of 5/1 has no posterior draws of 5/1/AI_regime1, "
        "5/1/AI_regime2, 5/1/AI_regime3")
    failed = claims_frame(study, [find_spec(study, "5/1")],
                          pd.DataFrame({"spec": ["5/1"], "role": ["default"],
                                        "mean": [np.nan]}), "SYNTHETIC").set_index("claim_id")
    assert failed.loc["rise_then_fall", "status"] == "not assessed: the default fit of 5/1 failed"

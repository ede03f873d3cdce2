"""SYNTHETIC fu2021 panel: contract, reproducibility, DEA column and recovery of the truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from data.contracts import load_contract, validate_panel
from data.synthetic import fu2021
from models.dea import ccr_efficiency
from tests.records import assert_records_match

FILES = Path(__file__).resolve().parents[3] / "data" / "files" / "fu2021"
FORMULA = "{y} ~ AI + Gro + Urb + Open | province + year"


@pytest.fixture(scope="module")
def shipped() -> pd.DataFrame:
    return pd.read_csv(FILES / "panel.csv")


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((FILES / "truth.json").read_text())


@pytest.fixture(scope="module")
def regenerated() -> tuple[pd.DataFrame, dict]:
    return fu2021.generate()


def test_shipped_panel_meets_contract(shipped):
    contract = load_contract("fu2021")
    validated = validate_panel(shipped, contract, needed=[c.name for c in contract.columns])
    assert validated.shape == (300, len(fu2021.COLUMN_ORDER))
    assert validated.groupby("region")["province"].nunique().to_dict() == {
        "central": 8,
        "east": 11,
        "west": 11,
    }
    assert sorted(validated["year"].unique()) == list(range(2010, 2020))


def test_regenerating_reproduces_shipped_files(shipped, truth, regenerated):
    panel, new_truth = regenerated
    assert list(panel.columns) == list(shipped.columns)
    pd.testing.assert_frame_equal(panel[["province", "region"]], shipped[["province", "region"]])
    numeric = shipped.select_dtypes("number").columns
    np.testing.assert_allclose(panel[numeric], shipped[numeric], rtol=1e-9, atol=1e-12)
    assert_records_match(new_truth, truth, "truth.json")
    assert truth["synthetic"] is True and truth["seed"] == fu2021.DEFAULT_SEED


def test_columns_are_their_definitions(shipped):
    np.testing.assert_allclose(
        shipped["AI"], np.log(shipped["ict_fixed_asset_investment"] / shipped["gdp"]), atol=1e-8
    )
    np.testing.assert_allclose(shipped["ai_share"], np.exp(shipped["AI"]), rtol=1e-8)
    np.testing.assert_allclose(
        shipped["ln_innovation_efficiency"], np.log(shipped["innovation_efficiency"]), atol=1e-9
    )
    for count, log in fu2021.COUNT_OUTCOMES.items():
        np.testing.assert_allclose(shipped[log], np.log(shipped[count]), atol=1e-9)


def test_efficiency_column_is_the_pooled_ccr_score_of_the_shipped_inputs(shipped):
    scores = ccr_efficiency(
        shipped[["rd_personnel", "rd_spending"]].to_numpy(), shipped["patents_granted"].to_numpy()
    )
    np.testing.assert_allclose(scores, shipped["innovation_efficiency"], rtol=1e-8)
    assert (scores == 1.0).sum() == 1


def test_pooled_fe_regression_recovers_truth_and_published(shipped, truth):
    fit = pf.feols(FORMULA.format(y="ln_innovation_efficiency"), data=shipped)
    estimate, se = fit.coef()["AI"], fit.se()["AI"]
    assert abs(estimate - truth["pooled_pseudo_true"]) < 2 * se
    assert abs(estimate - truth["effective"]["pooled"]) < 1e-6
    # Lands on the published 0.045 (the effective slope differs only by rounded patents).
    assert estimate == pytest.approx(0.045, abs=1e-3)


@pytest.mark.parametrize("region", ["east", "central", "west"])
def test_region_fe_regressions_recover_truth(shipped, truth, region):
    rows = shipped[shipped["region"] == region]
    fit = pf.feols(FORMULA.format(y="ln_innovation_efficiency"), data=rows)
    estimate, se = fit.coef()["AI"], fit.se()["AI"]
    assert abs(estimate - truth["elasticity_AI"][region]) < 2 * se
    assert estimate == pytest.approx(truth["elasticity_AI"][region], abs=1e-3)


def test_central_result_is_significant_at_one_percent_and_west_is_not(shipped):
    central = pf.feols(
        FORMULA.format(y="ln_innovation_efficiency"), data=shipped[shipped["region"] == "central"]
    )
    west = pf.feols(
        FORMULA.format(y="ln_innovation_efficiency"), data=shipped[shipped["region"] == "west"]
    )
    assert central.pvalue()["AI"] < 0.01
    assert west.pvalue()["AI"] > 0.10


@pytest.mark.parametrize("outcome", list(fu2021.LINEAR_OUTCOMES))
def test_other_outcomes_recover_their_elasticities(shipped, truth, outcome):
    fit = pf.feols(FORMULA.format(y=outcome), data=shipped)
    expected = truth["linear_outcomes"][outcome]["elasticity_AI"]
    assert abs(fit.coef()["AI"] - expected) < 2 * fit.se()["AI"]
    assert fit.coef()["AI"] == pytest.approx(expected, abs=1e-3)


def test_within_slopes_matches_pyfixest(shipped):
    fit = pf.feols(FORMULA.format(y="ln_papers"), data=shipped)
    ours = fu2021.within_slopes(
        shipped["ln_papers"].to_numpy(),
        shipped[["AI", "Gro", "Urb", "Open"]].to_numpy(),
        shipped["province"].to_numpy(),
        shipped["year"].to_numpy(),
    )
    np.testing.assert_allclose(ours, fit.coef()[["AI", "Gro", "Urb", "Open"]], rtol=1e-8)


def test_another_seed_still_hits_the_published_pooled_slope():
    panel, truth = fu2021.generate(seed=7)
    assert truth["effective"]["pooled"] == pytest.approx(0.045, abs=1e-3)
    assert truth["seed"] == 7
    assert not np.allclose(panel["AI"], pd.read_csv(FILES / "panel.csv")["AI"])

"""SYNTHETIC agglo2025 panel: contracts, reproducibility, measures and recovery of the truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from data.contracts import load_contract, validate_panel
from data.errors import DataError
from data.measures.knowledge_variety import variety_panel
from data.measures.location_quotient import location_quotient
from data.synthetic import agglo2025
from tests.records import assert_records_match

FILES = Path(__file__).resolve().parents[3] / "data" / "files" / "agglo2025"
CONTROLS = " + ".join(agglo2025.CONTROLS)
FE = " | city + year"


@pytest.fixture(scope="module")
def shipped() -> pd.DataFrame:
    return pd.read_csv(FILES / "panel.csv")


@pytest.fixture(scope="module")
def patents() -> pd.DataFrame:
    return pd.read_csv(FILES / "patents_by_class.csv")


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((FILES / "truth.json").read_text())


def test_shipped_panel_meets_contract(shipped):
    contract = load_contract("agglo2025")
    validated = validate_panel(shipped, contract, needed=[c.name for c in contract.columns])
    assert validated.shape[0] == 268 * 10
    assert validated["city"].nunique() == 268
    assert validated.groupby("region")["city"].nunique().to_dict() == {
        "central": 96,
        "east": 100,
        "west": 72,
    }
    assert validated.groupby("city")["hub"].first().sum() == 35


def test_shipped_patent_file_meets_its_contract(patents):
    contract = load_contract("agglo2025_patents")
    assert contract.row_keys == ["city", "year", "ipc_class"]
    validate_panel(patents, contract, needed=[c.name for c in contract.columns])
    assert set(patents["ipc_class"]) <= set(agglo2025.CLASSES)
    assert (patents["count"] > 0).all()
    with pytest.raises(DataError, match=r"duplicate \(city, year, ipc_class\) keys at rows 1, "):
        validate_panel(pd.concat([patents, patents.iloc[:1]]), contract)


def test_regenerating_reproduces_shipped_files(shipped, patents, truth):
    panel, new_truth, extra = agglo2025.generate()
    assert list(panel.columns) == list(shipped.columns)
    assert (panel["city"] == shipped["city"]).all()
    numeric = shipped.select_dtypes("number").columns
    np.testing.assert_allclose(panel[numeric], shipped[numeric], rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(extra["patents_by_class.csv"], patents, check_dtype=False)
    assert_records_match(new_truth, truth, "truth.json")
    assert truth["synthetic"] is True and truth["seed"] == agglo2025.DEFAULT_SEED
    assert truth["variety_targets_clipped"] == 0


def test_varieties_recomputed_from_patent_file_equal_panel(shipped, patents):
    recomputed = variety_panel(patents).merge(shipped, on=["city", "year"], suffixes=("", "_panel"))
    assert len(recomputed) == len(shipped)
    for column in ("related_variety", "unrelated_variety"):
        np.testing.assert_allclose(recomputed[column], recomputed[f"{column}_panel"], atol=1e-9)
    np.testing.assert_array_equal(recomputed["patents"], recomputed["patent_total"])


def test_location_quotient_recomputed_from_employment_equals_panel(shipped):
    np.testing.assert_allclose(location_quotient(shipped), shipped["LQ"], rtol=1e-9)


def test_baseline_twfe_recovers_pseudo_true_slope(shipped, truth):
    fit = pf.feols(f"Inn ~ LQ + {CONTROLS}{FE}", data=shipped)
    estimate, se = fit.coef()["LQ"], fit.se()["LQ"]
    assert abs(estimate - truth["pseudo_true"]["baseline"]) < 2 * se
    assert fit.pvalue()["LQ"] < 0.01


@pytest.mark.parametrize("mediator", ["related_variety", "unrelated_variety"])
def test_mediation_paths_recover_truth(shipped, truth, mediator):
    a_fit = pf.feols(f"{mediator} ~ LQ + {CONTROLS}{FE}", data=shipped)
    assert abs(a_fit.coef()["LQ"] - truth["mediation"]["a"][mediator]) < 2 * a_fit.se()["LQ"]
    outcome = pf.feols(
        f"Inn ~ LQ + related_variety + unrelated_variety + {CONTROLS}{FE}", data=shipped
    )
    b = outcome.coef()[mediator]
    assert abs(b - truth["mediation"]["b"][mediator]) < 2 * outcome.se()[mediator]
    direct = outcome.coef()["LQ"]
    assert abs(direct - truth["pseudo_true"]["direct_with_mediators"]) < 2 * outcome.se()["LQ"]


def test_heterogeneity_ordering_matches_the_abstract(shipped, truth):
    def slope(rows: pd.DataFrame) -> float:
        return pf.feols(f"Inn ~ LQ + {CONTROLS}{FE}", data=rows).coef()["LQ"]

    hub, non_hub = slope(shipped[shipped["hub"] == 1]), slope(shipped[shipped["hub"] == 0])
    east = slope(shipped[shipped["region"] == "east"])
    central = slope(shipped[shipped["region"] == "central"])
    assert hub > non_hub and east > central
    assert truth["pseudo_true"]["hub"] > truth["pseudo_true"]["non_hub"]
    assert truth["pseudo_true"]["east"] > truth["pseudo_true"]["central"]


def test_threshold_regimes_grow_and_gamma_lies_inside_the_trimmed_range(shipped, truth):
    gamma = truth["threshold"]["gamma"]
    assert np.quantile(shipped["LQ"], 0.10) < gamma < np.quantile(shipped["LQ"], 0.90)
    split = shipped.assign(
        LQ_low=shipped["LQ"] * (shipped["LQ"] <= gamma),
        LQ_high=shipped["LQ"] * (shipped["LQ"] > gamma),
    )
    fit = pf.feols(f"Inn ~ LQ_low + LQ_high + {CONTROLS}{FE}", data=split)
    for term, key in (("LQ_low", "LQ_regime1"), ("LQ_high", "LQ_regime2")):
        assert abs(fit.coef()[term] - truth["pseudo_true"][key]) < 2 * fit.se()[term]
    assert truth["pseudo_true"]["LQ_regime2"] > truth["pseudo_true"]["LQ_regime1"]


def test_systematic_mediator_paths_are_exact(truth):
    # The noise-free mediators are linear in LQ, so their pseudo-true slope is a itself.
    for mediator, a in truth["mediation"]["a"].items():
        assert truth["pseudo_true"][f"a_{mediator}"] == pytest.approx(a, abs=1e-10)

"""The zhu2025 contract, shift-share measures and SYNTHETIC panel, checked against numbers.

Published values come from Zhu, Leng & Zhang (2025), Tables 1 and 5 and section 3; the truth is
the shipped ``truth.json`` of the synthetic panel.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from data.contracts import load_contract, validate_panel
from data.errors import DataError
from data.measures.shift_share import (
    add_measures,
    concentration_facts,
    growth_weighted_measure,
    shift_share_measure,
    shift_share_weight,
)
from data.synthetic import zhu2025
from data.synthetic.zhu2025_events import EVENT_PUBLISHED, PRINTED_YEARS
from tests.records import assert_records_match

FILES = Path(zhu2025.__file__).resolve().parent.parent / "files" / "zhu2025"
CONTROLS = "ln_pop + ln_emp + ln_rd_staff"


@pytest.fixture(scope="module")
def shipped() -> pd.DataFrame:
    return pd.read_csv(FILES / "panel.csv")


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((FILES / "truth.json").read_text())


def test_shipped_panel_meets_every_rule_of_the_contract(shipped):
    contract = load_contract("zhu2025")
    names = [c.name for c in contract.columns]
    checked = validate_panel(shipped, contract, source="panel.csv", needed=names)
    assert sorted(checked.columns) == sorted(names)
    assert len(checked) == 2858  # Table 1 column (1)
    assert (checked["ai_net_entries"] == checked["ai_entries"] - checked["ai_exits"]).all()


def test_contract_names_the_column_and_rule_it_breaks(shipped):
    broken = shipped.copy()
    broken.loc[3, "ai_firms"] = -1
    with pytest.raises(DataError, match=r"'ai_firms'.*row 4.*allowed range"):
        validate_panel(broken, load_contract("zhu2025"))


def test_default_seed_reproduces_shipped_files(shipped, truth):
    panel, fresh_truth = zhu2025.generate()
    assert list(panel.columns) == list(shipped.columns)
    for name in panel.columns:
        if pd.api.types.is_numeric_dtype(panel[name]):
            np.testing.assert_allclose(panel[name], shipped[name], rtol=1e-9, atol=1e-9)
        else:
            assert (panel[name].astype(str) == shipped[name].astype(str)).all(), name
    assert fresh_truth["synthetic"] is True
    assert_records_match(fresh_truth, truth, "truth.json")


def test_table1_column1_twfe_lands_near_published_and_truth(shipped, truth):
    data = add_measures(shipped)
    fit = pf.feols(f"ln_gdp ~ m_firms + {CONTROLS} | city + year", data=data, vcov={"CRV1": "city"})
    estimate, se = fit.coef()["m_firms"], fit.se()["m_firms"]
    published, published_se = 0.125, 0.01
    assert abs(estimate - published) < published_se
    assert abs(estimate - truth["estimands"]["1/1"]["estimand"]) < 2 * se
    assert se == pytest.approx(published_se, rel=0.1)  # the noise scale was set from this SE
    assert fit._N == 2858


def test_event_study_recovers_true_entry_path(shipped, truth):
    data = shipped.assign(
        y=np.log1p(shipped["ai_entries"]),
        treat=(
            shipped["sec_share_2015"] > shipped.groupby("city")["sec_share_2015"].first().median()
        ).astype(int),
    )
    fit = pf.feols("y ~ i(year, treat, ref=2015) | city + year", data=data, vcov={"CRV1": "city"})
    path = truth["event_study"]["ai_entries"]["path_ln1p"]
    published = dict(zip(PRINTED_YEARS, EVENT_PUBLISHED["ai_entries"][0]))
    coef, se = fit.coef(), fit.se()
    for year, true_value in path.items():
        name = next(n for n in coef.index if f"::{year}" in n)
        assert abs(coef[name] - true_value) < 3 * se[name], year
        if int(year) in published:  # the truth is the published path by construction
            assert true_value == pytest.approx(published[int(year)], abs=1e-6)


def test_shift_share_weight_matches_formula_on_hand_example():
    panel = pd.DataFrame(
        {
            "city": ["a", "a", "a", "b", "b", "b"],
            "year": [2018, 2019, 2020, 2018, 2019, 2020],
            "mfg_firms": [800.0, 900.0, 1000.0, 50.0, 40.0, 40.0],
            "ai_firms": [1.0, 3.0, 20.0, 0.0, 0.0, 2.0],
            "gdp_growth": [7.0, 6.0, 5.0, 10.0, 8.0, 2.0],
        }
    )
    weight = shift_share_weight(panel)
    assert weight["a"] == pytest.approx(20 / 1000)
    assert weight["b"] == pytest.approx(2 / 40)
    measure = shift_share_measure(panel, scale=1.0)
    np.testing.assert_allclose(measure, [16.0, 18.0, 20.0, 2.5, 2.0, 2.0])
    np.testing.assert_allclose(shift_share_measure(panel), measure / 100)
    back_cast = growth_weighted_measure(panel, scale=1.0)
    np.testing.assert_allclose(
        back_cast, [20 / 1.06 / 1.05, 20 / 1.05, 20, 2 / 1.08 / 1.02, 2 / 1.02, 2]
    )


def test_growth_back_cast_with_firm_growth_is_the_baseline_measure(shipped):
    city = shipped.loc[shipped["city"].isin(shipped["city"].unique()[:30])].copy()
    city = city.loc[city.groupby("city")["year"].transform("min") == 2010]
    growth = city.groupby("city")["mfg_firms"].pct_change().fillna(0.0) * 100
    baseline = shift_share_measure(city)
    back_cast = growth_weighted_measure(city.assign(firm_growth=growth), growth="firm_growth")
    np.testing.assert_allclose(back_cast, baseline, rtol=1e-10)


def test_weight_rejects_missing_base_year_and_zero_denominator():
    panel = pd.DataFrame(
        {"city": ["a", "b"], "year": [2020, 2019], "mfg_firms": [10.0, 5.0], "ai_firms": [1.0, 1.0]}
    )
    with pytest.raises(DataError, match="no 2020 row"):
        shift_share_weight(panel)
    panel = pd.DataFrame({"city": ["a"], "year": [2020], "mfg_firms": [0.0], "ai_firms": [1.0]})
    with pytest.raises(DataError, match="mfg_firms.*positive"):
        shift_share_weight(panel)


def test_concentration_facts_on_hand_example_and_shipped_panel(shipped):
    panel = pd.DataFrame(
        {
            "year": [2020] * 4,
            "ai_firms": [6.0, 3.0, 1.0, 0.0],
            "region": ["east", "east", "west", "central"],
        }
    )
    facts = concentration_facts(panel).loc[2020]
    assert facts["top1"] == pytest.approx(0.6)
    assert facts["n_zero"] == 1
    assert facts["hhi"] == pytest.approx(0.36 + 0.09 + 0.01)
    shipped_2020 = concentration_facts(shipped).loc[2020]
    assert shipped_2020["top1"] == pytest.approx(0.22, abs=0.01)  # Shenzhen 22%
    assert shipped_2020["top5"] == pytest.approx(0.415, abs=0.015)  # top five 41.5%
    assert shipped_2020["n_zero"] / shipped_2020["n_cities"] == pytest.approx(192 / 367, abs=0.02)

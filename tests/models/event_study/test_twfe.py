"""Event-study TWFE against pyfixest's i(year, treat, ref=2015) and the synthetic truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from scipy import stats

from data.errors import DataError
from models.event_study.twfe import fit_event_study, plot_event_study, treatment_indicator

FILES = Path(__file__).resolve().parents[3] / "data" / "files" / "zhu2025"
CONTROLS = ["ln_pop", "ln_emp", "ln_rd_staff"]


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(FILES / "panel.csv")


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((FILES / "truth.json").read_text())


def _pyfixest_reference(panel: pd.DataFrame, count: str, controls: list[str]):
    data = panel.copy()
    per_city = data.groupby("city")["sec_share_2015"].first()
    data["treat"] = data["city"].map((per_city > per_city.median()).astype(int))
    data = data[data[count] > -1]
    data["y"] = np.log1p(data[count])
    rhs = " + ".join(["i(year, treat, ref=2015)", *controls])
    return pf.feols(f"y ~ {rhs} | city + year", data=data, vcov={"CRV1": "city"})


@pytest.mark.parametrize("count, controls", [
    ("ai_entries", CONTROLS), ("ai_net_entries", CONTROLS), ("ai_inv_grants", []),
])
def test_equals_pyfixest_interaction_syntax(panel, count, controls):
    ours = fit_event_study(panel, count, "sec_share_2015", controls)
    reference = _pyfixest_reference(panel, count, controls)
    theirs = reference.tidy()
    rows = ours.tidy().set_index("term")
    years = [y for y in range(2010, 2021) if y != 2015]
    for year in years:
        label = f"year::{year}:treat"
        assert rows.loc[f"Treat_x_{year}", "estimate"] == pytest.approx(
            theirs.loc[label, "Estimate"], abs=1e-8)
        assert rows.loc[f"Treat_x_{year}", "std_error"] == pytest.approx(
            theirs.loc[label, "Std. Error"], abs=1e-8)
    assert ours.n_obs == reference._N
    # Pre-trend test: the Wald statistic of pyfixest's wald_test on the same restrictions.
    names = list(reference._coefnames)
    restriction = np.zeros((5, len(names)))
    for row, year in enumerate(range(2010, 2015)):
        restriction[row, names.index(f"year::{year}:treat")] = 1.0
    reference.wald_test(R=restriction, distribution="chi2")
    f_stat = float(reference._wald_statistic) / 5
    assert rows.loc["pretrend_wald", "stat"] == pytest.approx(f_stat, rel=1e-8)
    dfd = reference._G[0] - 1
    assert rows.loc["pretrend_wald", "p_value"] == pytest.approx(
        stats.f.sf(f_stat, 5, dfd), rel=1e-8)


def test_net_entries_drop_values_without_a_log(panel):
    fit = fit_event_study(panel, "ai_net_entries", "sec_share_2015")
    dropped = int((panel["ai_net_entries"] <= -1).sum())
    assert fit.n_dropped == dropped
    assert fit.n_obs == len(panel) - dropped


def test_treatment_group_is_the_above_median_half(panel, truth):
    treat = treatment_indicator(panel, "sec_share_2015")
    assert treat.groupby(panel["city"]).first().sum() == truth["treat"]["n_treated"]


@pytest.mark.parametrize("count", ["ai_entries", "ai_exits", "ai_inv_apps", "ai_inv_grants"])
def test_recovers_the_true_paths(panel, truth, count):
    """The truth is the TWFE projection of E[ln(1 + Y)] without controls: the estimated path
    must not differ from it jointly (clustered Wald test) and each year within 3.5 SE."""
    fit = fit_event_study(panel, count, "sec_share_2015")
    path = truth["event_study"][count]["path_ln1p"]
    rows = fit.tidy().set_index("term")
    gaps = []
    for year, value in path.items():
        estimate, se = rows.loc[f"Treat_x_{year}", ["estimate", "std_error"]]
        assert abs(estimate - value) < 3.5 * se, (count, year, estimate, value, se)
        gaps.append((estimate - value) / se)
    # Mean standardised gap near zero: no systematic offset of the whole path.
    assert abs(np.mean(gaps)) < 1.5


def test_plot_and_bad_input(panel, tmp_path):
    fit = fit_event_study(panel, "ai_exits", "sec_share_2015")
    path = plot_event_study(fit, tmp_path / "es.png", "exits (SYNTHETIC data)")
    assert path.stat().st_size > 10_000
    assert list(fit.path()["year"]) == list(range(2010, 2021))
    assert fit.path().set_index("year").loc[2015, "estimate"] == 0.0
    varying = panel.assign(sec_share_2015=panel["sec_share_2015"] + panel["year"] * 0.01)
    with pytest.raises(DataError, match="constant within each city"):
        fit_event_study(varying, "ai_exits", "sec_share_2015")
    with pytest.raises(DataError, match="reference year 2030"):
        fit_event_study(panel, "ai_exits", "sec_share_2015", reference=2030)


def test_one_treated_city_is_flagged_beside_its_clustered_errors():
    """One treated city: the city-clustered errors rest on one cluster, and every Treat x year
    row and the pre-trend test say they cannot be trusted."""
    panel = pd.read_csv(FILES / "panel.csv")
    first = panel["city"].iloc[0]
    panel["one_treated"] = (panel["city"] == first).astype(float)
    fit = fit_event_study(panel, "ai_entries", "one_treated")
    notes = dict(zip(fit.table["term"], fit.table["note"], strict=True))
    assert "rests on 1 of" in notes["Treat_x_2018"]
    assert "cannot be trusted" in notes["pretrend_wald"]
    spread = fit_event_study(panel, "ai_entries", "sec_share_2015")
    assert not spread.table["note"].astype(bool).any()

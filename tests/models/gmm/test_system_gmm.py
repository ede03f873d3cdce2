"""System GMM against pydynpd on the same data and instruments, and against a known truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data.errors import DataError
from data.measures.shift_share import add_measures
from models.gmm.estimate import fit_system_gmm
from tests.models.gmm.peer import assert_matches_pydynpd, pydynpd_model

PANEL = Path(__file__).resolve().parents[3] / "data" / "files" / "zhu2025" / "panel.csv"
CONTROLS = ["ln_pop", "ln_emp", "ln_rd_staff"]


@pytest.fixture(scope="module")
def zhu_panel() -> pd.DataFrame:
    panel = add_measures(pd.read_csv(PANEL)).rename(columns={"m_firms": "M_AI_firm"})
    return panel.sort_values(["city", "year"]).reset_index(drop=True)


def _pydynpd(command: str, frame: pd.DataFrame, monkeypatch):
    return pydynpd_model(command, frame, ["city", "year"], monkeypatch)


def _compare(ours, theirs, rename=lambda t: t):
    assert_matches_pydynpd(ours, theirs, rename)


def _pydynpd_name(name: str) -> str:
    return {"_con": "_con"}.get(name, name.replace("year_", "_year_", 1)
                                if name.startswith("year_") else name)


def test_matches_pydynpd_collapsed_table4_model(zhu_panel, monkeypatch):
    """Table 4 column 4: ln GDP on its lag, the measure and its lag, controls, year dummies."""
    ours = fit_system_gmm(zhu_panel, "ln_gdp", ["M_AI_firm", *CONTROLS], lagged=["M_AI_firm"],
                          gmm={"ln_gdp": (2, 4), "M_AI_firm": (2, 4)})
    theirs = _pydynpd(
        "ln_gdp L1.ln_gdp M_AI_firm L1.M_AI_firm ln_pop ln_emp ln_rd_staff | "
        "gmm(ln_gdp, 2:4) gmm(M_AI_firm, 2:4) iv(ln_pop ln_emp ln_rd_staff) | timedumm collapse",
        zhu_panel[["city", "year", "ln_gdp", "M_AI_firm", *CONTROLS]], monkeypatch)
    _compare(ours, theirs, _pydynpd_name)
    # The panel lacks two cities' 2010 rows: 260 x 10 level equations less those two.
    assert ours.n_obs_level == 2598


def test_matches_pydynpd_uncollapsed_exogenous_measure(zhu_panel, monkeypatch):
    """Instruments per lag and period; the measure IV-style with its lag; no year dummies."""
    ours = fit_system_gmm(zhu_panel, "ln_gdp", ["M_AI_firm", "ln_pop"], lagged=["M_AI_firm"],
                          gmm={"ln_gdp": (2, 3)}, time_dummies=False, collapse=False)
    theirs = _pydynpd(
        "ln_gdp L1.ln_gdp M_AI_firm L1.M_AI_firm ln_pop | gmm(ln_gdp, 2:3) "
        "iv(L(0:1).M_AI_firm ln_pop)",
        zhu_panel[["city", "year", "ln_gdp", "M_AI_firm", "ln_pop"]], monkeypatch)
    _compare(ours, theirs, _pydynpd_name)


def _simulated_panel(n_units: int = 600, n_periods: int = 12, seed: int = 7) -> pd.DataFrame:
    """y_it = 0.5 y_i,t-1 + 0.3 x_it + 0.1 x_i,t-1 + a_i + e_it with x correlated with a_i."""
    rng = np.random.default_rng(seed)
    alpha = rng.normal(0, 1, n_units)
    burn = 30
    x = np.zeros((n_units, n_periods + burn))
    y = np.zeros((n_units, n_periods + burn))
    y[:, 0] = alpha / (1 - 0.5)
    for t in range(1, n_periods + burn):
        x[:, t] = 0.6 * x[:, t - 1] + 0.4 * alpha + rng.normal(0, 1, n_units)
        y[:, t] = (0.5 * y[:, t - 1] + 0.3 * x[:, t] + 0.1 * x[:, t - 1] + alpha
                   + rng.normal(0, 1, n_units))
    units = np.repeat(np.arange(n_units), n_periods)
    periods = np.tile(np.arange(2000, 2000 + n_periods), n_units)
    return pd.DataFrame({"city": units, "year": periods, "y": y[:, burn:].ravel(),
                         "x": x[:, burn:].ravel()})


def test_recovers_known_dynamics():
    """rho = 0.5, b = 0.3, b1 = 0.1 within two Windmeijer SEs; AR(2) and Hansen do not reject."""
    frame = _simulated_panel()
    # x is correlated with a_i, so its levels cannot instrument the level equation: GMM-style.
    fit = fit_system_gmm(frame, "y", ["x"], lagged=["x"], gmm={"y": (2, 4), "x": (1, 3)},
                         time_dummies=False)
    se = dict(zip(fit.terms, fit.std_errors, strict=True))
    for term, truth in {"L1.y": 0.5, "x": 0.3, "L1.x": 0.1}.items():
        assert abs(fit.coef(term) - truth) < 2.5 * se[term], (term, fit.coef(term), se[term])
        assert se[term] < 0.06
    assert fit.ar[1][1] < 0.01  # differenced errors are MA(1) by construction
    assert fit.ar[2][1] > 0.01
    assert fit.hansen[2] > 0.01
    value, error = fit.long_run("x")
    assert abs(value - 0.8) < 3 * error  # (0.3 + 0.1) / (1 - 0.5)


def test_bad_input_names_the_rule(zhu_panel):
    with pytest.raises(DataError, match="consecutive periods"):
        fit_system_gmm(zhu_panel[zhu_panel["year"] != 2015], "ln_gdp", ["M_AI_firm"])
    with pytest.raises(ValueError, match="lag 2 or later"):
        fit_system_gmm(zhu_panel, "ln_gdp", ["M_AI_firm"], gmm={"ln_gdp": (1, 3)})
    with pytest.raises(DataError, match="ln_missing"):
        fit_system_gmm(zhu_panel, "ln_gdp", ["ln_missing"])

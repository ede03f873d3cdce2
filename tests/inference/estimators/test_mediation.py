"""zhao2025 Table 6 through the mediation adapter: the parallel-mediator frequentist rows equal
pyfixest; the Bayesian rows land in the printed columns beside the frequentist ones, agree
with them, carry rho_at_zero rows, notes and a SYNTHETIC-labelled figure each."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from inference.datasets import default_data_path
from inference.estimators.base import Settings
from inference.estimators.mediation import bayesian, frequentist
from inference.registry import load_study

CONTROLS = "Eco + Huc + Edu + Fis + Gov"


@pytest.fixture(scope="module")
def spec():
    table6 = next(s for s in load_study("zhao2025").specs if s.table == "6")
    return replace(table6, options={**table6.options, "n_boot": 0})


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(default_data_path("zhao2025"))


@pytest.fixture(scope="module")
def frequentist_rows(spec, panel) -> pd.DataFrame:
    settings = Settings(seed=1, unit="city", time="year")
    return frequentist(panel, spec, settings).tidy


@pytest.fixture(scope="module")
def bayesian_estimate(spec, panel, tmp_path_factory):
    settings = Settings(seed=1, unit="city", time="year", quick=True, synthetic=True,
                        sampling={"draws": 200, "tune": 200, "chains": 2, "sampler": "pymc"},
                        out_dir=tmp_path_factory.mktemp("mediation"))
    return bayesian(panel, spec, settings)


def test_joint_frequentist_rows_equal_pyfixest(frequentist_rows, panel):
    rows = frequentist_rows[frequentist_rows["column"] == "joint"].set_index("term")
    outcome = pf.feols(f"Inn ~ AI + Va + Ind + {CONTROLS} | city + year", data=panel,
                       vcov="hetero")
    total = pf.feols(f"Inn ~ AI + {CONTROLS} | city + year", data=panel, vcov="hetero")
    assert rows.loc["total", "estimate"] == pytest.approx(total.coef()["AI"], abs=1e-9)
    assert rows.loc["direct", "estimate"] == pytest.approx(outcome.coef()["AI"], abs=1e-9)
    for m in ("Va", "Ind"):
        a_fit = pf.feols(f"{m} ~ AI + {CONTROLS} | city + year", data=panel, vcov="hetero")
        a, b = a_fit.coef()["AI"], outcome.coef()[m]
        se = np.sqrt(b**2 * a_fit.se()["AI"] ** 2 + a**2 * outcome.se()[m] ** 2)
        assert rows.loc[f"a_{m}", "estimate"] == pytest.approx(a, abs=1e-9)
        assert rows.loc[f"b_{m}", "estimate"] == pytest.approx(b, abs=1e-9)
        assert rows.loc[f"indirect_{m}", "estimate"] == pytest.approx(a * b, abs=1e-10)
        assert rows.loc[f"indirect_{m}", "std_error"] == pytest.approx(se, rel=1e-6)
        assert rows.loc[f"share_mediated_{m}", "estimate"] == pytest.approx(
            a * b / total.coef()["AI"], rel=1e-8)


def test_bayesian_rows_sit_beside_the_frequentist_rows_and_agree(bayesian_estimate,
                                                                  frequentist_rows):
    tidy = bayesian_estimate.tidy
    cells = set(zip(tidy["column"], tidy["term"], strict=True))
    printed = {("1", "AI"), ("2", "AI"), ("3", "AI"), ("3", "Va"), ("3", "indirect_Va"),
               ("3", "share_mediated_Va"), ("4", "AI"), ("5", "Ind"),
               ("5", "indirect_Ind")}
    frequentist_cells = set(zip(frequentist_rows["column"], frequentist_rows["term"],
                                strict=True))
    assert printed <= cells and printed <= frequentist_cells
    assert {("3", "rho_at_zero_Va"), ("5", "rho_at_zero_Ind"), ("joint", "indirect_Va"),
            ("joint", "rho_at_zero_Ind"), ("joint", "share_mediated_Ind")} <= cells
    assert len(cells) == len(tidy)
    bayes = tidy.set_index(["column", "term"])
    freq = frequentist_rows.set_index(["column", "term"])
    for cell in [("2", "AI"), ("3", "Va"), ("4", "AI"), ("5", "Ind"), ("joint", "b_Va"),
                 ("joint", "a_Ind"), ("joint", "total")]:
        sd = bayes.loc[cell, "std_error"]
        assert abs(bayes.loc[cell, "estimate"] - freq.loc[cell, "estimate"]) < 0.35 * sd, cell
    assert set(bayesian_estimate.fits) == {"Va", "Ind", "joint"}


def test_bayesian_rows_say_what_failed_and_where_rho_reaches_zero(bayesian_estimate):
    tidy = bayesian_estimate.tidy.set_index(["column", "term"])
    # 2 x 200 draws cannot give 400 effective draws of every term.
    assert tidy["note"].str.contains("bulk ESS|did not converge").any()
    rho = tidy.loc[("joint", "rho_at_zero_Va")]
    assert np.isnan(rho["std_error"]) and -1 < rho["estimate"] < 1
    assert "Imai-Keele-Yamamoto" in rho["note"] or "already at rho = 0" in rho["note"]
    assert len(bayesian_estimate.figures) == 3
    assert all(path.exists() and path.stat().st_size > 10_000
               for path in bayesian_estimate.figures)
    curve = pd.read_csv(bayesian_estimate.figures[-1].with_suffix(".csv"))
    assert set(curve["mediator"]) == {"Va", "Ind"}
    at_zero = curve[(curve["mediator"] == "Va") & (curve["rho"] == 0)].iloc[0]
    # At rho = 0 the curve is the posterior of the indirect effect itself.
    assert at_zero["mean"] == pytest.approx(tidy.loc[("joint", "indirect_Va"), "estimate"],
                                            rel=1e-6)

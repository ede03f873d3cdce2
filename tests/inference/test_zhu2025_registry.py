"""zhu2025 registry: it loads, its columns exist, and its specs reach every published cell."""

from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from data.published import load_published
from inference.datasets import load_dataset
from inference.estimators import BAYESIAN, FREQUENTIST, Settings
from inference.registry import load_study
from inference.samples import prepare_sample

TRUTH = Path(__file__).resolve().parents[2] / "data" / "files" / "zhu2025" / "truth.json"
INDICATOR_ROWS = {"controls", "city_fe", "year_fe"}
# Options of the zhu2025 specs that name data columns (beyond Spec.columns).
COLUMN_VALUED_OPTIONS = ("treat", "lagged", "iv", "region")


@pytest.fixture(scope="module")
def study():
    return load_study("zhu2025")


@pytest.fixture(scope="module")
def frame(study) -> pd.DataFrame:
    needed = list(dict.fromkeys(c for s in study.specs for c in s.columns))
    data = load_dataset("zhu2025", None, needed).frame
    for target in study.derive:
        module, _, function = target.partition(":")
        data = getattr(importlib.import_module(module), function)(data.copy())
    return data


@pytest.fixture(scope="module")
def results(study, frame, tmp_path_factory) -> pd.DataFrame:
    settings = Settings(seed=1, unit=study.unit, time=study.time, quick=True,
                        out_dir=tmp_path_factory.mktemp("zhu2025"), synthetic=True)
    parts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for spec in study.specs:
            tidy = FREQUENTIST[spec.kind](prepare_sample(frame, spec), spec, settings).tidy
            tidy = tidy.copy()
            tidy["table"] = tidy["table"].astype(str) if "table" in tidy else spec.table
            tidy["column"] = tidy["column"].astype(str) if "column" in tidy else spec.column
            parts.append(tidy)
    return pd.concat(parts, ignore_index=True)


def test_registry_loads(study):
    kinds = pd.Series([s.kind for s in study.specs]).value_counts().to_dict()
    assert kinds == {"twfe": 17, "event_study": 5, "concentration": 2, "system_gmm": 1,
                     "heterogeneity": 1, "mediation": 1}
    assert study.derive[0] == "data.measures.shift_share:add_measures"
    # Bayesian counterparts only where one exists (TWFE, heterogeneity, event study, mediation).
    assert all(s.bayes == (s.kind in ("twfe", "heterogeneity", "event_study", "mediation"))
               for s in study.specs)
    assert all(s.kind in BAYESIAN for s in study.specs if s.bayes)
    assert all(s.vcov == "cluster:city" for s in study.specs if s.kind in ("twfe",
                                                                        "event_study"))
    assert all(s.kind in FREQUENTIST for s in study.specs)


def test_every_spec_column_exists_after_derive(study, frame):
    for spec in study.specs:
        names = list(spec.columns)
        for key in COLUMN_VALUED_OPTIONS:
            value = spec.options.get(key)
            names.extend([value] if isinstance(value, str) else value or [])
        names.extend(spec.options.get("gmm", {}))
        missing = [n for n in names if n not in frame.columns]
        assert not missing, f"{spec.key}: {missing}"
        assert len(prepare_sample(frame, spec)) > 1000, spec.key


def test_every_published_cell_has_a_frequentist_neighbour(results):
    published = load_published("zhu2025")
    cells = published.loc[~published["term"].isin(INDICATOR_ROWS),
                          ["table", "column", "term"]].astype(str)
    produced = set(map(tuple, results.loc[results["estimate"].notna(),
                                          ["table", "column", "term"]].astype(str).to_numpy()))
    missing = [tuple(c) for c in cells.to_numpy() if tuple(c) not in produced]
    assert not missing
    assert len(cells) == 62


def test_tables_1_to_4_land_on_the_synthetic_estimands(results):
    """Each TWFE column within 3.5 clustered SEs of the coefficient it has on the noise-free
    outcome (truth.json ``estimands``); the patent samples have the truth's N."""
    estimands = json.loads(TRUTH.read_text())["estimands"]
    names = {"m_firms": "M_AI_firm", "m_apps": "M_AI_patent_app",
             "m_grants": "M_AI_patent_grant", "m_firms_gw": "M_AI_firm"}
    rows = results.set_index(["table", "column", "term"])
    for key, truth in estimands.items():
        table, column = key.split("/")
        estimate, se, n_obs = rows.loc[(table, column, names[truth["measure"]]),
                                       ["estimate", "std_error", "n_obs"]]
        assert abs(estimate - truth["estimand"]) < 3.5 * se, (key, estimate, truth, se)
        assert n_obs == truth["n_obs"], key


def test_facts_gmm_and_heterogeneity_numbers(results):
    rows = results.set_index(["table", "column", "term"])["estimate"]
    assert rows[("facts", "firms", "shenzhen_ai_firms")] == 643
    assert rows[("facts", "firms", "cities_zero_firms")] == 136
    assert rows[("facts", "firms", "shenzhen_share_pct")] == pytest.approx(22.585, abs=1e-3)
    assert rows[("facts", "firms", "top5_share_pct")] == pytest.approx(42.606, abs=1e-3)
    assert rows[("facts", "firms_by_year", "hhi_2020")] == pytest.approx(0.070170, abs=1e-6)
    # Income groups split the panel; few low-income cities hold AI firms, so their slope is
    # weakly identified (the synthetic truth there is theta_low = 0.032).
    hetero = results[results["table"] == "heterogeneity"].set_index(["column", "term"])
    high = hetero.loc[("high_income", "M_AI_firm")]
    low = hetero.loc[("low_income", "M_AI_firm")]
    assert high["n_obs"] + low["n_obs"] == 2858
    assert high["estimate"] / high["std_error"] > 5
    assert low["std_error"] > 10 * high["std_error"]
    assert abs(low["estimate"] - 0.0322) < 3.5 * low["std_error"]
    gmm = results[(results["table"] == "4") & (results["column"] == "4")].set_index("term")
    assert {"M_AI_firm", "lag_M_AI_firm", "lag_ln_gdp", "ar1", "ar2", "hansen_j"} <= set(
        gmm.index)
    assert gmm.loc["lag_ln_gdp", "estimate"] == pytest.approx(0.342401, abs=1e-5)
    assert gmm.loc["M_AI_firm", "n_obs"] == 2598
    net = results[(results["table"] == "5") & (results["column"] == "3")]
    assert net["n_obs"].iloc[0] == 2858 - 199  # net entries <= -1 have no log

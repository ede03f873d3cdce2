"""zhao2025 Table 5 rows from the threshold adapter: constant and R2 at the estimated
thresholds equal an independent pyfixest regression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from inference.datasets import default_data_path
from inference.estimators.base import Settings
from inference.estimators.threshold import frequentist
from inference.registry import load_study


def test_table5_constant_and_r2_match_the_regression_at_the_thresholds():
    spec = next(s for s in load_study("zhao2025").specs if (s.table, s.column) == ("5", "3"))
    panel = pd.read_csv(default_data_path("zhao2025"))
    tidy = frequentist(panel, spec, Settings(seed=1, unit="city", time="year", quick=True)).tidy
    rows = tidy.set_index("term")
    gamma = rows.loc["gamma_1", "estimate"]
    low = panel["Ind"] < gamma
    frame = panel.assign(AI_regime1=panel["AI"] * low, AI_regime2=panel["AI"] * ~low)
    controls = " + ".join(spec.regressors)
    peer = pf.feols(f"Inn ~ {controls} + AI_regime1 + AI_regime2 | city + year", data=frame,
                    vcov="hetero")
    for term in ("AI_regime1", "AI_regime2"):
        assert rows.loc[term, "estimate"] == pytest.approx(peer.coef()[term], abs=1e-8)
    assert rows.loc["R2", "estimate"] == pytest.approx(peer._r2, abs=1e-10)
    # xtreg's constant: the mean of y - x'b - year effects with the first year as base.
    # pyfixest reports year effects relative to the first year, which it leaves out.
    year_effects = peer.fixef()["C(year)"]
    assert str(panel["year"].min()) not in year_effects
    fitted_slopes = frame[list(peer.coef().index)].to_numpy() @ peer.coef().to_numpy()
    offsets = panel["year"].astype(str).map(lambda y: year_effects.get(y, 0.0))
    constant = np.mean(panel["Inn"] - fitted_slopes - offsets)
    assert rows.loc["Constant", "estimate"] == pytest.approx(constant, abs=1e-8)

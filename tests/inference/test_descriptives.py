"""Hansen (1999) Table 1 (quantiles of the investment panel) recomputed from the real data."""

from __future__ import annotations

import pandas as pd
import pytest

from data.hansen1999 import load_invest_panel
from data.published import PUBLISHED_DIR
from inference.descriptives import moments_table
from inference.registry import load_study


def test_hansen_table1_matches_every_printed_digit():
    printed = pd.read_csv(PUBLISHED_DIR / "hansen1999.csv", dtype=str)
    printed = printed[printed["table"] == "1"]
    names = load_study("hansen1999").summary_names
    computed = moments_table(load_invest_panel(),
                             {t: names.get(t, t) for t in printed["term"].unique()})
    computed = computed.set_index(["term", "column"])["estimate"]
    assert len(printed) == 20
    for row in printed.itertuples():
        decimals = len(row.estimate.split(".")[1]) if "." in row.estimate else 0
        value = computed[(row.term, row.column)]
        assert value == pytest.approx(float(row.estimate), abs=0.5 * 10**-decimals + 1e-12), row

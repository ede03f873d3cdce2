"""How one frequentist number is written in a report cell."""

from __future__ import annotations

import numpy as np

from inference.report.tables import Cell, frequentist_text


def test_an_interval_row_shows_its_interval():
    cell = Cell(frequentist={"estimate": -0.1086, "std_error": np.nan, "stat": np.nan,
                             "p_value": np.nan, "ci_low": -0.5087, "ci_high": 0.2869})
    assert frequentist_text(cell) == "-0.1086 [-0.509, 0.287]"


def test_a_coefficient_row_shows_its_t():
    cell = Cell(frequentist={"estimate": 0.25, "std_error": 0.1, "stat": 2.5,
                             "p_value": 0.012, "ci_low": 0.05, "ci_high": 0.45})
    assert frequentist_text(cell) == "0.2500** (t 2.50)"

"""The shipped zhao2025 panel: reproducible, within its contract, calibrated to the print."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from data.contracts import load_contract, validate_panel
from data.published import load_published
from data.synthetic import FILES_DIR, zhao2025
from models.panel.fe import fit_twfe

CONTROLS = ["Eco", "Huc", "Edu", "Fis", "Gov"]


@pytest.fixture(scope="module")
def shipped() -> pd.DataFrame:
    return pd.read_csv(FILES_DIR / "zhao2025" / "panel.csv")


def test_regenerating_reproduces_the_shipped_files(shipped):
    panel, truth = zhao2025.generate()
    pd.testing.assert_frame_equal(panel.reset_index(drop=True), shipped, check_exact=False,
                                  rtol=1e-9, check_dtype=False)
    assert json.loads((FILES_DIR / "zhao2025" / "truth.json").read_text())["seed"] == \
        truth["seed"]
    assert truth["synthetic"] is True


def test_panel_meets_contract_and_region_sizes(shipped):
    validate_panel(shipped, load_contract("zhao2025"), source="shipped")
    cities = shipped.drop_duplicates("city")
    assert cities["region"].value_counts().to_dict() == {"east": 100, "central": 100, "west": 71}
    assert cities["municipality"].sum() == 4
    assert shipped["high_data"].sum() == 1534 and shipped["high_digital"].sum() == 1270


def test_table1_moments_near_the_print(shipped):
    published = load_published("zhao2025")
    table1 = published[published["table"].astype(str) == "1"].pivot(
        index="term", columns="column", values="estimate")
    for name in ["Inn", "AI", "Va", "Ind", "Eco", "Huc", "Edu", "Fis", "Gov"]:
        assert abs(shipped[name].mean() - table1.loc[name, "mean"]) < 0.05 * table1.loc[name, "sd"]
        assert shipped[name].std() == pytest.approx(table1.loc[name, "sd"], rel=0.1)


def test_table2_column6_within_one_published_se(shipped):
    fit = fit_twfe(shipped, "Inn", ["AI", *CONTROLS], ["city", "year"], vcov="hetero").tidy()
    ai = fit.set_index("term").loc["AI"]
    assert abs(ai["estimate"] - 0.2720) < 0.2720 / 5.59
    # Standard errors, not only the point estimate, resemble the print (robust t 5.59).
    assert ai["std_error"] == pytest.approx(0.2720 / 5.59, rel=0.2)
    truth = json.loads((FILES_DIR / "zhao2025" / "truth.json").read_text())
    assert abs(ai["estimate"] - truth["table2_col6_pseudo_true"]["AI"]) < 2 * ai["std_error"]
    np.testing.assert_allclose(fit.set_index("term").loc["R2", "estimate"], 0.854, atol=0.03)

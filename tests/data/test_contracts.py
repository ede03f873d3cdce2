"""Bad input stops with an error that names the column, the rows and the rule."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from data.contracts import load_contract, validate_panel
from data.errors import DataError
from data.loaders import read_table
from inference.cli import main
from inference.datasets import default_data_path

CONTRACT = load_contract("zhao2025")
MAIN_COLUMNS = ["city", "year", "Inn", "AI", "Eco", "Huc", "Edu", "Fis", "Gov"]


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(default_data_path("zhao2025"))


def _check(frame: pd.DataFrame, *needles: str) -> str:
    with pytest.raises(DataError) as info:
        validate_panel(frame, CONTRACT, source="user.csv", needed=MAIN_COLUMNS)
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    return message


def test_default_panel_meets_its_contract(panel):
    checked = validate_panel(panel, CONTRACT, source="default")
    assert len(checked) == 3252
    assert checked["Inn"].dtype == float


def test_missing_column(panel):
    _check(panel.drop(columns=["Eco"]), "missing column", "'Eco'", "required columns")


def test_strings_in_numeric_column(panel):
    bad = panel.astype({"AI": object})
    bad.loc[[4, 9], "AI"] = ["n/a", "12,3"]
    _check(bad, "column 'AI'", "rows 5, 10", "'n/a'", "numeric type")


def test_non_finite_values(panel):
    bad = panel.copy()
    bad.loc[7, "Gov"] = np.inf
    bad.loc[20, "Gov"] = np.nan
    _check(bad, "column 'Gov'", "rows 8, 21", "finite values")


def test_duplicate_keys(panel):
    bad = pd.concat([panel, panel.iloc[[3]]], ignore_index=True)
    _check(bad, "duplicate (city, year)", "rows 4, 3253", "one row per (city, year)")


def test_out_of_range(panel):
    bad = panel.copy()
    bad.loc[2, "Fis"] = -1.0
    _check(bad, "column 'Fis'", "row 3", "allowed range")


def test_regressor_without_within_variation(panel):
    bad = panel.copy()
    bad["Huc"] = bad.groupby("city")["Huc"].transform("mean")
    _check(bad, "column 'Huc'", "does not vary within any city", "within-unit variation")


def test_empty_and_unreadable_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_table(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("city,year,Inn\n")
    with pytest.raises(DataError, match="no data rows"):
        read_table(header_only)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not a parquet file")
    with pytest.raises(DataError, match="cannot be read"):
        read_table(broken)
    other = tmp_path / "panel.json"
    other.write_text("{}")
    with pytest.raises(DataError, match="unsupported file type"):
        read_table(other)
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "absent.csv")


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".dta", ".xlsx"])
def test_every_format_reads_the_same_panel(panel, tmp_path, suffix):
    subset = panel[MAIN_COLUMNS].head(60)
    path = tmp_path / f"panel{suffix}"
    {".csv": lambda p: subset.to_csv(p, index=False),
     ".parquet": lambda p: subset.to_parquet(p, index=False),
     ".dta": lambda p: subset.to_stata(p, write_index=False),
     ".xlsx": lambda p: subset.to_excel(p, index=False)}[suffix](path)
    back = validate_panel(read_table(path), CONTRACT, source=str(path), needed=MAIN_COLUMNS)
    np.testing.assert_allclose(back["AI"].to_numpy(), subset["AI"].to_numpy(), rtol=1e-12)


def test_cli_reports_bad_data_without_traceback_and_leaves_file_alone(panel, tmp_path, capsys):
    bad = panel.astype({"Edu": object})
    bad.loc[11, "Edu"] = "missing"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    code = main(["run", "zhao2025", "--data", str(path), "--frequentist-only",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "column 'Edu'" in err and "row 12" in err and "Traceback" not in err
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_gbk_csv_reads_with_its_encoding_and_says_so_without_it(tmp_path):
    import pandas as pd
    import pytest

    from data.errors import DataError
    from data.loaders import read_table

    frame = pd.DataFrame({"城市": ["北京", "上海"], "year": [2015, 2016], "Inn": [1.5, 2.5]})
    path = tmp_path / "gbk.csv"
    frame.to_csv(path, index=False, encoding="gbk")
    with pytest.raises(DataError, match="--encoding"):
        read_table(path)
    pd.testing.assert_frame_equal(read_table(path, encoding="gbk"), frame)
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        read_table(path, encoding="klingon")

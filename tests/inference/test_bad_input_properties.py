"""Property-based: whatever is wrong with a user's panel or arguments, ``fit`` ends with a
clear error (exit status 2, one line on stderr) or a documented result, never a traceback,
and the input file is left byte for byte as it was."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference.cli import main

CORRUPTIONS = ("none", "nan", "text", "inf", "duplicate_key", "drop_column", "one_unit",
               "constant_regressor", "collinear", "huge", "empty_rows", "bad_seed",
               "bad_formula", "unknown_cluster")


def _panel(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"unit": np.repeat(np.arange(12), 4), "year": np.tile(np.arange(4), 12)})
    frame["x"] = rng.normal(size=len(frame))
    frame["w"] = rng.normal(size=len(frame))
    frame["y"] = 0.5 * frame["x"] + rng.normal(size=len(frame))
    return frame


def _corrupt(frame: pd.DataFrame, kind: str, row: int) -> tuple[pd.DataFrame, list[str]]:
    args = ["--formula", "y ~ x + w | unit + year"]
    frame = frame.copy()
    if kind == "nan":
        frame.loc[row, "x"] = np.nan
    elif kind == "text":
        frame["w"] = frame["w"].astype(object)
        frame.loc[row, "w"] = "n/a"
    elif kind == "inf":
        frame.loc[row, "y"] = np.inf
    elif kind == "duplicate_key":
        frame.loc[row, ["unit", "year"]] = frame.loc[(row + 1) % len(frame), ["unit", "year"]]
    elif kind == "drop_column":
        frame = frame.drop(columns=["w"])
    elif kind == "one_unit":
        frame = frame[frame["unit"] == frame.loc[row, "unit"]]
    elif kind == "constant_regressor":
        frame["w"] = 1.0
    elif kind == "collinear":
        frame["w"] = 2.0 * frame["x"]
    elif kind == "huge":
        frame.loc[row, "x"] = 1e300
    elif kind == "empty_rows":
        frame = frame.iloc[:0]
    elif kind == "bad_seed":
        args += ["--seed", "-3"]
    elif kind == "bad_formula":
        args = ["--formula", "y ~ log(x) | unit"]
    elif kind == "unknown_cluster":
        args += ["--cluster", "nope"]
    return frame, args


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(CORRUPTIONS), row=st.integers(0, 47), seed=st.integers(0, 10))
def test_bad_panels_get_a_clear_error_and_stay_untouched(tmp_path_factory, capsys, kind, row,
                                                        seed):
    folder = tmp_path_factory.mktemp("case")
    frame, args = _corrupt(_panel(seed), kind, row)
    data = folder / "panel.csv"
    frame.to_csv(data, index=False)
    before = data.read_bytes()
    try:
        code = main(["fit", "--data", str(data), "--out", str(folder / "out"),
                     "--frequentist-only", *args])
    except SystemExit as stop:  # argparse: a bad argument value
        code = stop.code
    assert data.read_bytes() == before
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if kind == "none":
        assert code == 0
        results = pd.read_csv(folder / "out" / "results.csv")
        assert "x" in set(results["term"])
    else:
        assert code == 2, kind
        # One message that says what is wrong: ours ("error: ...") or argparse's for a value.
        assert err.startswith("error: ") or "error: argument" in err, err


# Each corruption and what the one error line must say about it.
RUN_CORRUPTIONS = {
    "nan": "'AI' has missing or non-finite values",
    "text": "'Inn' has missing or non-finite values",
    "inf": "'Eco' has missing or non-finite values",
    "duplicate_key": "duplicate (city, year) keys",
    "drop_column": "missing column ['Gov']",
    "empty_rows": "no data rows",
}


def _corrupt_study_panel(frame: pd.DataFrame, kind: str, row: int) -> pd.DataFrame:
    frame = frame.copy()
    if kind == "nan":
        frame.loc[row, "AI"] = np.nan
    elif kind == "text":
        frame["Inn"] = frame["Inn"].astype(object)
        frame.loc[row, "Inn"] = "n/a"
    elif kind == "inf":
        frame.loc[row, "Eco"] = np.inf
    elif kind == "duplicate_key":
        frame.loc[row, ["city", "year"]] = frame.loc[(row + 1) % len(frame), ["city", "year"]]
    elif kind == "drop_column":
        frame = frame.drop(columns=["Gov"])
    elif kind == "empty_rows":
        frame = frame.iloc[:0]
    return frame


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(RUN_CORRUPTIONS)), row=st.integers(0, 3000))
def test_a_corrupted_study_panel_stops_run_before_fitting(tmp_path_factory, capsys, kind, row):
    """``run zhao2025 --data`` on a corrupted copy of the study's panel: one clear error
    naming the rule, exit status 2, no traceback, the file unchanged."""
    from inference.datasets import default_data_path

    folder = tmp_path_factory.mktemp("run")
    data = folder / "panel.csv"
    _corrupt_study_panel(pd.read_csv(default_data_path("zhao2025")), kind, row).to_csv(
        data, index=False)
    before = data.read_bytes()
    code = main(["run", "zhao2025", "--frequentist-only", "--data", str(data),
                 "--out", str(folder / "out")])
    err = capsys.readouterr().err
    assert data.read_bytes() == before
    assert code == 2, kind
    assert err.startswith("error: ") and "Traceback" not in err
    assert RUN_CORRUPTIONS[kind] in err, err

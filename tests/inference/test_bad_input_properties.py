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

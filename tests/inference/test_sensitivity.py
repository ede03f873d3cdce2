"""The sensitivity command: the grid file, relative alternatives resolved against the default
fit's priors, priors raised to a power for refits, and an end-to-end run with its resume."""

from __future__ import annotations

import math
import time

import pandas as pd
import pytest

from inference.sensitivity.grid import (
    Alternative,
    default_grid,
    read_grid,
    resolve_alternative,
)
from inference.sensitivity.run import _flagged_alphas, _scaled_record
from models.bayes.priors import PriorSpecError

RECORD = {"slope.AI": "normal(0, 2)", "slope.Eco": "normal(0, 4)", "unit_sd": "halfnormal(1.5)",
          "year_sd": "halfnormal(1.5)", "sigma": "halfnormal(1.5)", "rho": "lkj(2)",
          "event_path": "rw1"}


def write(tmp_path, text):
    path = tmp_path / "grid.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_grid_has_the_named_roles():
    roles = {a.role for a in default_grid("twfe", "AI")}
    assert {"slope.AI", "unit_sd", "year_sd", "likelihood"} <= roles
    names = {a.name for a in default_grid("twfe", "AI") if a.role == "slope.AI"}
    assert names == {"tighter", "wider", "heavy", "sceptical"}
    assert "group_sd" in {a.role for a in default_grid("heterogeneity", "AI")}
    assert "likelihood" not in {a.role for a in default_grid("heterogeneity", "AI")}
    assert "threshold_prior" in {a.role for a in default_grid("threshold", "AI")}
    assert "event_path" in {a.role for a in default_grid("event_study", None)}
    assert "confounding_rho" in {a.role for a in default_grid("mediation", "AI")}
    assert "rho" in {a.role for a in default_grid("iv", "AI")}
    # A Student-t spec gets no "switch to Student-t" alternative.
    assert "likelihood" not in {a.role for a in default_grid("twfe", "AI",
                                                             {"likelihood": "student_t"})}


def test_grid_file_adds_to_and_replaces_the_defaults(tmp_path):
    defaults = default_grid("twfe", "AI")
    path = write(tmp_path, """
[slope.AI]
tighter = { scale = 0.5 }
fixed = "normal(0, 0.05)"

[group_sd]
wide = { scale = 4 }

[likelihood]
student = "student_t"
""")
    grid = read_grid(path, defaults)
    by = {(a.role, a.name): a.value for a in grid}
    assert by[("slope.AI", "tighter")] == {"scale": 0.5}          # replaced
    assert by[("slope.AI", "fixed")] == "normal(0, 0.05)"          # added
    assert by[("slope.AI", "wider")] == {"scale": 10.0}            # kept
    assert by[("group_sd", "wide")] == {"scale": 4}
    assert len(grid) == len(defaults) + 3
    only = read_grid(write(tmp_path, "[defaults]\nreplace = true\n[unit_sd]\nx = "
                           "'halfnormal(1)'\n"), defaults)
    assert [(a.role, a.name) for a in only] == [("unit_sd", "x")]


@pytest.mark.parametrize("text, words", [
    ("[slop]\nx = 'normal(0, 1)'", ["[slop] x", "unknown role 'slop'"]),
    ("[slope.AI]\nx = { scale = -1 }", ["[slope.AI] x", "scale must be a positive"]),
    ("[slope.AI]\nx = { spread = 2 }", ["[slope.AI] x", "unknown key(s) spread"]),
    ("[slope]\nx = 'normal(0)'", ["[slope] x", "sigma"]),
    ("[sigma]\nx = { sceptical = true }", ["[sigma] x", "sceptical"]),
    ("[likelihood]\nx = 'poisson'", ["[likelihood] x", "normal, student_t, negbin"]),
    ("[rho]\nx = 'lkj(-1)'", ["[rho] x", "eta > 0"]),
    ("[event_path]\nx = 'rw7'", ["[event_path] x"]),
    ("[unit_sd]\nx = 3", ["[unit_sd] x", "got int"]),
    ("[unit_sd]", ["[unit_sd] must be a table"]),
    ("[defaults]\nkeep = 1", ["[defaults] takes only 'replace"]),
    ("slope = [", ["not valid TOML"]),
])
def test_bad_grid_entries_name_the_role_and_entry(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(PriorSpecError) as caught:
        read_grid(path, [])
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_missing_grid_file_is_named(tmp_path):
    with pytest.raises(PriorSpecError, match="--grid .*nothere.toml: file not found"):
        read_grid(tmp_path / "nothere.toml", [])
    with pytest.raises(PriorSpecError, match="is a folder, expected a TOML file"):
        read_grid(tmp_path, [])


def test_relative_alternatives_resolve_against_the_default_priors():
    means = {"AI": 0.329}

    def resolve(role, value):
        return resolve_alternative(Alternative(role, "x", value), RECORD, means, "2/6")

    assert resolve("slope.AI", {"scale": 0.1}) == ({"slope.AI": "normal(0, 0.2)"}, {})
    assert resolve("slope.AI", {"family": "t", "nu": 3}) == ({"slope.AI": "studentt(3, 0, 2)"},
                                                             {})
    priors, _ = resolve("slope.AI", {"sceptical": True})
    assert priors["slope.AI"] == f"normal(0, {0.329 / 1.645:.6g})"
    # A role-wide name changes every recorded entry of the role.
    priors, _ = resolve("slope", {"scale": 10})
    assert priors == {"slope.AI": "normal(0, 20)", "slope.Eco": "normal(0, 40)"}
    assert resolve("unit_sd", {"scale": 10}) == ({"unit_sd": "halfnormal(15)"}, {})
    assert resolve("unit_sd", {"family": "t", "nu": 3}) == (
        {"unit_sd": "halfstudentt(3, 1.5)"}, {})
    assert resolve("likelihood", "student_t") == ({}, {"likelihood": "student_t"})
    with pytest.raises(PriorSpecError, match=r"\[likelihood\] x: a heterogeneity specification "
                                             r"has no likelihood option"):
        resolve_alternative(Alternative("likelihood", "x", "student_t"), RECORD, means, "7/1",
                            "heterogeneity")
    assert resolve("slope.AI", "normal(0, 0.05)") == ({"slope.AI": "normal(0, 0.05)"}, {})
    with pytest.raises(PriorSpecError, match=r"2/6: \[group_sd\] x: the default fit has no "
                                             r"prior 'group_sd'"):
        resolve("group_sd", {"scale": 2})


def test_scaled_record_raises_every_prior_to_alpha():
    scaled, left = _scaled_record(RECORD, 1.25)
    assert scaled["slope.AI"] == f"normal(0, {2 / math.sqrt(1.25):.6g})"
    assert scaled["unit_sd"] == f"halfnormal({1.5 / math.sqrt(1.25):.6g})"
    assert scaled["rho"] == "lkj(2.25)"
    assert left == ["event_path"]


def test_flagged_alphas_pick_the_extremes_of_the_prior():
    rows = [{"component": c, "alpha": a, "reliable": ok}
            for c, a, ok in [("prior", 0.8, False), ("prior", 0.9, False), ("prior", 1.0, True),
                             ("prior", 1.1, True), ("prior", 1.25, False),
                             ("likelihood", 0.8, True), ("likelihood", 1.25, True)]]
    assert _flagged_alphas({"power_scaling": {"sequence": rows}}) == ([0.8, 1.25], False)
    rows[-1]["reliable"] = False
    assert _flagged_alphas({"power_scaling": {"sequence": rows}})[1] is True
    assert _flagged_alphas({}) == ([], False)


def test_cli_rejects_a_bad_grid_and_spec_with_status_2(tmp_path, capsys):
    from inference.cli import main

    grid = write(tmp_path, "[slope.AI]\nx = { scale = 0 }")
    assert main(["sensitivity", "zhao2025", "--grid", str(grid), "--out",
                 str(tmp_path / "o")]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error:") and "[slope.AI] x" in message and "\n" not in message
    assert main(["sensitivity", "zhao2025", "--spec", "9/9", "--out", str(tmp_path / "o")]) == 2
    assert "--spec 9/9" in capsys.readouterr().err


def test_quick_run_end_to_end_and_its_resume(tmp_path):
    """One spec, a two-alternative grid; the default fit's slope must match the frequentist
    within estimate (weak default priors), the tighter prior must pull it toward 0, and a
    rerun must reuse every fit."""
    from inference.sensitivity import SensitivityOptions, run_sensitivity

    grid = write(tmp_path, "[defaults]\nreplace = true\n[slope.AI]\ntight = { scale = 0.001 }\n"
                 "[unit_sd]\nwide = { scale = 10 }\n")
    options = SensitivityOptions(study="zhao2025", specs=("2/1",), grid=grid, quick=True,
                                 out=tmp_path / "out", workers=1)
    lines: list[str] = []
    first = run_sensitivity(options, progress=lines.append)
    table = pd.read_csv(tmp_path / "out" / "prior_grid.csv")
    assert list(table["alternative"]) == ["default", "tight", "wide"]
    assert table["data_label"].str.contains("SYNTHETIC").all()
    default, tight = table.iloc[0], table.iloc[1]
    assert abs(tight["mean"]) < abs(default["mean"]) and abs(tight["shift_sd"]) > 1
    assert "claim_ai_raises_innovation" not in table  # its claim rests on 2/6, not 2/1
    for name in ("power_scaling.csv", "power_scaling_diagnosis.csv", "index.html",
                 "prior_grid_table2_col1.png", "power_scaling_table2_col1.png"):
        assert (tmp_path / "out" / name).exists(), name
    tick = time.perf_counter()
    again: list[str] = []
    second = run_sensitivity(options, progress=again.append)
    assert time.perf_counter() - tick < 30
    assert not any("Dask worker(s)" in line for line in again)
    assert all("to run" not in line or " 0 to run" in line for line in again if "batch:" in line)
    pd.testing.assert_frame_equal(first.grid, second.grid)


def test_refit_at_the_scaled_prior_and_resume(tmp_path, monkeypatch):
    """With a stand-in fit whose posterior is exact: the prior-scaling weights flagged at
    alpha 0.8 lead to a refit with the slope's prior sd 2 / sqrt(0.8), a grid alternative gets
    the numbers of its prior, and a rerun reuses every fit without starting a cluster."""
    import inference.sensitivity.run as run
    from inference.sensitivity import SensitivityOptions, run_sensitivity
    from tests.inference.sensitivity_tasks import posterior

    monkeypatch.setattr(run, "TASK", "tests.inference.sensitivity_tasks:fake_refit")
    grid = write(tmp_path, "[defaults]\nreplace = true\n[slope.AI]\ntight = { scale = 0.1 }\n"
                 "[group_sd]\nwide = { scale = 2 }\n[unit_sd]\nboom = { scale = 3 }\n")
    options = SensitivityOptions(study="zhao2025", specs=("2/6",), grid=grid,
                                 out=tmp_path / "out", workers=1)
    first = run_sensitivity(options, progress=lambda _line: None)
    table = first.grid.set_index("alternative")
    assert table.loc["tight", "prior"] == "slope.AI=normal(0, 0.2)"
    mean, sd = posterior(0.2)
    assert table.loc["tight", "mean"] == pytest.approx(mean, rel=1e-12)
    default_mean, default_sd = posterior(2.0)
    assert table.loc["tight", "shift_sd"] == pytest.approx((mean - default_mean) / default_sd)
    assert table.loc["wide", "convergence"].startswith("not fitted: 2/6: [group_sd] wide")
    assert table.loc["boom", "convergence"] == ("not fitted: the fit failed: ValueError: "
                                                "simulated failure of a unit_sd refit")
    assert table.loc["default", "claim_ai_raises_innovation"] == 0.99
    refits = first.sequence[first.sequence["method"] == "refit at the scaled prior"]
    assert list(refits["alpha"]) == [0.8]
    assert refits["mean"].iloc[0] == pytest.approx(posterior(2 / math.sqrt(0.8))[0], rel=1e-5)
    note = first.diagnosis["refit"].iloc[0]
    assert "refitted with every prior raised to alpha in closed form at 0.8" in note
    assert "read the refit at the scaled prior" in first.diagnosis["diagnosis"].iloc[0]
    assert len(list((tmp_path / "out" / ".batch").glob("*.json"))) == 3
    lines: list[str] = []
    second = run_sensitivity(options, progress=lines.append)
    # Only the failed fit is tried again.
    assert [line for line in lines if "finished before" in line] == [
        "batch: 1 fits, 1 finished before (reused), 0 to run",
        "batch: 3 fits, 2 finished before (reused), 1 to run"]
    pd.testing.assert_frame_equal(first.grid, second.grid)
    pd.testing.assert_frame_equal(first.sequence, second.sequence)

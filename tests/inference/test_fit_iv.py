"""``python -m inference fit --model iv``: the instrumented formula, and the results contract
against :func:`models.iv.tsls.fit_panel_iv` and pyfixest on the same file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from inference.cli import main
from inference.formula import FormulaError, parse_formula
from models.iv.tsls import fit_panel_iv

SIMULATED = (Path(__file__).resolve().parents[2] / "data" / "files" / "reference"
             / "ivregress_simulated" / "simulated.csv")


def test_parse_instrumented_formula():
    formula = parse_formula("y ~ x1 + [d1 + d2 ~ z1 + z2 + z3] + x2 | unit + time")
    assert formula.regressors == ("x1", "x2", "d1", "d2")
    assert formula.endogenous == ("d1", "d2")
    assert formula.instruments == ("z1", "z2", "z3")
    assert formula.exogenous == ("x1", "x2")
    assert formula.columns == ["y", "x1", "x2", "d1", "d2", "z1", "z2", "z3", "unit", "time"]
    only = parse_formula("y ~ [d ~ z] | unit")
    assert only.regressors == ("d",) and only.exogenous == ()


@pytest.mark.parametrize("text, words", [
    ("y ~ x1 + [d ~ z1] + [e ~ z2] | unit", "at most one instrumented block"),
    ("y ~ x1 + [d z1] | unit", "needs one '~'"),
    ("y ~ x1 + [d ~ x1] | unit", "['x1'] appear more than once"),
    ("y ~ x1 + d ~ z | unit", "exactly one '~'"),
    ("y ~ x1 + [d ~ log(z)] | unit",
     "'log(z)' in the instruments is not a name a formula can hold"),
])
def test_instrumented_formula_rejects_with_reason(text, words):
    with pytest.raises(FormulaError) as info:
        parse_formula(text)
    assert words in str(info.value)


@pytest.mark.parametrize("cluster", [None, "cluster_id"])
def test_fit_iv_writes_the_2sls_of_fit_panel_iv(tmp_path, cluster):
    panel = pd.read_csv(SIMULATED)
    out = tmp_path / "out"
    args = ["fit", "--model", "iv", "--data", str(SIMULATED), "--formula",
            "y_robust ~ x3 + x4 + [x1 + x2 ~ z1 + z2] | cluster_id", "--out", str(out),
            "--frequentist-only"]
    if cluster:
        args += ["--cluster", cluster]
    assert main(args) == 0
    results = pd.read_csv(out / "results.csv")
    assert set(results["source"]) == {"frequentist"}
    second = results[results["column"].astype(str) == "1"].set_index("term")
    vcov = f"cluster:{cluster}" if cluster else "hetero"
    expected = fit_panel_iv(panel, "y_robust", ["x1", "x2"], ["z1", "z2"], ["x3", "x4"],
                            ["cluster_id"], vcov=vcov)
    table = expected.second_stage.set_index("term")
    for term in ("x1", "x2", "x3", "x4"):
        assert second.loc[term, "estimate"] == pytest.approx(table.loc[term, "estimate"],
                                                             rel=1e-9)
        assert second.loc[term, "std_error"] == pytest.approx(table.loc[term, "std_error"],
                                                              rel=1e-9)
    for term in ("kp_rk_lm", "kp_rk_wald_f", "cragg_donald_f"):
        assert second.loc[term, "estimate"] == pytest.approx(expected.diagnostics[term],
                                                             rel=1e-9)
    # One first-stage column per endogenous regressor.
    columns = set(results["column"].astype(str))
    assert {"first_stage/x1", "first_stage/x2"} <= columns
    first = results[results["column"].astype(str) == "first_stage/x1"].set_index("term")
    assert first.loc["z1", "estimate"] == pytest.approx(
        expected.first_stage["x1"].set_index("term").loc["z1", "estimate"], rel=1e-9)
    assert (out / "index.html").is_file()


def test_fit_iv_one_endogenous_equals_pyfixest(tmp_path):
    out = tmp_path / "out"
    assert main(["fit", "--model", "iv", "--data", str(SIMULATED), "--formula",
                 "y_robust ~ x3 + [x1 ~ z1 + z2] | cluster_id", "--out", str(out),
                 "--frequentist-only"]) == 0
    results = pd.read_csv(out / "results.csv")
    second = results[results["column"].astype(str) == "1"].set_index("term")
    peer = pf.feols("y_robust ~ x3 | cluster_id | x1 ~ z1 + z2",
                    data=pd.read_csv(SIMULATED), vcov="hetero").tidy()
    terms = ["x1", "x3"]
    np.testing.assert_allclose(second.loc[terms, "estimate"], peer.loc[terms, "Estimate"],
                               rtol=1e-9)
    np.testing.assert_allclose(second.loc[terms, "std_error"], peer.loc[terms, "Std. Error"],
                               rtol=1e-9)
    assert "hansen_j" in second.index
    assert set(results["column"].astype(str)) == {"1", "first_stage"}


@pytest.mark.parametrize("model, formula, words", [
    ("twfe", "y_robust ~ x3 + [x1 ~ z1] | cluster_id", "fit it with --model iv"),
    ("iv", "y_robust ~ x3 + x1 | cluster_id", "needs an instrumented block"),
    ("iv", "y_robust ~ x3 + [x1 + x2 ~ z1] | cluster_id", "underidentified"),
    ("iv", "y_robust ~ x3 + [x1 ~ nope] | cluster_id", "nope"),
])
def test_fit_iv_bad_input_names_the_problem(tmp_path, capsys, model, formula, words):
    code = main(["fit", "--model", model, "--data", str(SIMULATED), "--formula", formula,
                 "--out", str(tmp_path / "out"), "--frequentist-only"])
    assert code == 2
    assert words in capsys.readouterr().err

"""``python -m inference fit --model threshold | event_study | mediation``: each family on a
simulated panel with known truth, against pyfixest where a regression can check it, and the
one-line errors of bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from inference.cli import main

N_UNITS, YEARS = 60, list(range(2010, 2018))
GAMMA, SLOPES = 0.5, (1.0, 2.0)          # threshold truth
EFFECT, START = 0.5, 2014                # event-study truth: EFFECT from START on
A_PATH, B_PATH, DIRECT = 0.6, 0.4, 0.3   # mediation truth


def _keys(rng):
    unit = np.repeat(np.arange(N_UNITS), len(YEARS))
    year = np.tile(YEARS, N_UNITS)
    return unit, year, rng.normal(0, 1, N_UNITS)[unit], 0.1 * (year - YEARS[0])


def _threshold_panel(seed: int = 1) -> pd.DataFrame:
    """y = x1 (1 if q < 0.5 else 2) + 0.5 x2 + a_i + d_t + e."""
    rng = np.random.default_rng(seed)
    unit, year, a, d = _keys(rng)
    x1, x2, q = (rng.normal(0, 1, unit.size), rng.normal(0, 1, unit.size),
                 rng.uniform(0, 1, unit.size))
    y = np.where(q < GAMMA, *SLOPES) * x1 + 0.5 * x2 + a + d + rng.normal(0, 0.3, unit.size)
    return pd.DataFrame(dict(firm=unit, year=year, x1=x1, x2=x2, q=q, y=y))


def _event_panel(seed: int = 2, treated_units: int = 25) -> pd.DataFrame:
    """y = a_i + d_t + 0.3 x1 + EFFECT T_i 1[t >= START] + e, T_i = 1 for the first units."""
    rng = np.random.default_rng(seed)
    unit, year, a, d = _keys(rng)
    treat = (unit < treated_units).astype(int)
    x1 = rng.normal(0, 1, unit.size)
    y = a + d + 0.3 * x1 + EFFECT * treat * (year >= START) + rng.normal(0, 0.3, unit.size)
    return pd.DataFrame(dict(firm=unit, year=year, x1=x1, T=treat, y=y))


def _mediation_panel(seed: int = 3) -> pd.DataFrame:
    """m = A_PATH tr + a_i + d_t + u; y = B_PATH m + DIRECT tr + 0.2 x2 + a_i + d_t + e."""
    rng = np.random.default_rng(seed)
    unit, year, a, d = _keys(rng)
    tr, x2 = rng.normal(0, 1, unit.size) + a, rng.normal(0, 1, unit.size)
    m = A_PATH * tr + a + d + rng.normal(0, 0.5, unit.size)
    y = B_PATH * m + DIRECT * tr + 0.2 * x2 + a + d + rng.normal(0, 0.5, unit.size)
    return pd.DataFrame(dict(firm=unit, year=year, tr=tr, x2=x2, m=m, y=y))


def _run(tmp_path, panel: pd.DataFrame, *args: str) -> pd.DataFrame:
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "panel.csv"
    panel.to_csv(data, index=False)
    out = tmp_path / "out"
    assert main(["fit", "--data", str(data), "--out", str(out), *args]) == 0
    results = pd.read_csv(out / "results.csv", dtype={"column": str})
    assert set(results["table"]) == {"fit"}
    assert (results["data_label"] == "user data: panel.csv").all()
    assert (out / "index.html").exists()
    return results


def _rows(results: pd.DataFrame, source: str, column: str = "1") -> pd.DataFrame:
    return results[(results["source"] == source) & (results["column"] == column)].set_index(
        "term")


def test_threshold_recovers_the_simulated_threshold_and_slopes(tmp_path):
    results = _run(tmp_path, _threshold_panel(), "--formula", "y ~ x1 + x2 | firm + year",
                   "--model", "threshold", "--threshold-variable", "q", "--bootstrap", "30",
                   "--frequentist-only")
    rows = _rows(results, "frequentist")
    assert rows.loc["gamma_1", "ci_low"] <= GAMMA <= rows.loc["gamma_1", "ci_high"]
    for term, truth in zip(["x1_regime1", "x1_regime2"], SLOPES, strict=True):
        assert abs(rows.loc[term, "estimate"] - truth) < 3 * rows.loc[term, "std_error"]
    assert rows.loc["F_single", "p_value"] < 0.05
    assert set(results["source"]) == {"frequentist"}


def test_event_study_equals_pyfixest_and_the_simulated_path(tmp_path):
    """Binary treatment in 40 of 60 units: the 0/1 column is the treatment, not split at its
    median (which is 1 here and would leave no treated unit)."""
    panel = _event_panel(treated_units=40)
    results = _run(tmp_path, panel, "--formula", "y ~ x1 | firm + year", "--model",
                   "event_study", "--treat", "T", "--reference", "2013", "--cluster", "firm",
                   "--frequentist-only")
    rows = _rows(results, "frequentist")
    years = [y for y in YEARS if y != 2013]
    dummies = {f"D{y}": panel["T"] * (panel["year"] == y) for y in years}
    peer = pf.feols(f"y ~ {' + '.join(dummies)} + x1 | firm + year",
                    data=panel.assign(**dummies), vcov={"CRV1": "firm"})
    for year in years:
        ours = rows.loc[f"Treat_x_{year}"]
        assert ours["estimate"] == pytest.approx(peer.coef()[f"D{year}"], abs=1e-8)
        assert ours["std_error"] == pytest.approx(peer.se()[f"D{year}"], rel=1e-6)
        truth = EFFECT if year >= START else 0.0
        assert abs(ours["estimate"] - truth) < 4 * ours["std_error"]
    assert rows.loc["pretrend_wald", "p_value"] > 0.01


def test_mediation_paths_equal_pyfixest_and_the_truth(tmp_path):
    panel = _mediation_panel()
    results = _run(tmp_path, panel, "--formula", "y ~ tr + x2 | firm + year", "--model",
                   "mediation", "--mediator", "m", "--bootstrap", "50", "--frequentist-only")
    freq = results[results["source"] == "frequentist"]
    a_path = pf.feols("m ~ tr + x2 | firm + year", data=panel, vcov="hetero")
    b_path = pf.feols("y ~ tr + m + x2 | firm + year", data=panel, vcov="hetero")
    a_row = freq[(freq["column"] == "2") & (freq["term"] == "tr")].iloc[0]
    b_rows = freq[freq["column"] == "3"].set_index("term")
    assert a_row["estimate"] == pytest.approx(a_path.coef()["tr"], abs=1e-8)
    assert a_row["std_error"] == pytest.approx(a_path.se()["tr"], rel=1e-6)
    assert b_rows.loc["m", "estimate"] == pytest.approx(b_path.coef()["m"], abs=1e-8)
    indirect = b_rows.loc["indirect_m"]
    assert indirect["estimate"] == pytest.approx(a_row["estimate"] * b_rows.loc["m", "estimate"])
    assert indirect["ci_low"] < A_PATH * B_PATH < indirect["ci_high"]
    assert abs(b_rows.loc["tr", "estimate"] - DIRECT) < 3 * b_rows.loc["tr", "std_error"]


@pytest.mark.parametrize("panel, args, words", [
    (_mediation_panel(), ["--formula", "y ~ tr + x2 | firm + year", "--model", "mediation",
                          "--mediator", "wage"], "mediator (--mediator) 'wage' is not a column"),
    (_mediation_panel(), ["--formula", "y ~ tr + m | firm + year", "--model", "mediation",
                          "--mediator", "m"], "--mediator ['m'] is already in the formula"),
    (_mediation_panel(), ["--formula", "y ~ tr | firm + year", "--model", "mediation"],
     "--model mediation needs --mediator COLUMN"),
    (_threshold_panel().assign(q=lambda d: (d["q"] * 4).round()),
     ["--formula", "y ~ x1 + x2 | firm + year", "--model", "threshold",
      "--threshold-variable", "q"], "threshold variable 'q' has 5 distinct values"),
    (_threshold_panel(), ["--formula", "y ~ x1 + x2 | firm + year", "--model", "threshold",
                          "--threshold-variable", "debt"],
     "threshold variable (--threshold-variable) 'debt' is not a column"),
    (_threshold_panel(), ["--formula", "y ~ x1 + x2 | firm", "--model", "threshold",
                          "--threshold-variable", "q"], "needs a period effect"),
    (_threshold_panel(), ["--formula", "y ~ x1 + x2 | firm + year", "--model", "threshold",
                          "--threshold-variable", "q", "--regime", "q"],
     "--regime 'q' must be a regressor"),
    (_threshold_panel(), ["--formula", "y ~ x1 + x2 | firm + year", "--model", "threshold",
                          "--threshold-variable", "q", "--likelihood", "negbin"],
     "--model threshold has a normal likelihood only"),
    (_event_panel(), ["--formula", "y ~ x1 | firm + year", "--model", "event_study",
                      "--treat", "T", "--likelihood", "student_t"],
     "--model event_study takes --likelihood normal or negbin"),
    (_event_panel(), ["--formula", "y ~ x1 | firm + year", "--model", "event_study",
                      "--treat", "T", "--reference", "2030"],
     "--reference 2030 is not a value of 'year'"),
    (_event_panel(), ["--formula", "y ~ x1 | firm + year", "--model", "event_study",
                      "--treat", "group"], "treatment column (--treat) 'group' is not a column"),
])
def test_bad_input_is_one_line_naming_the_column_or_rule(tmp_path, capsys, panel, args, words):
    data = tmp_path / "panel.csv"
    panel.to_csv(data, index=False)
    status = main(["fit", "--data", str(data), "--out", str(tmp_path / "out"),
                   "--frequentist-only", *args])
    message = capsys.readouterr().err.strip()
    assert status == 2
    assert words in message and len(message.splitlines()) == 1, message


def _covers(row: pd.Series, truth: float) -> bool:
    return row["ci_low"] <= truth <= row["ci_high"]


@pytest.mark.slow
def test_bayesian_threshold_quick_run_covers_the_truth(tmp_path):
    results = _run(tmp_path, _threshold_panel(), "--formula", "y ~ x1 + x2 | firm + year",
                   "--model", "threshold", "--threshold-variable", "q", "--quick",
                   "--seed", "3")
    bayes = _rows(results, "bayesian")
    assert _covers(bayes.loc["gamma_1"], GAMMA)
    for term, truth in zip(["x1_regime1", "x1_regime2"], SLOPES, strict=True):
        assert abs(bayes.loc[term, "estimate"] - truth) < 4 * bayes.loc[term, "std_error"]
    counts = _rows(results, "bayesian", "1_threshold_count")
    assert counts.loc["post_prob_k1", "estimate"] > 0.99
    assert (tmp_path / "out" / "posterior_fit.nc").exists()


@pytest.mark.slow
def test_bayesian_event_study_quick_run_covers_the_truth(tmp_path):
    results = _run(tmp_path, _event_panel(), "--formula", "y ~ x1 | firm + year", "--model",
                   "event_study", "--treat", "T", "--reference", "2013", "--quick",
                   "--seed", "3")
    bayes = _rows(results, "bayesian")
    covered = [_covers(bayes.loc[f"Treat_x_{y}"], EFFECT if y >= START else 0.0)
               for y in YEARS if y != 2013]
    assert sum(covered) >= len(covered) - 1
    assert _covers(bayes.loc["post_average"], EFFECT)


@pytest.mark.slow
def test_bayesian_mediation_quick_run_covers_the_truth(tmp_path):
    results = _run(tmp_path, _mediation_panel(), "--formula", "y ~ tr + x2 | firm + year",
                   "--model", "mediation", "--mediator", "m", "--quick", "--seed", "3")
    bayes = results[results["source"] == "bayesian"]
    b_column = bayes[bayes["column"] == "3"].set_index("term")
    assert _covers(b_column.loc["indirect_m"], A_PATH * B_PATH)
    assert _covers(b_column.loc["m"], B_PATH)
    assert (tmp_path / "out" / "posterior_fit_m.nc").exists()


def test_fit_panel_from_python_equals_the_command_line(tmp_path):
    from inference import fit_panel

    panel = _mediation_panel()
    cli = _run(tmp_path / "cli", panel, "--formula", "y ~ tr + x2 | firm + year", "--model",
               "mediation", "--mediator", "m", "--bootstrap", "40", "--frequentist-only")
    run = fit_panel(tmp_path / "cli" / "panel.csv", "y ~ tr + x2 | firm + year",
                    tmp_path / "py", model="mediation", mediators=["m"], n_boot=40,
                    frequentist_only=True, progress=lambda _: None)
    ours = run.results.assign(column=run.results["column"].astype(str))
    pd.testing.assert_frame_equal(
        ours[["column", "term", "estimate", "std_error", "ci_low", "ci_high"]],
        cli[["column", "term", "estimate", "std_error", "ci_low", "ci_high"]],
        check_dtype=False)
    assert run.posteriors == {}

"""``python -m inference fit``: formula parsing, input errors, and numbers against pyfixest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from inference.cli import main
from inference.formula import FormulaError, parse_formula


def _simulated_panel(n_units: int = 40, n_years: int = 8, seed: int = 3) -> pd.DataFrame:
    """y = 0.5 x1 - 0.3 x2 + a_i + d_t + e, with a_i correlated with x1."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_years)
    year = np.tile(np.arange(2000, 2000 + n_years), n_units)
    effect = rng.normal(0, 1, n_units)
    x1 = effect[unit] + rng.normal(0, 1, unit.size)
    x2 = rng.normal(0, 1, unit.size)
    y = 0.5 * x1 - 0.3 * x2 + effect[unit] + 0.2 * (year - 2000) + rng.normal(0, 0.5, unit.size)
    return pd.DataFrame({"firm": unit, "year": year, "x1": x1, "x2": x2, "y": y,
                         "region": unit % 4})


def test_parse_formula_two_way_and_one_way():
    two = parse_formula("y ~ x1 + x2 | firm + year")
    assert (two.outcome, two.regressors, two.unit, two.time) == ("y", ("x1", "x2"), "firm",
                                                                 "year")
    one = parse_formula(" y~x1|firm ")
    assert one.effects == ("firm",) and one.time is None


@pytest.mark.parametrize("text, words", [
    ("y x1 | firm", "exactly one '~'"),
    ("y ~ x1 + x2", "'| unit'"),
    ("y ~ log(x1) | firm", "'log(x1)' in the regressors is not a name a formula can hold"),
    ("y ~ x1 + | firm", "empty term"),
    ("y ~ x1 | firm + year + region", "at most two effects"),
    ("y ~ x1 + x1 | firm", "['x1'] appear more than once"),
])
def test_parse_formula_rejects_with_reason(text, words):
    with pytest.raises(FormulaError, match=None) as info:
        parse_formula(text)
    assert words in str(info.value)


@pytest.mark.parametrize("effects, cluster", [("firm + year", None), ("firm", "region")])
def test_fit_frequentist_equals_pyfixest(tmp_path, effects, cluster):
    panel = _simulated_panel()
    data = tmp_path / "panel.csv"
    panel.to_csv(data, index=False)
    args = ["fit", "--data", str(data), "--formula", f"y ~ x1 + x2 | {effects}",
            "--out", str(tmp_path / "out"), "--frequentist-only"]
    if cluster:
        args += ["--cluster", cluster]
    assert main(args) == 0
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(results["table"]) == {"fit"} and set(results["column"].astype(str)) == {"1"}
    peer = pf.feols(f"y ~ x1 + x2 | {effects}", data=panel,
                    vcov={"CRV1": cluster} if cluster else "hetero")
    mine = results[results["source"] == "frequentist"].set_index("term")
    for term in ("x1", "x2"):
        assert mine.loc[term, "estimate"] == pytest.approx(peer.coef()[term], abs=1e-8)
        assert mine.loc[term, "std_error"] == pytest.approx(peer.se()[term], rel=1e-5)
    assert (results["data_label"] == "user data: panel.csv").all()
    assert pd.read_csv(data).equals(panel)


def test_fit_bayesian_agrees_with_within_estimate(tmp_path):
    panel = _simulated_panel(n_units=60)
    data = tmp_path / "panel.csv"
    panel.to_csv(data, index=False)
    out = tmp_path / "out"
    assert main(["fit", "--data", str(data), "--formula", "y ~ x1 + x2 | firm + year",
                 "--out", str(out), "--quick", "--seed", "5"]) == 0
    results = pd.read_csv(out / "results.csv")
    freq = results[results["source"] == "frequentist"].set_index("term")
    bayes = results[results["source"] == "bayesian"].set_index("term")
    for term in ("x1", "x2"):
        gap = abs(bayes.loc[term, "estimate"] - freq.loc[term, "estimate"])
        assert gap < 0.25 * bayes.loc[term, "std_error"]
    assert (out / "posterior_fit.nc").exists() and (out / "index.html").exists()


@pytest.mark.parametrize("mutate, formula, words", [
    (lambda d: d, "y ~ x1 + missing_col | firm + year", "['missing_col']"),
    (lambda d: d.assign(x2=d["x2"].astype(object).where(d.index != 6, "12,5")),
     "y ~ x1 + x2 | firm + year", "column 'x2' must be numeric"),
    (lambda d: pd.concat([d, d.iloc[[3]]]), "y ~ x1 + x2 | firm + year", "duplicate (firm, year)"),
    (lambda d: d, "y ~ x1 x2 | firm", "not a name a formula can hold"),
])
def test_fit_bad_input_names_the_problem(tmp_path, capsys, mutate, formula, words):
    panel = mutate(_simulated_panel())
    data = tmp_path / "panel.csv"
    panel.to_csv(data, index=False)
    before = data.read_bytes()
    code = main(["fit", "--data", str(data), "--formula", formula, "--out",
                 str(tmp_path / "out"), "--frequentist-only"])
    assert code == 2
    assert words in capsys.readouterr().err
    assert data.read_bytes() == before


def test_sampling_flags_override_the_defaults(capsys):
    from inference.cli import build_parser, main
    from inference.runner import RunOptions, sampling_settings

    args = build_parser().parse_args(["run", "zhao2025", "--quick", "--draws", "2000",
                                      "--chains", "6"])
    options = RunOptions(quick=args.quick, draws=args.draws, tune=args.tune, chains=args.chains)
    assert options.sampling == {"draws": 2000, "tune": 300, "chains": 6}
    assert sampling_settings(False) == {"draws": 1000, "tune": 1000, "chains": 4}
    assert sampling_settings(False, tune=3000)["tune"] == 3000
    with pytest.raises(SystemExit):
        main(["run", "zhao2025", "--draws", "0"])
    assert "--draws: 0 must be at least 1" in capsys.readouterr().err


def test_target_accept_flag_reaches_the_sampler_settings(capsys):
    from inference.cli import build_parser, main
    from inference.runner import RunOptions

    args = build_parser().parse_args(["run", "zhao2025", "--target-accept", "0.95"])
    options = RunOptions(target_accept=args.target_accept)
    assert options.sampling == {"draws": 1000, "tune": 1000, "chains": 4, "target_accept": 0.95}
    assert "target_accept" not in RunOptions().sampling
    for bad in ("1.2", "0", "high"):
        with pytest.raises(SystemExit):
            main(["fit", "--data", "x.csv", "--formula", "y ~ x | u", "--out", "o",
                  "--target-accept", bad])
        assert "--target-accept" in capsys.readouterr().err


def test_every_bayesian_fit_takes_target_accept():
    import inspect

    from models.heterogeneity.bayes import fit_bayes_heterogeneity
    from models.iv.bayes import fit_bayes_iv
    from models.panel.bayes import fit_bayes_twfe
    from models.threshold.bayes import fit_bayes_threshold

    for fit in (fit_bayes_twfe, fit_bayes_heterogeneity, fit_bayes_iv, fit_bayes_threshold):
        assert "target_accept" in inspect.signature(fit).parameters, fit.__name__


def test_column_names_in_any_script_are_names(tmp_path):
    """Chinese column names are column names: the formula takes them and the fit equals
    pyfixest on the same data."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"城市": np.repeat(np.arange(30), 6), "年": np.tile(np.arange(6), 30)})
    frame["AI指数"] = rng.normal(size=len(frame))
    frame["创新"] = 0.4 * frame["AI指数"] + rng.normal(size=len(frame))
    data = tmp_path / "panel.csv"
    frame.to_csv(data, index=False, encoding="utf-8")
    assert main(["fit", "--data", str(data), "--formula", "创新 ~ AI指数 | 城市 + 年",
                 "--out", str(tmp_path / "out"), "--frequentist-only"]) == 0
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    ours = results.query("source == 'frequentist' and term == 'AI指数'")["estimate"].iloc[0]
    peer = pf.feols("创新 ~ AI指数 | 城市 + 年", data=frame, vcov="hetero").coef()["AI指数"]
    assert ours == pytest.approx(peer, rel=1e-10)


def test_a_continuous_cluster_column_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"firm": np.repeat(np.arange(30), 4), "year": np.tile(np.arange(4), 30)})
    frame["x1"] = rng.normal(size=len(frame))
    frame["y"] = frame["x1"] + rng.normal(size=len(frame))
    frame["score"] = rng.normal(size=len(frame))
    data = tmp_path / "panel.csv"
    frame.to_csv(data, index=False)
    code = main(["fit", "--data", str(data), "--formula", "y ~ x1 | firm + year", "--out",
                 str(tmp_path / "out"), "--frequentist-only", "--cluster", "score"])
    assert code == 2
    assert "--cluster 'score' has 120 distinct values" in capsys.readouterr().err

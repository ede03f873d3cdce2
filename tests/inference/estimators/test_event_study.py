"""The event-study adapter: Bayesian rows next to the frequentist ones, the path prior chosen
by the command line over the spec, one figure per outcome."""

from __future__ import annotations

import numpy as np
import pytest

from inference.estimators import BAYESIAN, FREQUENTIST, Settings
from inference.estimators.event_study import path_prior_choice
from inference.priors import read_prior_entries
from inference.registry import Spec
from models.bayes.priors import PriorSpecError
from tests.models.event_study.dgp import REFERENCE, TRUE_PATH, simulate_event_panel


def _spec(**options) -> Spec:
    return Spec(study="sim", table="5", column="1", kind="event_study", outcome="y",
                regressors=(), effects=(), vcov="cluster:city", bayes=True, label="simulated",
                options={"treat": "v", "reference": REFERENCE, **options})


def _settings(tmp_path, priors=None) -> Settings:
    return Settings(seed=3, unit="city", time="year", sampling={"draws": 400, "tune": 400,
                                                                 "chains": 2},
                    priors=priors, out_dir=tmp_path, synthetic=True)


def test_command_line_path_prior_wins_over_the_spec(tmp_path):
    spec = _spec(path_prior="rw2(step=0.2)")
    assert path_prior_choice(spec, _settings(tmp_path)).kind == "rw2"
    entries = read_prior_entries(None, ["event_path=rw1(step=0.1)", "sigma=halfnormal(1)"])
    chosen = path_prior_choice(spec, _settings(tmp_path, entries))
    assert (chosen.kind, chosen.step, chosen.source) == ("rw1", 0.1, "user")
    assert path_prior_choice(_spec(), _settings(tmp_path)).kind == "independent"
    with pytest.raises(PriorSpecError, match="Unknown event path prior"):
        read_prior_entries(None, ["event_path=ar1"])


def test_bayesian_rows_sit_next_to_the_frequentist_ones(tmp_path):
    panel = simulate_event_panel(8, n_units=120, likelihood="negbin")
    spec = _spec(likelihoods=["normal"], pretrend_band=0.1)
    settings = _settings(tmp_path)
    frequentist = FREQUENTIST["event_study"](panel, spec, settings).tidy
    estimate = BAYESIAN["event_study"](panel, spec, settings)
    bayes = estimate.tidy.set_index("term")
    coefficient_terms = [t for t in frequentist["term"] if t.startswith("Treat_x_")]
    assert set(coefficient_terms) <= set(bayes.index)
    freq = frequentist.set_index("term")
    # Weakly informative default priors: posterior means within a fifth of an SE of the
    # frequentist estimates on 120 units.
    gap = (bayes.loc[coefficient_terms, "estimate"] - freq.loc[coefficient_terms, "estimate"])
    assert (gap.abs() < 0.2 * freq.loc[coefficient_terms, "std_error"]).all()
    for term in ("pretrend_probability", "post_average", "post_cumulative", "peak_year",
                 "peak_effect", "rm_Mbar_0", "rm_Mbar_0.5", "rm_Mbar_1", "rm_Mbar_2"):
        assert term in bayes.index, term
    assert "within +/-0.1" in bayes.loc["pretrend_probability", "note"]
    post = [f"Treat_x_{y}" for y in TRUE_PATH if y > REFERENCE]
    assert bayes.loc["post_average", "estimate"] == pytest.approx(
        bayes.loc[post, "estimate"].mean(), abs=1e-9)
    # Mbar = 0 leaves the post average alone; larger Mbar widens the set.
    widths = [bayes.loc[f"rm_Mbar_{m}", "ci_high"] - bayes.loc[f"rm_Mbar_{m}", "ci_low"]
              for m in ("0", "0.5", "1", "2")]
    assert np.all(np.diff(widths) > 0)
    assert {"rm_Mbar_0", "rm_Mbar_2"} <= set(frequentist["term"])
    assert list(estimate.fits) == [""]
    assert estimate.figures[0].exists()


def test_frequentist_rows_carry_the_honest_confidence_sets(tmp_path):
    from models.event_study.honest import conditional_cs_delta_rm, flci_delta_sd
    from models.event_study.twfe import fit_event_study

    panel = simulate_event_panel(5, n_units=120)
    spec = _spec(mbar=[0, 1], honest_m=[0, 0.05])
    rows = FREQUENTIST["event_study"](panel, spec, _settings(tmp_path)).tidy.set_index("term")
    assert {"rm_Mbar_0", "rm_Mbar_1", "sd_M_0", "sd_M_0.05"} <= set(rows.index)
    assert "C-LF" in rows.loc["rm_Mbar_1", "note"]
    assert "fixed-length" in rows.loc["sd_M_0", "note"]
    # The rows are the honest sets of the average post effect of the fitted coefficients.
    fit = fit_event_study(panel, "y", "v", reference=REFERENCE)
    coefs = fit.table[fit.table["term"].str.startswith("Treat_x_")]
    years = np.array([int(t.removeprefix("Treat_x_")) for t in coefs["term"]])
    n_pre, n_post = int((years < REFERENCE).sum()), int((years > REFERENCE).sum())
    beta, l_vec = coefs["estimate"].to_numpy(), np.full(n_post, 1 / n_post)
    sd = flci_delta_sd(beta, fit.cov, n_pre, n_post, 0.05, l_vec)
    assert rows.loc["sd_M_0.05", ["ci_low", "ci_high"]].tolist() == pytest.approx(
        [sd["lb"], sd["ub"]])
    rm = conditional_cs_delta_rm(beta, fit.cov, n_pre, n_post, 1.0, l_vec, grid_points=201,
                                 grid_lb=-3, grid_ub=3)
    assert rows.loc["rm_Mbar_1", ["ci_low", "ci_high"]].tolist() == pytest.approx(
        [rm["lb"], rm["ub"]], abs=1e-3)
    widths = rows.loc[["rm_Mbar_0", "rm_Mbar_1"], "ci_high"] - rows.loc[
        ["rm_Mbar_0", "rm_Mbar_1"], "ci_low"]
    assert widths.iloc[1] > widths.iloc[0]

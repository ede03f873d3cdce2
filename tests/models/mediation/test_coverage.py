"""Slow tier: frequentist coverage of the Bayesian mediation model's 94% HDIs, on simulated
panels with known truth and on the shipped SYNTHETIC panels.

Run with ``python -m pytest -q -s -m slow tests/models/mediation/test_coverage.py`` (``-s``
prints the coverage shares). The model is compiled once by nutpie (30-80 s) and re-used for
every simulated dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models.bayes.summary import HDI_PROB
from models.mediation.bayes import fit_bayes_mediation
from tests.models.mediation.test_bayes import TRUE, simulate_panel

N_DATASETS = 60
FILES = Path(__file__).resolve().parents[3] / "data" / "files"


def _binomial_band(n: int, p: float, level: float = 0.999) -> tuple[float, float]:
    tail = (1 - level) / 2
    return stats.binom.ppf(tail, n, p) / n, stats.binom.ppf(1 - tail, n, p) / n


@pytest.mark.slow
def test_hdi_coverage_of_the_indirect_effects_is_nominal():
    """60 panels (120 units x 6 years, x correlated with the unit effect, two mediators with
    correlated errors), default priors: the share of 94% HDIs covering each true indirect
    effect a_k b_k, and of the total effect, lies in the 99.9% binomial band around 0.94."""
    truth = {"indirect_m1": TRUE["a"][0] * TRUE["b"][0],
             "indirect_m2": TRUE["a"][1] * TRUE["b"][1],
             "total": TRUE["c"] + sum(a * b for a, b in zip(TRUE["a"], TRUE["b"], strict=True))}
    covered = {term: [] for term in truth}
    for seed in range(N_DATASETS):
        panel = simulate_panel(seed=1000 + seed, n_units=120, n_years=6)
        fit = fit_bayes_mediation(panel, "y", "x", ["m1", "m2"], ["w"], "unit", "year",
                                  draws=500, tune=500, chains=2, seed=seed)
        table = fit.tidy(auxiliary=False).set_index("term")
        for term, value in truth.items():
            covered[term].append(table.loc[term, "ci_low"] <= value <= table.loc[term, "ci_high"])
    low, high = _binomial_band(N_DATASETS, HDI_PROB)
    for term, hits in covered.items():
        share = float(np.mean(hits))
        print(f"{term}: {share:.3f} of {N_DATASETS} {HDI_PROB:.0%} HDIs cover the truth "
              f"{truth[term]:.4f} (nominal {HDI_PROB:.2f}, 99.9% binomial band "
              f"[{low:.3f}, {high:.3f}])")
        assert low <= share <= high, term


def _shipped(study: str) -> tuple[pd.DataFrame, dict]:
    frame = pd.read_csv(FILES / study / "panel.csv")
    if study == "zhu2025":
        from data.measures.shift_share import add_measures

        frame = add_measures(frame)
    return frame, json.loads((FILES / study / "truth.json").read_text())


SHIPPED = {
    "zhao2025": ("Inn", "AI", ["Va", "Ind"], ["Eco", "Huc", "Edu", "Fis", "Gov"]),
    "agglo2025": ("Inn", "LQ", ["related_variety", "unrelated_variety"],
                  ["lnPGDP", "Ind", "Sci", "Hum", "Open", "Fin"]),
    "zhu2025": ("ln_gdp", "m_firms", ["ln_gdp_sec", "ln_emp_sec"],
                ["ln_pop", "ln_emp", "ln_rd_staff"]),
}


def _true_indirect(study: str, truth: dict, mediator: str) -> float:
    mediation = truth["mediation"]
    if study == "zhao2025":
        return mediation[f"indirect_{mediator}"]
    return mediation["indirect"][mediator]


@pytest.fixture(scope="module")
def shipped_fits():
    fits = {}
    for study, (outcome, treatment, mediators, controls) in SHIPPED.items():
        frame, _ = _shipped(study)
        fits[study] = fit_bayes_mediation(frame, outcome, treatment, mediators, controls,
                                          "city", "year", seed=1)
    return fits


CASES = [(s, m) for s, (_, _, mediators, _) in SHIPPED.items() for m in mediators]
KNOWN_MISS = pytest.mark.xfail(strict=True, reason=(
    "b of ln_gdp_sec on the shipped zhu2025 panel is -0.027 (within OLS, CR1 se 0.013; "
    "noise-free b -0.005): a two-sd draw, so the HDI of the indirect effect "
    "(-0.0077, -0.0010) misses the true 0; one miss in six 94% intervals is expected 31% of "
    "the time"))


@pytest.mark.slow
@pytest.mark.parametrize(("study", "mediator"), [
    pytest.param(s, m, marks=KNOWN_MISS) if (s, m) == ("zhu2025", "ln_gdp_sec") else (s, m)
    for s, m in CASES])
def test_hdis_cover_the_true_indirect_effects_of_the_shipped_panels(shipped_fits, study,
                                                                   mediator):
    """Both mediators of each study in one model, default priors and sampler settings."""
    fit = shipped_fits[study]
    _, truth = _shipped(study)
    value = _true_indirect(study, truth, mediator)
    row = fit.tidy(auxiliary=False).set_index("term").loc[f"indirect_{mediator}"]
    print(f"{study} indirect_{mediator}: mean {row['estimate']:.4f}, 94% HDI "
          f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}], truth {value:.4f}")
    assert fit.converged, fit.convergence_problems()
    assert row["ci_low"] <= value <= row["ci_high"]

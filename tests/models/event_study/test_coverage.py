"""Slow tier: calibration of the Bayesian event study.

* Coverage study: 50 simulated panels from :mod:`tests.models.event_study.dgp` (known event
  path); the share of 94% HDIs covering each true coefficient is printed against the nominal
  94% and must lie inside the central 99.5% binomial band of 50 trials at p = 0.94.
* The shipped SYNTHETIC zhu2025 panel: the 94% HDIs of the normal model on ln(1 + count)
  against the true ln(1 + count) path (``path_ln1p`` of truth.json, the TWFE projection of
  E[ln(1 + Y)]) and of the negative binomial model against the true log-mean path
  (``theta_log_mean``), four count outcomes x ten years each; the number of misses must lie
  inside the 99.5% binomial band of 40 trials at p = 0.06 per likelihood.

Run: ``python -m pytest -q -s -m slow tests/models/event_study/test_coverage.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from models.event_study.bayes import fit_bayes_event_study
from models.event_study.twfe import fit_event_study
from tests.models.event_study.dgp import REFERENCE, TRUE_PATH, simulate_event_panel

N_DATASETS = 50
NOMINAL = 0.94
FILES = Path(__file__).resolve().parents[3] / "data" / "files" / "zhu2025"
COUNTS = ["ai_entries", "ai_exits", "ai_inv_apps", "ai_inv_grants"]
CONTROLS = ["ln_pop", "ln_emp", "ln_rd_staff"]


def _band(n: int, p: float) -> tuple[int, int]:
    return int(stats.binom.ppf(0.0025, n, p)), int(stats.binom.ppf(0.9975, n, p))


@pytest.mark.slow
def test_hdi_coverage_on_simulated_panels():
    terms = {f"Treat_x_{y}": b for y, b in TRUE_PATH.items()}
    covered = {term: 0 for term in terms}
    # Peer on the same panels: the frequentist estimate +/- z_0.97 iid SE (a 94% interval).
    peer = {term: 0 for term in terms}
    z = stats.norm.ppf(0.5 + NOMINAL / 2)
    for seed in range(N_DATASETS):
        panel = simulate_event_panel(1000 + seed, n_units=100)
        fit = fit_bayes_event_study(panel, "y", "v", ["x"], reference=REFERENCE,
                                    transform="none", draws=500, tune=500, chains=2, seed=seed)
        tidy = fit.tidy().set_index("term")
        frequentist = fit_event_study(panel, "y", "v", ["x"], reference=REFERENCE, vcov="iid",
                                      transform="none").tidy().set_index("term")
        for term, truth in terms.items():
            covered[term] += int(tidy.loc[term, "ci_low"] <= truth <= tidy.loc[term, "ci_high"])
            row = frequentist.loc[term]
            peer[term] += int(abs(row["estimate"] - truth) <= z * row["std_error"])
    low, high = _band(N_DATASETS, NOMINAL)
    print(f"\n94% HDI coverage over {N_DATASETS} simulated panels (nominal 0.94; "
          f"99.5% binomial band {low / N_DATASETS:.2f}-{high / N_DATASETS:.2f}):")
    for term, count in covered.items():
        print(f"  {term}: {count / N_DATASETS:.2f} (frequentist 94% interval on the same "
              f"panels: {peer[term] / N_DATASETS:.2f})")
    total = sum(covered.values()) / (N_DATASETS * len(covered))
    print(f"  all coefficients: {total:.3f} (frequentist: "
          f"{sum(peer.values()) / (N_DATASETS * len(peer)):.3f})")
    assert all(low <= count <= high for count in covered.values()), covered


@pytest.mark.slow
@pytest.mark.parametrize("likelihood", ["normal", "negbin"])
def test_hdis_cover_the_true_paths_of_the_shipped_panel(likelihood):
    panel = pd.read_csv(FILES / "panel.csv")
    truth = json.loads((FILES / "truth.json").read_text())["event_study"]
    key = "path_ln1p" if likelihood == "normal" else "theta_log_mean"
    misses, trials = [], 0
    for outcome in COUNTS:
        fit = fit_bayes_event_study(panel, outcome, "sec_share_2015", CONTROLS,
                                    likelihood=likelihood, draws=1000, tune=1000, chains=2,
                                    seed=7)
        assert fit.converged, fit.convergence_problems()
        tidy = fit.tidy().set_index("term")
        for year, value in truth[outcome][key].items():
            row = tidy.loc[f"Treat_x_{year}"]
            trials += 1
            if not row["ci_low"] <= value <= row["ci_high"]:
                misses.append(f"{outcome} {year}: truth {value:.3f} outside "
                              f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]")
    low, high = _band(trials, 1 - NOMINAL)
    print(f"\n{likelihood}: {trials - len(misses)} of {trials} true coefficients inside the "
          f"94% HDI ({1 - len(misses) / trials:.2f}; misses allowed {low}-{high})")
    for line in misses:
        print("  " + line)
    assert len(misses) <= high

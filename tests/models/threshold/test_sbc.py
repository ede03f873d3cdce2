"""Simulation-based calibration (Talts et al. 2018) of the single-threshold model, with the
family of :mod:`models.threshold.calibration`: covariates, threshold variable and grid fixed,
(gamma, slopes, sigma) from the prior, y from the model, and the PyMC model compiled once and
reused through its shared data. The rank of each true value among the posterior draws must be
uniform and the 94% HDI must cover the truth 94% of the time (at least 94% for the threshold,
whose draws lie on the grid)."""

from __future__ import annotations

import numpy as np
import pytest

from models.bayes.calibration import HDI_PROB, RANKED_DRAWS, hdi_covers, rank_of, thin
from models.bayes.uniformity import chisquare_p, coverage_interval, coverage_p, ecdf_test
from models.threshold.calibration import ThresholdCalibration

N_SIMULATIONS = 100


@pytest.mark.slow
def test_single_threshold_sbc():
    family = ThresholdCalibration(quick=False)
    ranks = {name: [] for name in family.parameters}
    covered = dict.fromkeys(family.parameters, 0)
    not_converged = 0
    for i in range(N_SIMULATIONS):
        rng = np.random.default_rng(np.random.SeedSequence([2024, i]))
        simulation = family.simulate(rng)
        fit = family.fit(simulation, int(rng.integers(2**31 - 1)), family.SAMPLING[False])
        if fit.problems:
            not_converged += 1
            continue
        for name in family.parameters:
            truth = simulation.truth[name]
            ranks[name].append(rank_of(truth, thin(fit.draws[name]), rng))
            covered[name] += hdi_covers(truth, fit.draws[name])
    assert not_converged <= N_SIMULATIONS // 10
    n = N_SIMULATIONS - not_converged
    for name, values in ranks.items():
        chi_p = chisquare_p(np.asarray(values), RANKED_DRAWS)
        ecdf = ecdf_test(np.asarray(values), RANKED_DRAWS)
        low, high = coverage_interval(covered[name], n, level=0.99)
        print(f"SBC {name}: chi-square p = {chi_p:.3f}, ECDF p = {ecdf.p:.3f}, "
              f"HDI coverage {covered[name] / n:.2f} [{low:.2f}, {high:.2f}]")
        assert chi_p > 0.01 and ecdf.p > 0.01, name
        # The threshold's HDI holds whole grid points: at least 94% coverage when calibrated.
        assert coverage_p(covered[name], n, HDI_PROB, name in family.discrete) > 0.01, name

"""Simulation-based calibration (Talts et al. 2018) of the single-threshold model.

Covariates, threshold variable and grid are held fixed; each simulation draws (gamma, slopes,
sigma) from the prior, y from the model (unit effects plus iid normal errors: under
``demean="all"`` the model's likelihood is then the exact density of the demeaned data), and
fits the PyMC model with nutpie. The compiled model is re-used across simulations through its
shared data (``with_data``), so every fit is the same PyMC model as
:func:`models.threshold.bayes.fit_bayes_threshold` builds. The rank of the true value among
the posterior draws must be uniform for gamma and for a regime slope.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.threshold.data import prepare_threshold_data, threshold_log_prior
from models.threshold.likelihood import profile_fit
from models.threshold.model import build_threshold_model, shared_values, whitening
from models.threshold.posterior import recover_thresholds
from models.threshold.priors import resolve_slope_priors

N_SIMULATIONS = 120
N_RANK_DRAWS = 99
N_BINS = 10


def fixed_panel(rng):
    import pandas as pd

    n_units, n_periods = 30, 6
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(n_periods), n_units)
    effect = rng.normal(size=n_units)[unit]
    frame = pd.DataFrame(dict(unit=unit, year=period, q=rng.normal(size=unit.size) + 0.3 * effect,
                              x=rng.normal(size=unit.size) + 0.5 * effect,
                              f=rng.normal(size=unit.size), y=rng.normal(size=unit.size)))
    return frame, effect


def rank_of(truth: float, draws: np.ndarray, rng) -> int:
    """Rank of the truth among the draws, ties broken at random (discrete gamma)."""
    below = int(np.sum(draws < truth))
    ties = int(np.sum(draws == truth))
    return below + int(rng.integers(0, ties + 1))


@pytest.mark.slow
def test_single_threshold_sbc():
    import nutpie

    rng = np.random.default_rng(2024)
    frame, effect = fixed_panel(rng)
    priors = {"slope": "normal(0, 1)", "sigma": "halfnormal(1)"}

    def data_for(y):
        return prepare_threshold_data(frame.assign(y=y), y="y", regime="x", threshold="q",
                                         fixed=["f"], unit="unit", period="year", demean="all",
                                         grid_size=20, trim=0.1)

    data = data_for(frame["y"].to_numpy())
    log_prior = threshold_log_prior(data.grid, 1)
    resolved = resolve_slope_priors(priors, data, 1)
    profile = profile_fit(data, 1, log_prior)
    centre, chol = whitening(profile)
    model = build_threshold_model(data, 1, resolved, log_prior, centre, chol, shared=True)
    compiled = nutpie.compile_pymc_model(model, backend="numba")

    # The compiled log density must be the model's: check it on the first data set.
    point = {"slope_white": np.zeros(centre.size), "sigma_log__": np.array(0.0)}
    reference = model.compile_logp(jacobian=True)(point)
    assert np.isfinite(reference)

    x, f, q = (frame[c].to_numpy() for c in ("x", "f", "q"))
    ranks = {"gamma_1": [], "x_regime1": []}
    for _ in range(N_SIMULATIONS):
        gamma_index = int(rng.integers(0, data.n_candidates))
        gamma = data.grid[gamma_index]
        theta = rng.normal(0.0, 1.0, size=3)                      # f, x_regime1, x_regime2
        sigma = abs(rng.normal(0.0, 1.0))
        slope = np.where(q < gamma, theta[1], theta[2])
        y = effect + theta[0] * f + slope * x + sigma * rng.normal(size=q.size)
        simulated = data_for(y)
        fit = profile_fit(simulated, 1, log_prior)
        centre, chol = whitening(fit)
        updated = compiled.with_data(**shared_values(simulated, log_prior, centre, chol, 1))
        idata = nutpie.sample(updated, draws=200, tune=300, chains=2,
                              seed=int(rng.integers(2**31)), progress_bar=False,
                              save_warmup=False)
        draws = idata.posterior["slope"].values.reshape(-1, 3)
        sigmas = idata.posterior["sigma"].values.reshape(-1)
        recovered = recover_thresholds(draws, sigmas, simulated, 1, log_prior, rng)
        keep = np.linspace(0, draws.shape[0] - 1, N_RANK_DRAWS).astype(int)
        ranks["gamma_1"].append(rank_of(gamma, simulated.grid[recovered["index"][keep, 0]],
                                        rng))
        ranks["x_regime1"].append(rank_of(theta[1], draws[keep, 1], rng))

    for name, values in ranks.items():
        counts = np.bincount(np.asarray(values) * N_BINS // (N_RANK_DRAWS + 1),
                             minlength=N_BINS)
        statistic, p_value = stats.chisquare(counts)
        print(f"SBC {name}: chi-square {statistic:.2f} on {N_BINS - 1} df, p = {p_value:.3f}, "
              f"counts {counts.tolist()}")
        assert p_value > 0.01, (name, counts)

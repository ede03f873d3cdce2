"""Posterior predictive replicates shared by every family, and the checks read off them.

A family draws replicates of its outcome(s) from its own likelihood at a thinned subset of the
posterior draws (:func:`thinned_posterior`): a predictive check compares the distribution of
the data with a few dozen replicates, and one replicate per draw would add a value per draw
and observation to every saved posterior (as large as the log-likelihood). They are stored as
float32 (int32 for counts) with the data in ``observed_data`` (:func:`store_replicates`).

Families that integrate flat-prior unit and year effects out of the likelihood (IV,
mediation, the threshold models) draw them back from their exact conditional posterior first
(:func:`flat_effects`), so the replicates are of the outcome in levels, effects included.
Not knowing the effects costs variance: with a flat prior the replicates' variance exceeds the
data's by about 2 sigma^2 r / n (r the rank of the effects, n the observations), so a check
of the sd leans towards p-values near 1 when the errors are large beside the effects and
regressors and each unit has few periods.

:func:`ppc_table` turns the stored replicates into posterior predictive p-values,
P(T(y_rep) >= T(y)), for the mean, sd, skewness and kurtosis of every variable, and for counts
the share of zeros and the variance-to-mean ratio.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

PREDICTIVE_DRAWS = 100
# A p-value this close to 0 or 1 says the replicates rarely reach the data's value.
EXTREME_P = 0.025


def thinned_posterior(posterior, n_draws: int = PREDICTIVE_DRAWS):
    """The posterior at about ``n_draws`` draws (at least one per chain), spread evenly over
    each chain's draws."""
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    per_chain = max(1, min(draws, -(-n_draws // chains)))
    picked = np.unique(np.linspace(0, draws - 1, per_chain).round().astype(int))
    return posterior.isel(draw=picked)


def flat_effects(residual: np.ndarray, noise: np.ndarray, unit_idx: np.ndarray,
                 time_idx: np.ndarray | None) -> np.ndarray:
    """One exact draw of flat-prior unit (and year) effects for each draw of the parameters.

    For e_it = y_it - x_it' b - a_i - d_t with errors iid over observations, covariance Sigma
    across equations and a flat prior on every equation's effects,
    D A | b, Sigma, y ~ N(P_D r, P_D (x) Sigma), with r = y - x' b the residual before the
    effects and P_D the projection on the unit and year indicators; so D A = P_D (r + e),
    e a fresh error draw of covariance Sigma. ``residual`` and ``noise`` are (..., n, q)
    arrays (observations, equations); the result, of the same shape, is each observation's
    unit plus year effect.
    """
    from models.panel.design import demean

    total = np.asarray(residual, dtype=float) + noise
    obs_first = np.moveaxis(total, -2, 0)
    columns = obs_first.reshape(obs_first.shape[0], -1)
    effects = columns - demean(columns, unit_idx, time_idx)
    return np.moveaxis(effects.reshape(obs_first.shape), 0, -2)


def store_replicates(idata, subset, replicates: Mapping[str, np.ndarray],
                     observed: Mapping[str, np.ndarray] | None = None,
                     counts: bool = False) -> None:
    """Add ``posterior_predictive`` (one (chain, draw, obs) variable per entry of
    ``replicates``, at the draws of ``subset``) to ``idata``; ``observed`` replaces
    ``observed_data`` with the data the replicates are of (same names, same rows). Counts are
    stored as integers so that ``arviz.plot_ppc`` draws both as counts."""
    import xarray as xr

    dtype = np.int32 if counts else np.float32
    first = next(iter(replicates.values()))
    obs = np.arange(first.shape[-1])
    data = {name: (("chain", "draw", "obs"), np.asarray(values).astype(dtype))
            for name, values in replicates.items()}
    if "posterior_predictive" in idata.groups():
        del idata.posterior_predictive
    idata.add_groups({"posterior_predictive": xr.Dataset(
        data, coords={"chain": subset.chain, "draw": subset.draw, "obs": obs})})
    if observed is not None:
        if "observed_data" in idata.groups():
            del idata.observed_data
        idata.add_groups({"observed_data": xr.Dataset(
            {name: ("obs", np.asarray(values).astype(np.int64 if counts else float))
             for name, values in observed.items()},
            coords={"obs": obs})})


def _moment_ratios(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Skewness and excess kurtosis along the last axis."""
    centred = values - values.mean(axis=-1, keepdims=True)
    # Products, not powers: numpy's ** 3 and ** 4 call pow per element (most of the cost on
    # 4,000 replicates of 3,252 rows).
    squared = centred * centred
    variance = squared.mean(axis=-1)
    third = (squared * centred).mean(axis=-1)
    squared *= squared
    with np.errstate(invalid="ignore", divide="ignore"):
        return third / variance**1.5, squared.mean(axis=-1) / variance**2 - 3.0


def is_count(values: np.ndarray) -> bool:
    """Whether every value is a non-negative integer."""
    values = np.asarray(values, dtype=float)
    return bool(values.size) and bool(np.all(values >= 0) and np.all(values == np.round(values)))


def ppc_statistics(values: np.ndarray, counts: bool) -> dict[str, np.ndarray]:
    """T(y) along the last axis: mean, sd, skewness and excess kurtosis (tails heavier than
    the normal's when positive); for counts also the share of zeros and the variance-to-mean
    ratio (1 for Poisson counts, above 1 when overdispersed)."""
    values = np.asarray(values, dtype=float)
    skewness, kurtosis = _moment_ratios(values)
    out = {"mean": values.mean(axis=-1), "sd": values.std(axis=-1), "skewness": skewness,
           "kurtosis": kurtosis}
    if counts:
        mean = out["mean"]
        out["share_zero"] = (values == 0).mean(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["variance/mean"] = values.var(axis=-1) / mean
    return out


def ppc_table(idata) -> pd.DataFrame:
    """Posterior predictive p-values of every replicated variable of ``idata``.

    One row per (variable, statistic) of :func:`ppc_statistics`: ``observed`` T(y), the mean
    and sd of T(y_rep) over the replicates, ``p_value`` = P(T(y_rep) >= T(y)) (ties count
    half), and ``extreme`` when it is within :data:`EXTREME_P` of 0 or 1. Empty without a
    ``posterior_predictive`` group."""
    columns = ["variable", "statistic", "observed", "replicated_mean", "replicated_sd",
               "p_value", "extreme", "n_replicates"]
    if "posterior_predictive" not in idata.groups() or "observed_data" not in idata.groups():
        return pd.DataFrame(columns=columns)
    rows = []
    for name, draws in idata.posterior_predictive.data_vars.items():
        if name not in idata.observed_data:
            continue
        observed = idata.observed_data[name].values.reshape(-1)
        replicated = draws.values.reshape(-1, observed.size)
        counts = draws.dtype.kind == "i" or is_count(observed)
        t_obs = ppc_statistics(observed, counts)
        t_rep = ppc_statistics(replicated, counts)
        for statistic, value in t_obs.items():
            reps = t_rep[statistic]
            p = float(np.mean(reps > value) + 0.5 * np.mean(reps == value))
            rows.append({"variable": str(name), "statistic": statistic,
                         "observed": float(value), "replicated_mean": float(np.mean(reps)),
                         "replicated_sd": float(np.std(reps)), "p_value": p,
                         "extreme": bool(min(p, 1 - p) < EXTREME_P),
                         "n_replicates": int(reps.size)})
    return pd.DataFrame(rows, columns=columns)

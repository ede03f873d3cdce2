"""Shared pieces of the posterior predictive tests: a posterior that sits at known parameter
values, and the two verdicts a check must give (replicates match the data; a statistic is
flagged)."""

from __future__ import annotations

import numpy as np

from models.bayes.predictive import ppc_table

CHAINS, DRAWS = 4, 25


def point_posterior(values: dict, coords: dict | None = None, dims: dict | None = None):
    """InferenceData whose posterior repeats ``values`` (name -> scalar or array) at every
    draw of :data:`CHAINS` x :data:`DRAWS`: replicates drawn from it are draws from the
    likelihood at those values."""
    import arviz as az

    posterior = {name: np.broadcast_to(np.asarray(value, dtype=float),
                                       (CHAINS, DRAWS) + np.shape(value)).copy()
                 for name, value in values.items()}
    return az.from_dict(posterior=posterior, coords=coords or {}, dims=dims or {})


def flat_effects_excess(error_variance: float, fe_rank: int, n_obs: int) -> float:
    """How much the replicates' variance exceeds the data's in expectation when the unit
    and year effects have a flat prior: the data hold (n - r) sigma^2 of error about the
    fitted effects, a replicate (n + r) sigma^2 (new errors plus the effects' posterior
    spread), so 2 r sigma^2 / n per observation."""
    return 2.0 * fe_rank * error_variance / n_obs


def assert_replicates_match(idata, variable: str, statistics=("mean", "sd"),
                            excess_variance: float = 0.0) -> None:
    """The replicates' statistics agree with the data's within Monte Carlo error: the
    observed value lies within four sd of the replicated values' average, and the posterior
    predictive p-value is not extreme. ``excess_variance`` (:func:`flat_effects_excess`) is
    added to the observed variance before the sd is compared (its p-value is then not
    checked: the excess is known, not noise)."""
    table = ppc_table(idata).set_index(["variable", "statistic"])
    for statistic in statistics:
        row = table.loc[(variable, statistic)]
        target = row["observed"]
        if statistic == "sd" and excess_variance:
            target = np.sqrt(target**2 + excess_variance)
        gap = abs(row["replicated_mean"] - target)
        assert gap <= 4 * row["replicated_sd"] + 1e-12, (variable, statistic, target, dict(row))
        if not (statistic == "sd" and excess_variance):
            assert 0.005 < row["p_value"] < 0.995, (variable, statistic, dict(row))


def assert_flagged(idata, variable: str, statistic: str) -> float:
    """The check flags ``statistic`` of ``variable``: its p-value is within 0.025 of 0 or 1.
    Returns the p-value."""
    table = ppc_table(idata).set_index(["variable", "statistic"])
    row = table.loc[(variable, statistic)]
    assert row["extreme"], (variable, statistic, dict(row))
    return float(row["p_value"])

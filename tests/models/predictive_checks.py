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


def assert_replicates_match(idata, variable: str, statistics=("mean", "sd")) -> None:
    """The replicates' mean and sd agree with the data's within Monte Carlo error: the
    observed value lies within four sd of the replicated values' average, and the posterior
    predictive p-value is not extreme."""
    table = ppc_table(idata).set_index(["variable", "statistic"])
    for statistic in statistics:
        row = table.loc[(variable, statistic)]
        gap = abs(row["replicated_mean"] - row["observed"])
        assert gap <= 4 * row["replicated_sd"] + 1e-12, (variable, statistic, dict(row))
        assert 0.005 < row["p_value"] < 0.995, (variable, statistic, dict(row))


def assert_flagged(idata, variable: str, statistic: str) -> float:
    """The check flags ``statistic`` of ``variable``: its p-value is within 0.025 of 0 or 1.
    Returns the p-value."""
    table = ppc_table(idata).set_index(["variable", "statistic"])
    row = table.loc[(variable, statistic)]
    assert row["extreme"], (variable, statistic, dict(row))
    return float(row["p_value"])

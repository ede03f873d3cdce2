"""One row of a posterior summary table: the numbers every Bayesian fit reports per term."""

from __future__ import annotations

import numpy as np

HDI_PROB = 0.94


def summary_row(term: str, draws: np.ndarray, n_obs: int, divergences: int,
                hdi_prob: float = HDI_PROB) -> dict:
    """Posterior mean and sd, the ``hdi_prob`` highest-density interval, P(> 0), split R-hat
    and bulk ESS of ``draws`` (chain, draw), with the fit's observation and divergence counts.
    """
    import arviz as az

    draws = np.asarray(draws)
    hdi = az.hdi(draws.reshape(-1), hdi_prob=hdi_prob)
    return {
        "term": term,
        "estimate": float(draws.mean()),
        "std_error": float(draws.std(ddof=1)),
        "ci_low": float(hdi[0]),
        "ci_high": float(hdi[1]),
        "prob_positive": float((draws > 0).mean()),
        "r_hat": float(az.rhat(draws)),
        "ess_bulk": float(az.ess(draws, method="bulk")),
        "n_obs": int(n_obs),
        "divergences": int(divergences),
    }

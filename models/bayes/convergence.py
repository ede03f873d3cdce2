"""Convergence checks of a posterior in words: the thresholds every fit in the project uses."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

RHAT_MAX = 1.01
ESS_MIN = 400
# Energy Bayesian fraction of missing information below which a chain's momentum resampling
# cannot explore the energy distribution (Betancourt 2016, arXiv:1604.00695; Stan warns at 0.3).
BFMI_MIN = 0.3


def convergence_messages(rows: Iterable[tuple[str, float, float]], divergences: int,
                         bfmi: Iterable[float] = ()) -> list[str]:
    """Plain-language failures for ``(term, r_hat, ess_bulk)`` rows, a divergence count and
    the E-BFMI of each chain.

    A term fails when r_hat > :data:`RHAT_MAX` or bulk ESS < :data:`ESS_MIN` (or either is not
    finite); any divergence, or a chain with E-BFMI below :data:`BFMI_MIN`, fails the whole fit.
    Empty when everything passes.
    """
    problems = []
    for term, r_hat, ess_bulk in rows:
        if not np.isfinite(r_hat):
            problems.append(
                f"r_hat of {term} is undefined (one chain, or draws without "
                "variation): whether the sampler converged is unchecked; run at least two "
                "chains.")
        elif r_hat > RHAT_MAX:
            problems.append(
                f"r_hat of {term} is {r_hat:.3f} (above {RHAT_MAX}): the chains "
                "disagree, so the posterior is not yet explored; run more tuning and draws.")
        if not np.isfinite(ess_bulk) or ess_bulk < ESS_MIN:
            problems.append(
                f"bulk ESS of {term} is {ess_bulk:.0f} (below {ESS_MIN}): too few "
                "effective draws for stable means and intervals; run more draws.")
    low = [(chain, value) for chain, value in enumerate(bfmi) if value < BFMI_MIN]
    if low:
        listed = ", ".join(f"chain {chain} {value:.2f}" for chain, value in low)
        problems.append(
            f"E-BFMI below {BFMI_MIN} ({listed}): the sampler explores the energy "
            "distribution poorly (heavy tails or a funnel), so the posterior may be "
            "incompletely explored; reparametrise or tune longer.")
    if divergences:
        problems.append(
            f"{divergences} divergent transition(s): the sampler met curvature it "
            "could not follow and the posterior may be biased; raise target_accept or "
            "reparametrise.")
    return problems


class ConvergenceChecked:
    """The convergence interface of every fit: ``convergence_problems()`` and ``converged``.

    A fit provides ``divergences`` and either ``tidy(auxiliary=True)`` with term, r_hat and
    ess_bulk columns, or its own :meth:`convergence_rows` (to rename or leave out terms).
    """

    def convergence_rows(self) -> Iterable[tuple[str, float, float]]:
        """(term, r_hat, bulk ESS) of every quantity the checks cover."""
        table = self.tidy(auxiliary=True)
        return zip(table["term"], table["r_hat"], table["ess_bulk"], strict=True)

    def bfmi(self) -> list[float]:
        """E-BFMI of each chain, from the sampler's energy (empty when it was not stored)."""
        idata = getattr(self, "idata", None)
        stats = getattr(idata, "sample_stats", None)
        if stats is None or "energy" not in stats:
            return []
        import arviz as az

        return [float(v) for v in np.atleast_1d(az.bfmi(np.asarray(stats["energy"].values,
                                                                   dtype=float)))]

    def convergence_problems(self) -> list[str]:
        """Plain-language descriptions of failed checks (:func:`convergence_messages`); empty
        when r_hat <= 1.01 and bulk ESS >= 400 for every covered term, nothing diverged and
        every chain's E-BFMI is at least 0.3."""
        return convergence_messages(self.convergence_rows(), self.divergences, self.bfmi())

    @property
    def converged(self) -> bool:
        """Whether every convergence check passed."""
        return not self.convergence_problems()

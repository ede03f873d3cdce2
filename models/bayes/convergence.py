"""Convergence checks of a posterior in words: the thresholds every fit in the project uses."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

RHAT_MAX = 1.01
ESS_MIN = 400


def convergence_messages(rows: Iterable[tuple[str, float, float]], divergences: int) -> list[str]:
    """Plain-language failures for ``(term, r_hat, ess_bulk)`` rows and a divergence count.

    A term fails when r_hat > :data:`RHAT_MAX` or bulk ESS < :data:`ESS_MIN` (or either is not
    finite); any divergence fails the whole fit. Empty when everything passes.
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

    def convergence_problems(self) -> list[str]:
        """Plain-language descriptions of failed checks (:func:`convergence_messages`); empty
        when r_hat <= 1.01 and bulk ESS >= 400 for every covered term and nothing diverged."""
        return convergence_messages(self.convergence_rows(), self.divergences)

    @property
    def converged(self) -> bool:
        """Whether every convergence check passed."""
        return not self.convergence_problems()

"""The simulation-based calibration loop the family tests share (Talts et al. 2018).

Each simulation draws the truth from the family's priors, fits the family's model, and ranks
each true value among ``N_RANK_DRAWS`` evenly thinned posterior draws; a calibrated model
gives uniform ranks (checked by a chi-square test on ``N_BINS`` bins) and 94% HDIs that hold
the truth in 94% of simulations (checked against the binomial interval). Fits that fail the
family's convergence checks are counted and left out of the ranks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

N_RANK_DRAWS = 99
N_BINS = 10
HDI_PROB = 0.94


@dataclass
class SbcResult:
    """Ranks (0..N_RANK_DRAWS) and HDI hits per parameter, over the converged fits."""

    ranks: dict[str, list[int]]
    covered: dict[str, list[bool]]
    failed: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0

    def p_value(self, name: str) -> float:
        """Chi-square uniformity p-value of the ranks of ``name``."""
        return float(stats.chisquare(self.counts(name)).pvalue)

    def counts(self, name: str) -> np.ndarray:
        ranks = np.asarray(self.ranks[name])
        return np.bincount(ranks * N_BINS // (N_RANK_DRAWS + 1), minlength=N_BINS)

    def coverage_interval(self, name: str, level: float = 0.99) -> tuple[float, float]:
        """The ``level`` binomial interval of the number of HDIs that hold the truth."""
        low, high = stats.binom.interval(level, len(self.covered[name]), HDI_PROB)
        return float(low), float(high)

    def report(self) -> str:
        lines = [f"{len(self.failed)} unconverged fit(s); {self.seconds:.0f} s"]
        for name in self.ranks:
            hits = int(np.sum(self.covered[name]))
            low, high = self.coverage_interval(name)
            lines.append(f"{name}: chi-square p = {self.p_value(name):.3f}, counts "
                         f"{self.counts(name).tolist()}, 94% HDI held the truth {hits}/"
                         f"{len(self.covered[name])} (99% binomial interval {low:.0f}-"
                         f"{high:.0f})")
        return "\n".join(lines)


def rank_of(truth: float, draws: np.ndarray, rng: np.random.Generator) -> int:
    """Rank of the truth among the draws, ties broken at random."""
    below = int(np.sum(draws < truth))
    ties = int(np.sum(draws == truth))
    return below + int(rng.integers(0, ties + 1))


def run_sbc(family, n_simulations: int, seed: int, sampling: dict | None = None) -> SbcResult:
    """Simulate, fit and rank ``n_simulations`` times with one generator seeded by ``seed``."""
    import arviz as az

    rng = np.random.default_rng(seed)
    result = SbcResult({p: [] for p in family.parameters}, {p: [] for p in family.parameters})
    start = time.perf_counter()
    for _ in range(n_simulations):
        simulation = family.simulate(rng)
        fit = family.fit(simulation, int(rng.integers(2**31)), sampling or {})
        if fit.problems:
            result.failed.append(fit.problems)
            continue
        for name in family.parameters:
            draws = np.asarray(fit.draws[name])
            keep = np.linspace(0, draws.size - 1, N_RANK_DRAWS).round().astype(int)
            truth = simulation.truth[name]
            result.ranks[name].append(rank_of(truth, draws[keep], rng))
            low, high = az.hdi(draws, hdi_prob=HDI_PROB)
            result.covered[name].append(bool(low <= truth <= high))
    result.seconds = time.perf_counter() - start
    return result


def assert_calibrated(result: SbcResult, n_simulations: int, max_failed: float = 0.1) -> None:
    """Uniform ranks (p > 0.01) and HDI coverage inside the 99% binomial interval for every
    parameter, with at most ``max_failed`` of the fits unconverged."""
    assert len(result.failed) <= max_failed * n_simulations, result.failed[:3]
    for name in result.ranks:
        assert result.p_value(name) > 0.01, (name, result.counts(name).tolist())
        low, high = result.coverage_interval(name)
        assert low <= np.sum(result.covered[name]) <= high, (name, np.sum(result.covered[name]))

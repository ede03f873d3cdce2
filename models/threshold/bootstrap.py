"""Bootstrap of Hansen's (1999) tests for the number of thresholds, vectorised over samples.

Test of k-1 against k thresholds: F_k = (S_{k-1} - S_k) / sigma_k^2 with
sigma_k^2 = S_k / (n (T-1)). Hansen's program bootstraps it as follows, and so does this module:

1. fit the null model (k-1 thresholds fixed at their estimates) on the transformed data, giving
   fitted values y_hat and residuals e, grouped by unit;
2. draw n units with replacement and stack their residual vectors: y* = y_hat + e*
   (regressors held fixed);
3. on y*, estimate the thresholds again sequentially (the first over the whole grid, each next
   given the previous ones, excluding neighbourhoods as in the point estimate) and compute
   F*_k = (S*_{k-1} - S*_k) / (S*_k / (n (T-1)));
4. p = share of F* above F_k; critical values are the ceil(0.90 B), ceil(0.95 B) and
   ceil(0.99 B)-th order statistics.

All B samples go through each search at once: the first search is one batched cumulative sum;
later searches group the samples by the thresholds they found, so each distinct fixed design is
set up once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.threshold.search import ThresholdSearcher

CRITICAL_LEVELS = (0.90, 0.95, 0.99)


@dataclass(frozen=True)
class BootstrapTest:
    """Bootstrap distribution of one F test and what is read off it."""

    statistic: float
    draws: np.ndarray

    @property
    def p_value(self) -> float:
        return float(np.mean(self.draws > self.statistic))

    @property
    def critical_values(self) -> tuple[float, float, float]:
        """10%, 5% and 1% critical values, as Hansen's program reads them off the draws."""
        ordered = np.sort(self.draws)
        picks = np.ceil(np.array(CRITICAL_LEVELS) * ordered.size).astype(int) - 1
        return tuple(float(v) for v in ordered[np.clip(picks, 0, ordered.size - 1)])


def bootstrap_threshold_test(searcher: ThresholdSearcher, transformed_y: np.ndarray,
                             null_thresholds, n_alternative: int, half_width: int,
                             n_boot: int, rng: np.random.Generator, dof: int) -> np.ndarray:
    """Draw the bootstrap distribution of F for ``n_alternative - 1`` vs ``n_alternative``.

    Parameters
    ----------
    searcher
        Threshold searches on the panel.
    transformed_y
        The transformed outcome (n T_kept,).
    null_thresholds
        The k-1 estimated thresholds of the null model that generates the samples.
    n_alternative
        k, the number of thresholds under the alternative.
    half_width
        Exclusion half-width (grid steps) for the second and later searches, Hansen's
        ``qn * trim`` of this test.
    n_boot
        B, the number of bootstrap samples.
    rng
        Seeded generator.
    dof
        n (T-1), the divisor in sigma^2.

    Returns
    -------
    numpy.ndarray
        The B bootstrap F statistics.
    """
    panel = searcher.panel
    null_design = searcher.design(null_thresholds)
    coef, *_ = np.linalg.lstsq(null_design, transformed_y, rcond=None)
    fitted = null_design @ coef
    residual_units = (transformed_y - fitted).reshape(panel.n_units, panel.rows_per_unit)
    draws = rng.integers(0, panel.n_units, size=(n_boot, panel.n_units))
    samples = fitted[:, None] + residual_units[draws].reshape(n_boot, -1).T   # (m, B)

    first = searcher.searcher((), half_width)
    base_residuals = first.residualise(samples)           # M_0 y*, shared by every later step
    rss_before = np.einsum("mb,mb->b", base_residuals, base_residuals)
    drop = first.reductions(base_residuals)
    best = np.argmax(drop, axis=0)   # the first maximiser is the first RSS minimiser
    rss_after = rss_before - drop[best, np.arange(n_boot)]
    found = first.candidates[best][:, None]

    for _ in range(1, n_alternative):
        rss_before = rss_after
        rss_after = np.empty(n_boot)
        next_found = np.empty(n_boot)
        groups, members = np.unique(found, axis=0, return_inverse=True)
        for group_index, existing in enumerate(groups):
            columns = np.flatnonzero(members.ravel() == group_index)
            step = searcher.searcher(existing, half_width)
            residuals = step.residualise(base_residuals[:, columns], fixed_done=True)
            base = np.einsum("mb,mb->b", residuals, residuals)
            drop = step.reductions(residuals)
            best = np.argmax(drop, axis=0)
            rss_after[columns] = base - drop[best, np.arange(columns.size)]
            next_found[columns] = step.candidates[best]
        found = np.sort(np.column_stack([found, next_found]), axis=1)
    return (rss_before / rss_after - 1.0) * dof

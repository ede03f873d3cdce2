"""Three-step (Baron & Kenny 1986) mediation with absorbed fixed effects.

Model
-----
    (total)    y_it = c  x_it + w_it' g1 + a_i + d_t + e1_it
    (a path)   m_it = a  x_it + w_it' g2 + a_i + d_t + e2_it
    (b path)   y_it = c' x_it + b m_it + w_it' g3 + a_i + d_t + e3_it

each fitted by :func:`models.panel.fe.fit_twfe` (within estimator, the same errors and
``xtreg``-style constant as the baseline table). The indirect effect is ``a b`` and the direct
effect ``c'``; with OLS on the same rows ``c = c' + a b`` exactly.

Inference on ``a b``
--------------------
* Sobel (1982) first-order delta method: ``se(ab) = sqrt(b^2 se(a)^2 + a^2 se(b)^2)``,
  ``z = ab / se(ab)``, two-sided normal p-value; the standard errors are those of the fits.
* Cluster bootstrap percentile interval: resample whole units (cities) with replacement,
  each drawn copy a unit of its own, refit the a and b paths with both sets of effects, and
  take the 2.5% and 97.5% quantiles of ``a* b*``. On a balanced panel the refits are
  vectorised: with ``U_g`` the unit-demeaned data of unit g and bootstrap counts ``n_g``
  (sum G), the two-way within cross-products are ``sum_g n_g U_g'U_g - G sum_t u_t u_t'`` with
  ``u_t = sum_g n_g U_gt / G``, so every replicate costs one small solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from models.panel.fe import PanelFit, fit_twfe


def sobel_test(a: float, se_a: float, b: float, se_b: float) -> tuple[float, float, float]:
    """Sobel (1982) standard error, z and two-sided p-value of the product ``a b``."""
    se = float(np.sqrt(b ** 2 * se_a ** 2 + a ** 2 * se_b ** 2))
    z = a * b / se
    return se, float(z), float(2 * stats.norm.sf(abs(z)))


@dataclass(frozen=True)
class MediationFit:
    """The three regressions of one mediator and the inference on the indirect effect."""

    treatment: str
    mediator: str
    total: PanelFit
    a_path: PanelFit
    b_path: PanelFit
    indirect: float
    sobel_se: float
    sobel_z: float
    sobel_p: float
    boot_draws: np.ndarray
    ci_low: float
    ci_high: float

    @property
    def a(self) -> float:
        return self.a_path.coef(self.treatment)

    @property
    def b(self) -> float:
        return self.b_path.coef(self.mediator)

    @property
    def direct(self) -> float:
        return self.b_path.coef(self.treatment)

    def effects_table(self) -> pd.DataFrame:
        """``indirect_<m>`` (Sobel se, z, p; bootstrap percentile CI), ``sobel_z_<m>``,
        ``sobel_p_<m>`` and ``share_mediated_<m>`` (= ab / c)."""
        m = self.mediator
        n_obs = self.total.n_obs
        return pd.DataFrame({
            "term": [f"indirect_{m}", f"sobel_z_{m}", f"sobel_p_{m}",
                     f"share_mediated_{m}"],
            "estimate": [self.indirect, self.sobel_z, self.sobel_p,
                         self.indirect / self.total.coef(self.treatment)],
            "std_error": [self.sobel_se, np.nan, np.nan, np.nan],
            "ci_low": [self.ci_low, np.nan, np.nan, np.nan],
            "ci_high": [self.ci_high, np.nan, np.nan, np.nan],
            "stat": [self.sobel_z, np.nan, np.nan, np.nan],
            "p_value": [self.sobel_p, np.nan, np.nan, np.nan],
            "n_obs": [n_obs] * 4,
        })


def fit_mediation(
    frame: pd.DataFrame,
    outcome: str,
    treatment: str,
    mediator: str,
    controls: list[str],
    effects: list[str],
    vcov: str = "hetero",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> MediationFit:
    """Fit the three steps and test the indirect effect through ``mediator``.

    ``effects`` must be ``[unit, period]``; the bootstrap resamples units. ``n_boot = 0``
    skips the bootstrap (the interval is then NaN).
    """
    if len(effects) != 2 or any("^" in e for e in effects):
        raise ValueError(f"mediation needs effects [unit, period], not {effects}")
    unit, period = effects
    columns = [outcome, treatment, mediator, *controls, unit, period]
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the data")
    data = frame[list(dict.fromkeys(columns))].dropna().reset_index(drop=True)
    total = fit_twfe(data, outcome, [treatment, *controls], effects, vcov=vcov)
    a_path = fit_twfe(data, mediator, [treatment, *controls], effects, vcov=vcov)
    b_path = fit_twfe(data, outcome, [treatment, mediator, *controls], effects, vcov=vcov)
    a_row = a_path.tidy().set_index("term").loc[treatment]
    b_row = b_path.tidy().set_index("term").loc[mediator]
    a, b = float(a_row["estimate"]), float(b_row["estimate"])
    se, z, p = sobel_test(a, float(a_row["std_error"]), b, float(b_row["std_error"]))
    draws = (bootstrap_indirect(data, outcome, treatment, mediator, controls, unit, period,
                                n_boot=n_boot, seed=seed) if n_boot else np.array([]))
    tail = (1 - level) / 2 * 100
    low, high = (np.percentile(draws, [tail, 100 - tail]) if draws.size
                 else (np.nan, np.nan))
    return MediationFit(
        treatment=treatment, mediator=mediator, total=total, a_path=a_path, b_path=b_path,
        indirect=a * b, sobel_se=se, sobel_z=z, sobel_p=p, boot_draws=draws,
        ci_low=float(low), ci_high=float(high),
    )


def bootstrap_indirect(
    frame: pd.DataFrame,
    outcome: str,
    treatment: str,
    mediator: str,
    controls: list[str],
    unit: str,
    period: str,
    n_boot: int = 1000,
    seed: int = 0,
    vectorised: bool | None = None,
) -> np.ndarray:
    """``n_boot`` cluster-bootstrap draws of ``a b`` (units resampled with replacement).

    ``vectorised=None`` picks the closed-form path on balanced panels and the refit loop
    otherwise; both give the same draws for the same seed.
    """
    variables = [outcome, mediator, treatment, *controls]
    data = frame.sort_values([unit, period]).reset_index(drop=True)
    units, unit_index = np.unique(data[unit].to_numpy(), return_inverse=True)
    n_units = len(units)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot)
    balanced = _is_balanced(data, unit, period)
    if vectorised is None:
        vectorised = balanced
    if vectorised and not balanced:
        raise ValueError(f"the vectorised bootstrap needs a balanced panel ({unit} x {period})")
    # Column positions in the stacked variables.
    y, m, x = 0, 1, 2
    w = list(range(3, len(variables)))
    if vectorised:
        n_periods = data[period].nunique()
        cube = data[variables].to_numpy(float).reshape(n_units, n_periods, len(variables))
        within = cube - cube.mean(axis=1, keepdims=True)
        per_unit = np.einsum("gtp,gtq->gpq", within, within).reshape(n_units, -1)
        period_means = (counts @ within.reshape(n_units, -1) / n_units).reshape(
            n_boot, n_periods, len(variables))
        cross = (counts @ per_unit).reshape(n_boot, len(variables), len(variables))
        cross -= n_units * np.einsum("btp,btq->bpq", period_means, period_means)
    else:
        cross = np.empty((n_boot, len(variables), len(variables)))
        values = data[variables].to_numpy(float)
        rows_of = [np.flatnonzero(unit_index == g) for g in range(n_units)]
        periods = data[period].to_numpy()
        for draw in range(n_boot):
            picks = np.repeat(np.arange(n_units), counts[draw])
            rows = np.concatenate([rows_of[g] for g in picks])
            copy_id = np.repeat(np.arange(len(picks)), [len(rows_of[g]) for g in picks])
            demeaned = _two_way_demean(values[rows], copy_id, periods[rows])
            cross[draw] = demeaned.T @ demeaned
    a_design = [x, *w]
    b_design = [x, m, *w]
    a_coef = np.linalg.solve(cross[:, a_design][:, :, a_design],
                             cross[:, a_design, m][..., None])[..., 0]
    b_coef = np.linalg.solve(cross[:, b_design][:, :, b_design],
                             cross[:, b_design, y][..., None])[..., 0]
    return a_coef[:, 0] * b_coef[:, 1]


def _is_balanced(data: pd.DataFrame, unit: str, period: str) -> bool:
    per_unit = data.groupby(unit)[period].agg(lambda s: tuple(sorted(s)))
    return per_unit.nunique() == 1 and not data.duplicated([unit, period]).any()


def _two_way_demean(values: np.ndarray, unit_codes: np.ndarray,
                    period_values: np.ndarray) -> np.ndarray:
    """Exact two-way within transformation (unit means out, then period dummies by FWL)."""
    frame = pd.DataFrame(values)
    within = values - frame.groupby(unit_codes).transform("mean").to_numpy()
    dummies = pd.get_dummies(period_values, dtype=float).to_numpy()
    dummies = dummies - pd.DataFrame(dummies).groupby(unit_codes).transform("mean").to_numpy()
    coef, *_ = np.linalg.lstsq(dummies, within, rcond=None)
    return within - dummies @ coef

"""Sensitivity of an indirect effect to mediator-outcome confounding (Imai, Keele & Yamamoto
2010, R ``mediation::medsens``), computed on the posterior draws.

With rho = corr(e_k, u) the correlation of mediator k's and the outcome's errors (the other
mediators' correlations with u at 0), the b path implied by the identified parameters of
:mod:`models.mediation.model` is

    b_k(rho) = b0_k - s_y rho s_k P_kk / sqrt(1 - rho^2 s_k^2 P_kk),    P = Sigma_M^-1,

admissible for |rho| < 1 / (s_k sqrt(P_kk)) (= sqrt(1 - r_12^2) with two mediators, 1 with
one). For one mediator it is IKY's Theorem 2: a b(rho) = a (s_1 / s_2)(rho~ - rho sqrt((1 -
rho~^2) / (1 - rho^2))). Each draw gives a curve a_k b_k(rho); at each rho the curve's posterior
mean and 94% HDI form the band, and ``rho_at_zero`` is the rho nearest 0 at which the HDI first
contains 0 (0 when it already does at rho = 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.bayes.summary import HDI_PROB

GRID_SIZE = 397
# Below this share of admissible draws the band at a rho is not reported.
MIN_ADMISSIBLE = 0.9


@dataclass(frozen=True)
class SensitivityCurve:
    """The indirect effect through ``mediator`` as a function of rho."""

    mediator: str
    table: pd.DataFrame  # rho, mean, hdi_low, hdi_high, admissible_share
    rho_at_zero: float
    rho_point_zero: float
    side: str

    def describe(self) -> str:
        """The result in words (the ``note`` of the ``rho_at_zero_<m>`` row)."""
        if not np.isfinite(self.rho_at_zero):
            lead = (f"the {HDI_PROB:.0%} HDI of the indirect effect through {self.mediator} "
                    "excludes 0 for every admissible rho")
        elif self.rho_at_zero == 0.0:
            lead = (f"the {HDI_PROB:.0%} HDI of the indirect effect through {self.mediator} "
                    "contains 0 already at rho = 0")
        else:
            lead = (f"the {HDI_PROB:.0%} HDI of the indirect effect through {self.mediator} "
                    f"first contains 0 at rho = {self.rho_at_zero:.3f} (mediator-outcome error "
                    "correlation, Imai-Keele-Yamamoto)")
        point = (f"; its posterior mean is 0 at rho = {self.rho_point_zero:.3f}"
                 if np.isfinite(self.rho_point_zero) else "")
        return lead + point


def _hdi_rows(values: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Narrowest ``prob`` interval of each row of ``values`` (draws along axis 1, NaN
    dropped per row)."""
    low = np.full(values.shape[0], np.nan)
    high = np.full(values.shape[0], np.nan)
    for i, row in enumerate(values):
        row = np.sort(row[np.isfinite(row)])
        n = row.size
        if n < 2:
            continue
        width = max(int(np.floor(prob * n)), 1)
        spans = row[width:] - row[:n - width]
        j = int(np.argmin(spans))
        low[i], high[i] = row[j], row[j + width]
    return low, high


def indirect_curves(a: np.ndarray, b0: np.ndarray, sigma_y: np.ndarray,
                    sigma_m: np.ndarray, precision_kk: np.ndarray, rho: np.ndarray
                    ) -> np.ndarray:
    """Draws x rho matrix of a_k b_k(rho) (module docstring); NaN where inadmissible.

    All arguments but ``rho`` are flat per-draw arrays of mediator k's quantities;
    ``precision_kk`` is (Sigma_M^-1)_kk."""
    scale = sigma_m**2 * precision_kk
    rho = rho[None, :]
    inside = 1.0 - rho**2 * scale[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = sigma_y[:, None] * rho * (sigma_m * precision_kk)[:, None] / np.sqrt(inside)
    curves = a[:, None] * (b0[:, None] - shift)
    curves[inside <= 0] = np.nan
    return curves


def _first_crossing(rho: np.ndarray, contains: np.ndarray, low: np.ndarray,
                    high: np.ndarray, side: int) -> float:
    """The rho nearest 0 on one side where the HDI first contains 0, interpolated between
    grid points on the bound that crosses 0."""
    centre = int(np.argmin(np.abs(rho)))
    order = range(centre, rho.size) if side > 0 else range(centre, -1, -1)
    previous = None
    for i in order:
        if not np.isfinite(low[i]):
            return np.nan
        if contains[i]:
            if previous is None:
                return 0.0
            bound = low if low[previous] > 0 else high
            x0, x1, y0, y1 = rho[previous], rho[i], bound[previous], bound[i]
            return float(x0 + (x1 - x0) * (0 - y0) / (y1 - y0)) if y1 != y0 else float(x1)
        previous = i
    return np.nan


def sensitivity_curve(mediator: str, a: np.ndarray, b0: np.ndarray, sigma_y: np.ndarray,
                      sigma_m: np.ndarray, precision_kk: np.ndarray,
                      hdi_prob: float = HDI_PROB) -> SensitivityCurve:
    """The IKY sensitivity curve of one mediator from flat posterior draws (module
    docstring): mean and ``hdi_prob`` HDI of a_k b_k(rho) on a grid over the admissible range,
    the rho nearest 0 where the HDI contains 0 (searched on the side towards which the
    indirect effect shrinks, the other side if it does not cross there), and the rho where the
    posterior mean crosses 0."""
    bound = 1.0 / np.sqrt(sigma_m**2 * precision_kk)
    limit = float(np.quantile(bound, 1.0 - MIN_ADMISSIBLE)) * 0.999
    rho = np.linspace(-limit, limit, GRID_SIZE)
    rho = np.sort(np.append(rho, 0.0))
    curves = indirect_curves(a, b0, sigma_y, sigma_m, precision_kk, rho)
    admissible = np.isfinite(curves).mean(axis=0)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(curves, axis=0)
    low, high = _hdi_rows(curves.T, hdi_prob)
    thin = admissible < MIN_ADMISSIBLE
    mean[thin], low[thin], high[thin] = np.nan, np.nan, np.nan
    contains = (low <= 0) & (high >= 0)
    centre = int(np.argmin(np.abs(rho)))
    # A positive indirect effect shrinks as rho grows when a > 0 (b(rho) decreases in rho).
    towards = 1 if np.sign(mean[centre]) == np.sign(np.mean(a)) else -1
    found = _first_crossing(rho, contains, low, high, towards)
    side = "rho > 0" if towards > 0 else "rho < 0"
    if not np.isfinite(found):
        found = _first_crossing(rho, contains, low, high, -towards)
        side = "rho < 0" if towards > 0 else "rho > 0"
    sign = np.sign(mean)
    change = np.flatnonzero(np.isfinite(mean[:-1]) & np.isfinite(mean[1:])
                            & (sign[:-1] != sign[1:]))
    if change.size:
        i = change[np.argmin(np.abs(rho[change]))]
        point = float(rho[i] - mean[i] * (rho[i + 1] - rho[i]) / (mean[i + 1] - mean[i]))
    else:
        point = np.nan
    table = pd.DataFrame({"rho": rho, "mean": mean, "hdi_low": low, "hdi_high": high,
                          "admissible_share": admissible})
    return SensitivityCurve(mediator, table, float(found), point, side)


def plot_sensitivity(curves: list[SensitivityCurve], path: str | Path, title: str) -> Path:
    """One panel per mediator: the posterior mean of the indirect effect against rho, its
    94% HDI band, and rho_at_zero marked; rho within +-max(0.3, 4 |rho at zero|)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.8 * len(curves), 3.6), squeeze=False)
    for ax, curve in zip(axes[0], curves, strict=True):
        # The curve runs off to +-infinity as |rho| nears its bound; show the region around
        # where the effect vanishes instead.
        reach = [0.3] + [4 * abs(v) for v in (curve.rho_at_zero, curve.rho_point_zero)
                         if np.isfinite(v)]
        t = curve.table[curve.table["rho"].abs() <= max(reach)]
        ax.fill_between(t["rho"], t["hdi_low"], t["hdi_high"], color="tab:blue", alpha=0.25,
                        label=f"{HDI_PROB:.0%} HDI")
        ax.plot(t["rho"], t["mean"], color="tab:blue", label="posterior mean")
        ax.axhline(0.0, color="black", lw=0.8)
        if np.isfinite(curve.rho_at_zero):
            ax.axvline(curve.rho_at_zero, color="tab:red", ls="--", lw=1,
                       label=f"HDI reaches 0: rho = {curve.rho_at_zero:.2f}")
        ax.set_xlabel("rho = corr(mediator error, outcome error)")
        ax.set_ylabel(f"indirect effect through {curve.mediator}")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

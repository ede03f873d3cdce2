"""Coefficient-stability measures of selection on unobservables.

Altonji-Elder-Taber selection ratio (Bellows & Miguel 2009 form)
-----------------------------------------------------------------
Fit the restricted model ``y = beta_R x + effects + e`` (no controls) and the full model
``y = beta_F x + w' gamma + effects + e`` (with the controls), both with the same absorbed
effects. Altonji, Elder & Taber (2005, JPE 113, 151-184) ask how large selection on
unobservables, relative to selection on the observed controls, must be to explain away the
effect; Bellows & Miguel (2009, J. Public Econ. 93, 1144-1157) and Nunn & Wantchekon (2011,
AER 101, 3221-3252) compute it as

    ratio = beta_F / (beta_R - beta_F).

A ratio above 1 (in absolute value) is read as: unobservables would have to be more
important than the controls to produce an effect of zero.

Oster (2019) delta and bias-adjusted beta
-----------------------------------------
Oster (2019, JBES 37, 187-204) adds the R2 movement. With ``beta_o``, ``R_o`` from the
restricted (short) model and ``beta_t``, ``R_t`` from the full (intermediate) model,
``sigma_y^2 = Var(y)``, ``sigma_x^2 = Var(x)`` after the always-included effects (psacalc's
``mcontrol``), ``tau_x = Var(x)`` after the effects and the controls, and
``R_max = min(1.3 R_t, 1)`` (Oster's recommended bound), the bias ``nu = beta_t - beta`` of
the full-model estimate solves, for a proportionality ``delta`` of selection on unobservables
to selection on observables, the cubic of Oster's Proposition 2 (psacalc's ``dnot1cubsol``):

    nu^3 + A nu^2 + B nu + C = 0,
    A = tau_x (beta_o - beta_t) sigma_x^2 (delta - 2) / D,
    B = (delta (R_max - R_t) sigma_y^2 (sigma_x^2 - tau_x)
         - (R_t - R_o) sigma_y^2 tau_x - sigma_x^2 tau_x (beta_o - beta_t)^2) / D,
    C = (R_max - R_t) sigma_y^2 delta (beta_o - beta_t) sigma_x^2 / D,
    D = (delta - 1) (tau_x sigma_x^2 - tau_x^2);

for ``delta = 1`` the cubic term vanishes and the quadratic
``-tau_x (beta_o - beta_t) sigma_x^2 nu^2 + Theta nu + (R_max - R_t) sigma_y^2 (beta_o - beta_t)
sigma_x^2 = 0`` (Theta the numerator of B with delta = 1) is solved in closed form
(psacalc's ``d1quadsol``). We solve both with ``numpy.roots``. Among the roots psacalc
keeps the one closest to ``beta_t`` whose bias has the same sign as ``beta_t - beta_o``;
``beta* = beta_t - nu``. The ``delta`` that makes the bias-adjusted effect equal to a value
``beta`` (0 by default) has the closed form of Oster's Proposition 3 (psacalc's ``delta``):

    delta = [ b (R_t - R_o) s_y tau_x + b s_x tau_x d^2 + 2 b^2 tau_x d s_x
              + b^3 (tau_x s_x - tau_x^2) ]
          / [ (R_max - R_t) s_y d s_x + b (R_max - R_t) s_y (s_x - tau_x)
              + b^2 tau_x d s_x + b^3 (tau_x s_x - tau_x^2) ],

with ``b = beta_t - beta``, ``d = beta_o - beta_t``, ``s_y = sigma_y^2``, ``s_x = sigma_x^2``.
R2 are the overall R2 of the regressions with the absorbed effects as dummies, as psacalc
reads them after ``reg y x w i.unit i.period`` with ``mcontrol(i.unit i.period)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.panel.fe import PanelFit, fit_twfe, partial_out


@dataclass(frozen=True)
class OsterInputs:
    """The moments Oster's formulas need."""

    beta_restricted: float
    beta_full: float
    r2_restricted: float
    r2_full: float
    var_y: float
    var_x: float
    var_x_resid: float


def selection_ratio(beta_full: float, beta_restricted: float) -> float:
    """Altonji et al. (2005) ratio ``beta_F / (beta_R - beta_F)`` (Bellows & Miguel 2009)."""
    gap = beta_restricted - beta_full
    if gap == 0:
        return float("inf") if beta_full != 0 else float("nan")
    return beta_full / gap


def oster_delta(moments: OsterInputs, r_max: float, beta: float = 0.0) -> float:
    """Oster's delta at which the bias-adjusted effect equals ``beta`` (closed form)."""
    b = moments.beta_full - beta
    d = moments.beta_restricted - moments.beta_full
    s_y, s_x, t_x = moments.var_y, moments.var_x, moments.var_x_resid
    gain = (moments.r2_full - moments.r2_restricted) * s_y
    room = (r_max - moments.r2_full) * s_y
    numerator = (b * gain * t_x + b * s_x * t_x * d ** 2 + 2 * b ** 2 * t_x * d * s_x
                 + b ** 3 * (t_x * s_x - t_x ** 2))
    denominator = (room * d * s_x + b * room * (s_x - t_x) + b ** 2 * t_x * d * s_x
                   + b ** 3 * (t_x * s_x - t_x ** 2))
    return float(numerator / denominator)


def oster_bias_roots(moments: OsterInputs, r_max: float, delta: float = 1.0) -> np.ndarray:
    """Real roots ``nu = beta_t - beta*`` of Oster's cubic (quadratic when delta = 1)."""
    d = moments.beta_restricted - moments.beta_full
    s_y, s_x, t_x = moments.var_y, moments.var_x, moments.var_x_resid
    gain = (moments.r2_full - moments.r2_restricted) * s_y
    room = (r_max - moments.r2_full) * s_y
    # Oster's cubic multiplied through by D = (delta - 1)(tau_x s_x - tau_x^2).
    cubic = (delta - 1) * (t_x * s_x - t_x ** 2)
    quadratic = t_x * d * s_x * (delta - 2)
    linear = delta * room * (s_x - t_x) - gain * t_x - s_x * t_x * d ** 2
    constant = room * delta * d * s_x
    coefficients = np.array([cubic, quadratic, linear, constant])
    roots = np.roots(coefficients if cubic != 0 else coefficients[1:])
    return np.sort(roots[np.abs(roots.imag) < 1e-9].real)


def oster_beta_star(moments: OsterInputs, r_max: float, delta: float = 1.0) -> float:
    """Bias-adjusted effect ``beta* = beta_t - nu`` with psacalc's choice of root: among the
    roots whose bias has the direction of ``beta_t - beta_o``, the closest to ``beta_t``
    (else the closest overall)."""
    roots = oster_bias_roots(moments, r_max, delta)
    if roots.size == 0:
        return float("nan")
    candidates = moments.beta_full - roots
    direction = np.sign(moments.beta_full - moments.beta_restricted)
    same = candidates[np.sign(candidates - moments.beta_full) == direction]
    pool = same if same.size else candidates
    return float(pool[np.argmin(np.abs(pool - moments.beta_full))])


@dataclass(frozen=True)
class SelectionFit:
    """Restricted and full fits, the AET selection ratio and Oster's delta and beta*."""

    full: PanelFit
    restricted: PanelFit
    treatment: str
    ratio: float
    oster: OsterInputs
    r_max: float
    delta: float
    beta_star: float

    def tidy(self) -> pd.DataFrame:
        """The full model's table plus ``selection_ratio``, ``beta_restricted``,
        ``oster_delta``, ``oster_beta_star`` and ``oster_r_max`` rows."""
        extra = pd.DataFrame({
            "term": ["selection_ratio", "beta_restricted", "oster_delta", "oster_beta_star",
                     "oster_r_max"],
            "estimate": [self.ratio, self.oster.beta_restricted, self.delta, self.beta_star,
                         self.r_max],
        })
        extra["n_obs"] = self.full.n_obs
        return pd.concat([self.full.tidy(), extra], ignore_index=True)


def fit_selection_ratio(
    frame: pd.DataFrame,
    outcome: str,
    treatment: str,
    controls: list[str],
    effects: list[str],
    vcov: str = "hetero",
    r_max_factor: float = 1.3,
) -> SelectionFit:
    """Selection ratio and Oster (2019) bounds of ``treatment`` in ``outcome ~ treatment +
    controls + effects`` against ``outcome ~ treatment + effects`` (same rows).

    ``R_max = min(r_max_factor * R2_full, 1)``; Oster's delta is for beta = 0 and beta* for
    delta = 1.
    """
    columns = [outcome, treatment, *controls, *[p for e in effects for p in e.split("^")]]
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the data")
    data = frame[list(dict.fromkeys(columns))].dropna().reset_index(drop=True)
    full = fit_twfe(data, outcome, [treatment, *controls], effects, vcov=vcov)
    restricted = fit_twfe(data, outcome, [treatment], effects, vcov=vcov)
    beta_full, beta_restricted = full.coef(treatment), restricted.coef(treatment)
    x_effects = partial_out(data, [treatment], [], list(effects))[:, 0]
    x_all = partial_out(data, [treatment], list(controls), list(effects))[:, 0]
    moments = OsterInputs(
        beta_restricted=beta_restricted, beta_full=beta_full,
        r2_restricted=restricted.r2, r2_full=full.r2,
        var_y=float(data[outcome].var(ddof=1)),
        var_x=float(np.var(x_effects, ddof=1)), var_x_resid=float(np.var(x_all, ddof=1)),
    )
    r_max = min(r_max_factor * full.r2, 1.0)
    return SelectionFit(
        full=full, restricted=restricted, treatment=treatment,
        ratio=selection_ratio(beta_full, beta_restricted), oster=moments, r_max=r_max,
        delta=oster_delta(moments, r_max), beta_star=oster_beta_star(moments, r_max, 1.0),
    )

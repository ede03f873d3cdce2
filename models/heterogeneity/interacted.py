"""Subgroup heterogeneity as one fully interacted fixed-effects regression (frequentist).

Model
-----
For unit i, year t and group g(i, t) (a categorical column, constant within units such as a
region, or varying over unit-years such as "high data resources" in a given year),

    y_it = sum_g 1[g(i,t) = g] x_it' beta_g + w_it' gamma + sum_{g > 1} 1[g(i,t) = g] c_g
           + a_i + d_t + e_it,

with x the focal regressor(s) whose slopes vary by group, w the controls (common slopes, or
also group-varying with ``vary_controls=True``), and c_g group intercept shifts that enter only
when the group changes within units (a unit-level group is absorbed by a_i). The fixed effects
and the controls are common, which is what separates this model from the paper's split-sample
regressions (there every group has its own control slopes and year effects). The difference of
two group slopes, beta_g - beta_h, is tested by a Wald test with the same covariance estimator
and t reference distribution as the slopes (pyfixest's degrees of freedom).

The same :class:`GroupDesign` (the interacted columns ``"AI[east]"`` and the group dummies)
feeds the Bayesian counterpart in :mod:`models.heterogeneity.bayes`, so both sides estimate the
same regression.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from models.panel.fe import TIDY_COLUMNS, pyfixest_vcov


def slope_term(regressor: str, group: str) -> str:
    """Name of the slope of ``regressor`` in ``group``: ``"AI[east]"``."""
    return f"{regressor}[{group}]"


def difference_term(regressor: str, first: str, second: str) -> str:
    """Name of beta_first - beta_second: ``"AI[east]-AI[west]"``."""
    return f"{slope_term(regressor, first)}-{slope_term(regressor, second)}"


@dataclass(frozen=True)
class GroupDesign:
    """The interacted regressors of a heterogeneity model.

    Attributes
    ----------
    frame : DataFrame
        Outcome, unit, time, ``group_column`` (as str) and every design column, in the order
        of the input rows.
    varying : tuple of str
        Regressors whose slope varies by group.
    common : tuple of str
        Regressors with one slope (controls, and group dummies ``"<group>=<g>"`` when the group
        changes within units).
    groups : tuple of str
        Group labels in model order.
    group_varies_within_unit : bool
    """

    frame: pd.DataFrame
    outcome: str
    unit: str
    time: str | None
    group_column: str
    varying: tuple[str, ...]
    common: tuple[str, ...]
    groups: tuple[str, ...]
    group_varies_within_unit: bool

    @property
    def interacted(self) -> tuple[str, ...]:
        """Design columns of the group slopes, regressor-major: AI[g1], AI[g2], ..."""
        return tuple(slope_term(r, g) for r in self.varying for g in self.groups)

    @property
    def columns(self) -> tuple[str, ...]:
        """All design columns: the interacted ones, then the common ones."""
        return self.interacted + self.common

    def pairs(self) -> list[tuple[str, str]]:
        """Every unordered pair of groups (g, h), g before h in model order."""
        return list(itertools.combinations(self.groups, 2))


def build_group_design(
    df: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    group: str,
    unit: str,
    time: str | None = None,
    focal: Sequence[str] | None = None,
    vary_controls: bool = False,
    groups: Sequence[str] | None = None,
) -> GroupDesign:
    """Interact the focal regressor(s) with group indicators.

    Parameters
    ----------
    df : DataFrame
    outcome, unit, time : str
    regressors : sequence of str
        Focal regressor(s) and controls.
    group : str
        Categorical column; its values (as strings) name the groups.
    focal : sequence of str, optional
        Regressors whose slope varies; default the first regressor.
    vary_controls : bool
        Let every regressor's slope vary by group.
    groups : sequence of str, optional
        Order of the groups (must list every value of ``group``); default sorted.

    Raises
    ------
    ValueError
        Naming the column or rows: missing columns, missing group values, fewer than two
        groups, a focal regressor not among the regressors, or an ordering that does not match
        the groups in the data.
    """
    regressors = [regressors] if isinstance(regressors, str) else list(regressors)
    if not regressors:
        raise ValueError("At least one regressor is needed.")
    focal = [regressors[0]] if focal is None else ([focal] if isinstance(focal, str) else
                                                   list(focal))
    unknown = [f for f in focal if f not in regressors]
    if unknown:
        raise ValueError(f"Focal regressor(s) {unknown} are not among the regressors "
                         f"{regressors}.")
    keys = [outcome, unit, group] + ([time] if time is not None else [])
    missing = [c for c in dict.fromkeys(keys + regressors) if c not in df.columns]
    if missing:
        raise ValueError(f"Column(s) {missing} not in the data; columns are {list(df.columns)}.")
    if group in regressors or group in (outcome, unit, time):
        raise ValueError(f"Group column {group!r} is also a regressor, the outcome, unit or time.")
    bad = df.index[df[group].isna()]
    if len(bad):
        raise ValueError(f"Group column {group!r} has {len(bad)} missing value(s), first at "
                         f"row(s) {list(bad[:5])}.")
    labels = df[group].astype(str)
    present = sorted(labels.unique())
    if groups is None:
        order = present
    else:
        order = [str(g) for g in groups]
        if sorted(order) != present:
            raise ValueError(f"Option groups={order} must list each value of {group!r} once; "
                             f"the data have {present}.")
    if len(order) < 2:
        raise ValueError(f"Group column {group!r} has only the value(s) {present}; "
                         "heterogeneity needs at least two groups.")
    for label in order:
        if "[" in label or "]" in label:
            raise ValueError(f"Group value {label!r} of {group!r} contains a bracket; rename it.")
    varying = list(regressors) if vary_controls else focal
    common = [r for r in regressors if r not in varying]
    varies_within = bool((labels.groupby(df[unit]).nunique() > 1).any())
    columns: dict[str, np.ndarray] = {}
    for name in varying:
        values = pd.to_numeric(df[name], errors="raise").to_numpy(dtype=float)
        for label in order:
            columns[slope_term(name, label)] = np.where(labels == label, values, 0.0)
    for name in common:
        columns[name] = df[name].to_numpy()
    dummies = []
    if varies_within:
        # A group that changes within units shifts the level too; without its own intercept
        # the level shift would load on the group slopes.
        for label in order[1:]:
            dummy = f"{group}={label}"
            columns[dummy] = (labels == label).to_numpy(dtype=float)
            dummies.append(dummy)
    base = {outcome: df[outcome].to_numpy(), unit: df[unit].to_numpy(),
            group: labels.to_numpy()}
    if time is not None:
        base[time] = df[time].to_numpy()
    frame = pd.DataFrame({**base, **columns}, index=df.index)
    return GroupDesign(
        frame=frame, outcome=outcome, unit=unit, time=time, group_column=group,
        varying=tuple(varying), common=tuple(common + dummies), groups=tuple(order),
        group_varies_within_unit=varies_within,
    )


@dataclass(frozen=True)
class InteractedFit:
    """Fully interacted TWFE: group slopes, their pairwise differences and the common terms."""

    design: GroupDesign
    table: pd.DataFrame
    coef: pd.Series
    vcov: pd.DataFrame
    df_t: float
    n_obs: int

    def tidy(self) -> pd.DataFrame:
        """Rows ``AI[g]`` per group, ``AI[g]-AI[h]`` per pair (Wald test), then the common
        slopes; columns ``term, estimate, std_error, ci_low, ci_high, stat, p_value, n_obs``."""
        return self.table.copy()


def fit_interacted_twfe(
    df: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    group: str,
    effects: Sequence[str],
    focal: Sequence[str] | None = None,
    vcov: str = "hetero",
    vary_controls: bool = False,
    groups: Sequence[str] | None = None,
    level: float = 0.95,
) -> InteractedFit:
    """Fit the fully interacted TWFE of the module docstring with pyfixest.

    Parameters
    ----------
    df : DataFrame
    outcome, regressors, group, focal, vary_controls, groups
        As in :func:`build_group_design`.
    effects : sequence of str
        Absorbed effects in pyfixest syntax; the first is the unit (used to tell whether the
        group varies within units), the second, if plain, the time.
    vcov : str
        ``"hetero"``, ``"iid"`` or ``"cluster:<column>"``.
    level : float
        Confidence level of ``ci_low`` / ``ci_high``.

    Returns
    -------
    InteractedFit
        Differences beta_g - beta_h with the Wald statistic's signed root as ``stat`` and its
        two-sided p-value (t with pyfixest's degrees of freedom, as for the slopes).
    """
    import pyfixest as pf

    effects = list(effects)
    if not effects:
        raise ValueError("The interacted TWFE needs at least a unit effect.")
    unit = effects[0]
    time = effects[1] if len(effects) > 1 and "^" not in effects[1] else None
    design = build_group_design(df, outcome, regressors, group, unit, time, focal,
                                vary_controls, groups)
    safe = {name: f"_h{j}" for j, name in enumerate(design.columns)}
    frame = design.frame.rename(columns=safe)
    cluster = vcov.split(":", 1)[1] if vcov.startswith("cluster:") else None
    for extra in [e for effect in effects for e in effect.split("^")] + (
            [cluster] if cluster else []):
        if extra not in frame.columns:
            if extra not in df.columns:
                raise ValueError(f"Column {extra!r} (effects / clusters) not in the data.")
            frame[extra] = df[extra].to_numpy()
    formula = f"{outcome} ~ {' + '.join(safe.values())} | {' + '.join(effects)}"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*singleton.*")
        fit = pf.feols(formula, data=frame, vcov=pyfixest_vcov(vcov))
    back = {v: k for k, v in safe.items()}
    dropped = [back[n] for n in safe.values() if n not in fit.coef().index]
    if dropped:
        raise ValueError(f"Design column(s) {dropped} are collinear with the fixed effects or "
                         "each other; their slopes are not identified.")
    coef = fit.coef().rename(index=back)
    cov = pd.DataFrame(fit._vcov, index=coef.index, columns=coef.index)
    df_t = float(fit._df_t)
    crit = stats.t.ppf(0.5 + level / 2, df_t)

    def row(term: str, estimate: float, variance: float) -> dict:
        se = float(np.sqrt(variance))
        t_stat = estimate / se
        return {"term": term, "estimate": float(estimate), "std_error": se,
                "ci_low": estimate - crit * se, "ci_high": estimate + crit * se,
                "stat": t_stat, "p_value": float(2 * stats.t.sf(abs(t_stat), df_t))}

    rows = []
    for name in design.varying:
        for label in design.groups:
            term = slope_term(name, label)
            rows.append(row(term, coef[term], cov.loc[term, term]))
        for first, second in design.pairs():
            a, b = slope_term(name, first), slope_term(name, second)
            variance = cov.loc[a, a] + cov.loc[b, b] - 2 * cov.loc[a, b]
            rows.append(row(difference_term(name, first, second), coef[a] - coef[b], variance))
    for name in design.common:
        rows.append(row(name, coef[name], cov.loc[name, name]))
    table = pd.DataFrame(rows)
    table["n_obs"] = int(fit._N)
    return InteractedFit(design=design, table=table[TIDY_COLUMNS], coef=coef, vcov=cov,
                         df_t=df_t, n_obs=int(fit._N))

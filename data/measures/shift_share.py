"""Shift-share AI-manufacturing measures of Zhu, Leng & Zhang (2025) and spatial concentration.

The paper lacks annual city counts of manufacturing AI firms and patents, so it spreads each
city's 2020 count over the years in proportion to the city's manufacturing firm count (after
Acemoglu & Restrepo's 2020 robot exposure):

    weight_c   = stock_{c,2020} / firm_{c,2020}                       (eq. 2, dimensionless)
    M_AI_{c,t} = weight_c * firm_{c,t} / unit

``stock`` is the city's surviving manufacturing AI firms (or its AI invention patent
applications, or grants), ``firm`` its surviving manufacturing firms. Equivalently
M_AI_{c,t} = stock_{c,2020} * prod_{s=t+1}^{2020} 1 / (1 + g_{c,s}) / unit with g the growth rate
of ``firm``: the 2020 stock back-cast with the growth of the firm count. The robustness variant
of Table 4 column 3 (``growth_weighted_measure``) back-casts with another growth rate instead;
the text names regional GDP growth there (section 4.3) and manufacturing value-added growth in
section 4.1, so the growth column is an argument.

Units. The text counts every input in units of 10,000 (万个) and reads Table 1 column (1) as
"12.5% more GDP per 10,000 more AI firms". With the paper's own counts (643 firms in Shenzhen, the
largest city) a measure in units of 10,000 moves by at most 0.06 within a city, and the printed
clustered SE of 0.01 would then need a residual standard deviation of ln GDP near 0.0004, which
contradicts the printed R2 of 0.98. The measures here are therefore expressed per ``unit``
counted items (default ``FIRM_UNIT = 100`` AI firms, ``PATENT_UNIT = 100`` patents), the scale on
which the published coefficients and standard errors are mutually consistent with realistic
noise; pass ``unit=10_000`` for the literal reading of the text.

Spatial concentration: shares by region, the top-k share, the number of cities with none and
the Herfindahl index H_t = sum_c s_{c,t}^2 with s_{c,t} = count_{c,t} / sum_c count_{c,t}.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from data.errors import DataError

BASE_YEAR = 2020
FIRM_UNIT = 100.0
PATENT_UNIT = 100.0

# measure column -> (stock column, unit): the three measures of Tables 1-3.
MEASURES = {
    "m_firms": ("ai_firms", FIRM_UNIT),
    "m_apps": ("ai_inv_apps", PATENT_UNIT),
    "m_grants": ("ai_inv_grants", PATENT_UNIT),
}


def _check_columns(panel: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in panel.columns]
    if missing:
        raise DataError(
            f"shift-share measure needs column(s) {missing}; present: "
            f"{list(panel.columns)[:20]} [rule: required columns]"
        )


def _base_rows(panel: pd.DataFrame, unit: str, time: str, base_year: int) -> pd.DataFrame:
    base = panel.loc[panel[time] == base_year]
    if base[unit].duplicated().any():
        dup = base.loc[base[unit].duplicated(), unit].head(5).tolist()
        raise DataError(
            f"{unit} {dup} appear more than once in {base_year} [rule: one row per "
            f"{unit} and {time}]"
        )
    lacking = sorted(set(panel[unit]) - set(base[unit]))
    if lacking:
        raise DataError(
            f"{len(lacking)} {unit}(s) have no {base_year} row, so their shift-share "
            f"weight is undefined (first: {lacking[:5]}) [rule: base year present]"
        )
    return base.set_index(unit)


def shift_share_weight(
    panel: pd.DataFrame,
    stock: str = "ai_firms",
    base: str = "mfg_firms",
    base_year: int = BASE_YEAR,
    unit: str = "city",
    time: str = "year",
) -> pd.Series:
    """City weights of the shift-share measure, eq. (2) of the paper.

    .. math:: w_c = \\text{stock}_{c,2020} / \\text{firm}_{c,2020}

    Parameters
    ----------
    panel
        City-year panel with ``unit``, ``time``, ``stock`` and ``base`` columns.
    stock, base
        Numerator (AI firms or AI invention patents) and denominator (manufacturing firms).
    base_year
        Year whose ratio is held fixed (2020 in the paper).

    Returns
    -------
    pandas.Series
        One weight per city, indexed by city, named ``w_<stock>``.

    Raises
    ------
    DataError
        If a column is missing, a city has no base-year row, a count is negative or the
        base-year denominator is not positive.
    """
    _check_columns(panel, [unit, time, stock, base])
    rows = _base_rows(panel, unit, time, base_year)
    numerator = rows[stock].astype(float)
    denominator = rows[base].astype(float)
    if (numerator < 0).any():
        bad = numerator[numerator < 0].head(5).to_dict()
        raise DataError(
            f"column '{stock}' is negative in {base_year} for {bad} [rule: counts are non-negative]"
        )
    if (denominator <= 0).any():
        bad = denominator[denominator <= 0].head(5).to_dict()
        raise DataError(
            f"column '{base}' must be positive in {base_year} to divide by it; "
            f"{unit} {bad} [rule: positive base-year denominator]"
        )
    return (numerator / denominator).rename(f"w_{stock}")


def shift_share_measure(
    panel: pd.DataFrame,
    stock: str = "ai_firms",
    base: str = "mfg_firms",
    scale: float = FIRM_UNIT,
    base_year: int = BASE_YEAR,
    unit: str = "city",
    time: str = "year",
) -> pd.Series:
    """Shift-share measure M_AI_{c,t} = w_c * firm_{c,t} / scale, aligned with ``panel``'s rows.

    .. math:: M_{c,t} = \\frac{\\text{stock}_{c,2020}}{\\text{firm}_{c,2020}}
              \\,\\frac{\\text{firm}_{c,t}}{\\text{scale}}

    ``scale`` is the number of counted items (AI firms, patents) per unit of the measure.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    weight = shift_share_weight(panel, stock, base, base_year, unit, time)
    firms = panel[base].astype(float)
    if (firms < 0).any():
        raise DataError(f"column '{base}' holds negative counts [rule: counts are non-negative]")
    return (panel[unit].map(weight) * firms / scale).rename(f"m_{stock}")


def growth_weighted_measure(
    panel: pd.DataFrame,
    stock: str = "ai_firms",
    growth: str = "gdp_growth",
    scale: float = FIRM_UNIT,
    percent: bool = True,
    base_year: int = BASE_YEAR,
    unit: str = "city",
    time: str = "year",
) -> pd.Series:
    """Table 4 variant: the base-year stock back-cast with a time-varying growth rate.

    .. math:: M^g_{c,t} = \\text{stock}_{c,2020} \\prod_{s=t+1}^{2020} (1 + g_{c,s})^{-1}
              / \\text{scale}

    With g the growth rate of the manufacturing firm count this is exactly the baseline
    measure; the paper's robustness check uses regional GDP growth (``gdp_growth``, in percent
    when ``percent``). Years after the base year are carried forward:
    M^g_{c,t} = stock_{c,2020} prod_{s=2021}^{t} (1 + g_{c,s}) / scale.

    Raises
    ------
    DataError
        If a city has a gap in its years between t and the base year, or a growth rate is at
        or below -100%.
    """
    _check_columns(panel, [unit, time, stock, growth])
    rows = _base_rows(panel, unit, time, base_year)
    rate = panel[growth].astype(float) / (100.0 if percent else 1.0)
    if (rate <= -1).any():
        raise DataError(
            f"column '{growth}' has growth rates at or below -100% [rule: growth above -100%]"
        )
    log_factor = np.log1p(rate)
    frame = pd.DataFrame(
        {unit: panel[unit], time: panel[time], "lf": log_factor}, index=panel.index
    )
    span = frame.groupby(unit)[time].agg(["min", "max", "count"])
    gaps = span.index[span["max"] - span["min"] + 1 != span["count"]]
    if len(gaps):
        raise DataError(
            f"{len(gaps)} {unit}(s) have gaps in {time}, so the growth back-cast is "
            f"undefined (first: {list(gaps[:5])}) [rule: consecutive years]"
        )
    frame = frame.sort_values([unit, time])
    cum = frame.groupby(unit)["lf"].cumsum()
    at_base = frame[time] == base_year
    cum_base = pd.Series(cum[at_base].to_numpy(), index=frame.loc[at_base, unit].to_numpy())
    # log(M_t / M_base) = sum_{s<=t} log(1+g_s) - sum_{s<=base} log(1+g_s)
    log_ratio = cum - frame[unit].map(cum_base)
    value = frame[unit].map(rows[stock].astype(float)) * np.exp(log_ratio) / scale
    return value.reindex(panel.index).rename(f"m_{stock}_{growth}")


def add_measures(panel: pd.DataFrame, growth: str | None = "gdp_growth") -> pd.DataFrame:
    """Return a copy of ``panel`` with ``m_firms``, ``m_apps``, ``m_grants`` (and ``m_firms_gw``).

    ``m_firms_gw`` is the Table 4 growth-weighted firm measure, added when ``growth`` is a
    column of the panel.
    """
    out = panel.copy()
    for name, (stock, scale) in MEASURES.items():
        out[name] = shift_share_measure(panel, stock=stock, scale=scale)
    if growth is not None and growth in panel.columns:
        out["m_firms_gw"] = growth_weighted_measure(panel, stock="ai_firms", growth=growth)
    return out


# The measures under the names the paper's tables print.
PUBLISHED_MEASURE_NAMES = {
    "m_firms": "M_AI_firm",
    "m_apps": "M_AI_patent_app",
    "m_grants": "M_AI_patent_grant",
    "m_firms_gw": "M_AI_firm_gw",
}


def add_published_names(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy each shift-share measure present to the name the paper prints (``M_AI_firm``, ...).

    A ``derive`` step of the zhu2025 registry, run after :func:`add_measures`, so that
    estimates carry the printed term names; the original columns stay.
    """
    out = frame.copy()
    for source, printed in PUBLISHED_MEASURE_NAMES.items():
        if source in out.columns:
            out[printed] = out[source]
    return out


def _by_year(panel: pd.DataFrame, count: str, time: str) -> pd.core.groupby.DataFrameGroupBy:
    _check_columns(panel, [time, count])
    if (panel[count] < 0).any():
        raise DataError(f"column '{count}' holds negative counts [rule: counts are non-negative]")
    return panel.groupby(time)[count]


def region_shares(
    panel: pd.DataFrame, count: str = "ai_firms", region: str = "region", time: str = "year"
) -> pd.DataFrame:
    """Share of the national total held by each region, by year (rows: years; columns: regions).

    .. math:: S_{r,t} = \\sum_{c \\in r} n_{c,t} / \\sum_c n_{c,t}
    """
    _check_columns(panel, [region, time, count])
    totals = panel.groupby([time, region])[count].sum().unstack(region, fill_value=0)
    return totals.div(totals.sum(axis=1).replace(0, np.nan), axis=0)


def top_k_shares(
    panel: pd.DataFrame,
    count: str = "ai_firms",
    ks: Sequence[int] = (1, 5, 10),
    time: str = "year",
) -> pd.DataFrame:
    """Share of the national total held by the k largest cities, by year (columns ``top<k>``).

    .. math:: T_{k,t} = \\sum_{c \\in \\text{top}_k(t)} n_{c,t} / \\sum_c n_{c,t}
    """
    grouped = _by_year(panel, count, time)

    def shares(values: pd.Series) -> pd.Series:
        ordered = np.sort(values.to_numpy(dtype=float))[::-1]
        total = ordered.sum()
        return pd.Series(
            {f"top{k}": ordered[:k].sum() / total if total > 0 else np.nan for k in ks}
        )

    return grouped.apply(shares).unstack()


def cities_without(panel: pd.DataFrame, count: str = "ai_firms", time: str = "year") -> pd.Series:
    """Number of cities with a zero count, by year."""
    return _by_year(panel, count, time).apply(lambda s: int((s == 0).sum())).rename("n_zero")


def herfindahl(panel: pd.DataFrame, count: str = "ai_firms", time: str = "year") -> pd.Series:
    """Herfindahl concentration index H_t = sum_c s_{c,t}^2 across cities, by year (0 to 1)."""

    def index(values: pd.Series) -> float:
        total = values.sum()
        return float(((values / total) ** 2).sum()) if total > 0 else np.nan

    return _by_year(panel, count, time).apply(index).rename("hhi")


def concentration_facts(
    panel: pd.DataFrame, count: str = "ai_firms", time: str = "year"
) -> pd.DataFrame:
    """Spatial concentration by year: total, cities, cities with none, top-1/5/10 shares, HHI."""
    grouped = _by_year(panel, count, time)
    facts = pd.DataFrame({"total": grouped.sum(), "n_cities": grouped.size()})
    facts["n_zero"] = cities_without(panel, count, time)
    facts = facts.join(top_k_shares(panel, count, (1, 5, 10), time))
    facts["hhi"] = herfindahl(panel, count, time)
    return facts

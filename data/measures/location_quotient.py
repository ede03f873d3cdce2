"""Location quotient of an industry's employment: agglomeration of the AI industry by city.

    LQ_{c,t} = (E^AI_{c,t} / E_{c,t}) / (E^AI_t / E_t)

``E^AI_{c,t}`` is AI-industry employment of city c in year t, ``E_{c,t}`` its total employment,
and ``E^AI_t``, ``E_t`` the national totals of year t. LQ > 1 means the city holds a larger share
of AI employment than of all employment. Without national totals the denominators are the sums
over the cities in the frame for each year (the usual choice when the sample covers nearly all
prefecture-level cities); then the employment-weighted mean of LQ in each year is exactly 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.errors import DataError


def _positions(mask: pd.Series) -> str:
    rows = np.flatnonzero(mask.to_numpy()) + 1
    return ", ".join(str(r) for r in rows[:5]) + (" ..." if len(rows) > 5 else "")


def location_quotient(
    frame: pd.DataFrame,
    industry: str = "ai_employment",
    total: str = "total_employment",
    time: str = "year",
    national: pd.DataFrame | None = None,
) -> pd.Series:
    r"""Location quotient of ``industry`` employment in every row of a city-year panel.

    .. math::

        LQ_{c,t} = \frac{E^{AI}_{c,t} / E_{c,t}}{E^{AI}_t / E_t},
        \quad E^{AI}_t = \sum_c E^{AI}_{c,t}, \; E_t = \sum_c E_{c,t}

    (or the national totals given in ``national``).

    Parameters
    ----------
    frame
        One row per city and year with the two employment columns and ``time``.
    industry, total
        Column names of the industry's and of total employment (same unit, e.g. persons).
    time
        Column of the period.
    national
        Optional frame with columns ``time``, ``industry`` and ``total`` holding national totals
        per period; by default the sums over the rows of ``frame`` in each period.

    Returns
    -------
    pandas.Series
        LQ, aligned with ``frame``'s index, named ``"LQ"``.

    Raises
    ------
    DataError
        If a column is missing, a value is non-finite or negative, total employment is not
        positive, industry employment exceeds total employment, or a period has no industry
        employment (or no national total).
    """
    for name in (industry, total, time):
        if name not in frame.columns:
            raise DataError(f"location quotient: missing column '{name}' [rule: required columns]")
    part = pd.to_numeric(frame[industry], errors="coerce")
    whole = pd.to_numeric(frame[total], errors="coerce")
    for name, values in ((industry, part), (total, whole)):
        bad = ~np.isfinite(values)
        if bad.any():
            raise DataError(
                f"location quotient: column '{name}' has missing or non-numeric values at rows "
                f"{_positions(bad)} [rule: finite values]"
            )
    if (part < 0).any():
        raise DataError(
            f"location quotient: column '{industry}' is negative at rows {_positions(part < 0)} "
            "[rule: employment >= 0]"
        )
    if (whole <= 0).any():
        raise DataError(
            f"location quotient: column '{total}' is not positive at rows {_positions(whole <= 0)}"
            " [rule: total employment > 0]"
        )
    if (part > whole).any():
        raise DataError(
            f"location quotient: '{industry}' exceeds '{total}' at rows {_positions(part > whole)}"
            " [rule: industry employment <= total employment]"
        )
    if national is None:
        sums = pd.DataFrame({time: frame[time], "part": part, "whole": whole})
        totals = sums.groupby(time)[["part", "whole"]].sum()
    else:
        missing = [c for c in (time, industry, total) if c not in national.columns]
        if missing:
            raise DataError(f"location quotient: national totals lack columns {missing}")
        totals = national.set_index(time)[[industry, total]].astype(float)
        totals.columns = ["part", "whole"]
        absent = ~frame[time].isin(totals.index)
        if absent.any():
            raise DataError(
                f"location quotient: no national totals for periods "
                f"{sorted(frame.loc[absent, time].unique())[:5]} [rule: totals for every period]"
            )
    national_share = totals["part"] / totals["whole"]
    if not (national_share > 0).all():
        empty = national_share.index[~(national_share > 0)].tolist()
        raise DataError(
            f"location quotient: no '{industry}' employment in periods {empty[:5]} "
            "[rule: national industry share > 0]"
        )
    share = part / whole
    return (share / frame[time].map(national_share).to_numpy()).rename("LQ")

r"""Related and unrelated knowledge variety by entropy decomposition (Frenken, Van Oort & Verburg
2007), computed from patent counts by technology class.

With shares :math:`p_j` of a city-year's patents over fine classes j (4-character IPC
subclasses, e.g. ``G06N``) grouped into coarse sections g (the IPC section letter, ``G``) with
:math:`P_g = \sum_{j \in g} p_j`:

.. math::

    UV = \sum_g P_g \log_2 \frac{1}{P_g}, \qquad
    RV = \sum_g P_g H_g, \quad H_g = \sum_{j \in g} \frac{p_j}{P_g} \log_2 \frac{P_g}{p_j},

and the total entropy :math:`E = \sum_j p_j \log_2 (1 / p_j) = UV + RV`. Unrelated variety (UV)
is the spread over sections, related variety (RV) the share-weighted spread within sections.
Zero counts contribute nothing (:math:`0 \log 0 = 0`). Units are bits (log base 2).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from data.errors import DataError


def ipc_section(technology_class: str) -> str:
    """IPC section of a class code: its first letter (``"G06N"`` -> ``"G"``)."""
    return str(technology_class)[:1]


def _entropy_bits(shares: np.ndarray) -> float:
    positive = shares[shares > 0]
    return float(-(positive * np.log2(positive)).sum())


def variety_from_counts(
    counts: np.ndarray | pd.Series,
    sections: np.ndarray | pd.Series,
) -> dict[str, float]:
    r"""Unrelated variety, related variety and total entropy of one count vector.

    .. math::

        UV = \sum_g P_g \log_2 (1/P_g), \quad RV = \sum_g P_g H_g, \quad
        E = \sum_j p_j \log_2 (1/p_j) = UV + RV

    Parameters
    ----------
    counts
        Non-negative counts per fine class, not all zero.
    sections
        Coarse group of each class (same length as ``counts``).

    Returns
    -------
    dict
        ``{"unrelated_variety", "related_variety", "entropy"}`` in bits.
    """
    values = np.asarray(counts, dtype=float)
    groups = np.asarray(sections)
    if values.shape != groups.shape:
        raise DataError(
            f"knowledge variety: {values.shape[0]} counts but {groups.shape[0]} section labels"
        )
    if not np.all(np.isfinite(values)) or (values < 0).any():
        raise DataError("knowledge variety: counts must be finite and >= 0 [rule: counts >= 0]")
    total = values.sum()
    if total <= 0:
        raise DataError("knowledge variety: all counts are zero [rule: at least one patent]")
    shares = values / total
    labels, codes = np.unique(groups, return_inverse=True)
    section_shares = np.bincount(codes, weights=shares, minlength=len(labels))
    unrelated = _entropy_bits(section_shares)
    related = 0.0
    for code, section_share in enumerate(section_shares):
        if section_share > 0:
            related += section_share * _entropy_bits(shares[codes == code] / section_share)
    return {
        "unrelated_variety": unrelated,
        "related_variety": related,
        "entropy": _entropy_bits(shares),
    }


def variety_panel(
    patents: pd.DataFrame,
    unit: str = "city",
    time: str = "year",
    technology_class: str = "ipc_class",
    count: str = "count",
    section_of: Callable[[str], str] = ipc_section,
) -> pd.DataFrame:
    r"""Related and unrelated variety of every unit-period of a long patent file.

    For each (unit, time), :math:`p_j = n_j / \sum_k n_k` over the classes listed for it,
    :math:`P_g = \sum_{j \in g} p_j` with g = ``section_of(class)``, and

    .. math::

        UV = -\sum_g P_g \log_2 P_g, \qquad
        RV = -\sum_g \sum_{j \in g} p_j \log_2 (p_j / P_g), \qquad E = UV + RV.

    Parameters
    ----------
    patents
        Long frame, one row per (unit, time, class) with a non-negative ``count``. Classes
        with no patents may be listed with count 0 or left out; the result is the same.
    unit, time, technology_class, count
        Column names.
    section_of
        Maps a class code to its section (default: the IPC section letter).

    Returns
    -------
    pandas.DataFrame
        Columns ``unit``, ``time``, ``related_variety``, ``unrelated_variety``, ``entropy``,
        ``patents`` (the total count), sorted by unit and time.

    Raises
    ------
    DataError
        On a missing column, a negative or non-numeric count, a repeated (unit, time, class)
        row, or a unit-period whose counts are all zero.
    """
    missing = [c for c in (unit, time, technology_class, count) if c not in patents.columns]
    if missing:
        raise DataError(f"patent counts: missing columns {missing} [rule: required columns]")
    values = pd.to_numeric(patents[count], errors="coerce")
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        rows = ", ".join(str(r + 1) for r in np.flatnonzero(bad.to_numpy())[:5])
        raise DataError(
            f"patent counts: column '{count}' must be a finite number >= 0; rows {rows} are not "
            "[rule: counts >= 0]"
        )
    repeated = patents.duplicated([unit, time, technology_class], keep=False)
    if repeated.any():
        rows = ", ".join(str(r + 1) for r in np.flatnonzero(repeated.to_numpy())[:5])
        raise DataError(
            f"patent counts: repeated ({unit}, {time}, {technology_class}) at rows {rows} "
            "[rule: one row per unit, period and class]"
        )
    frame = pd.DataFrame(
        {
            unit: patents[unit].to_numpy(),
            time: patents[time].to_numpy(),
            "section": patents[technology_class].map(section_of).to_numpy(),
            "n": values.to_numpy(dtype=float),
        }
    )
    keys = [unit, time]
    totals = frame.groupby(keys, sort=False)["n"].transform("sum")
    if (totals <= 0).any():
        first = frame.loc[(totals <= 0).to_numpy(), keys].iloc[0].tolist()
        raise DataError(
            f"patent counts: every class count is zero for ({unit}, {time}) = {first} "
            "[rule: at least one patent per unit and period]"
        )
    share = frame["n"] / totals
    frame["p"] = share
    frame["P"] = frame.groupby([*keys, "section"], sort=False)["p"].transform("sum")
    positive = frame["p"] > 0
    # -p log2 p over fine classes is total entropy; -p log2(p / P) is the within-section part.
    frame["total_term"] = 0.0
    frame["related_term"] = 0.0
    frame.loc[positive, "total_term"] = -share[positive] * np.log2(share[positive])
    frame.loc[positive, "related_term"] = -share[positive] * np.log2(
        share[positive] / frame.loc[positive, "P"]
    )
    out = frame.groupby(keys, sort=True).agg(
        entropy=("total_term", "sum"),
        related_variety=("related_term", "sum"),
        patents=("n", "sum"),
    )
    sections = frame.groupby([*keys, "section"], sort=False)["p"].sum()
    section_terms = (
        (-sections[sections > 0] * np.log2(sections[sections > 0])).groupby(level=[0, 1]).sum()
    )
    out["unrelated_variety"] = section_terms.reindex(out.index).fillna(0.0)
    out = out.reset_index()
    return out[[unit, time, "related_variety", "unrelated_variety", "entropy", "patents"]]

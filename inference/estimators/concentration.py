"""Spatial concentration of a count across cities (Zhu, Leng & Zhang 2025, section 3).

Facts of one year (the paper's paragraph uses 2020): the largest city's count, how many
cities hold none / a single-digit count / 1-100 / 100-200 / more than 200, the top-k shares
T_k = sum_{c in top k} n_c / sum_c n_c, the Herfindahl index H = sum_c s_c^2 and the regional
shares S_r = sum_{c in r} n_c / sum_c n_c; the same shares, H and the count of cities with none
for every year. Frequentist only: these are descriptive statistics of the data, without
sampling error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.measures.shift_share import (
    cities_without,
    herfindahl,
    region_shares,
    top_k_shares,
)
from inference.estimators.base import Estimate, Settings
from inference.registry import Spec

KIND = "concentration"

def concentration_rows(
    panel: pd.DataFrame,
    count: str,
    year: int,
    time: str = "year",
    region: str | None = "region",
    ks: tuple[int, ...] = (1, 5, 10),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Facts of ``year`` (generic term names) and the by-year series.

    Returns
    -------
    (facts, by_year)
        ``facts``: one row per term (``top1_count``, ``cities_zero``, ``top5_share_pct``,
        ``hhi``, ``<region>_share_pct``, ...) with ``estimate``. ``by_year``: rows indexed by
        year with ``top<k>_share_pct``, ``hhi``, ``cities_zero`` and regional shares.
    """
    if year not in set(panel[time]):
        raise ValueError(f"year {year} is not in column '{time}'")
    counts = panel.loc[panel[time] == year, count].astype(float)
    ordered = np.sort(counts.to_numpy())[::-1]
    total = ordered.sum()
    shares = top_k_shares(panel, count, ks, time)
    hhi = herfindahl(panel, count, time)
    facts = {
        "top1_count": ordered[0],
        "total": total,
        "n_cities": float(len(ordered)),
        "cities_zero": float((counts == 0).sum()),
        "cities_single_digit": float(((counts >= 1) & (counts <= 9)).sum()),
        "cities_1_to_100": float(((counts >= 1) & (counts <= 100)).sum()),
        "cities_100_to_200": float(((counts > 100) & (counts <= 200)).sum()),
        "cities_over_200": float((counts > 200).sum()),
        **{f"top{k}_share_pct": 100 * shares.loc[year, f"top{k}"] for k in ks},
        "hhi": hhi.loc[year],
    }
    by_year = (100 * shares).add_suffix("_share_pct")
    by_year["hhi"] = hhi
    by_year["cities_zero"] = cities_without(panel, count, time).astype(float)
    if region is not None and region in panel.columns:
        regional = 100 * region_shares(panel, count, region, time)
        for name in regional.columns:
            facts[f"{name}_share_pct"] = regional.loc[year, name]
            by_year[f"{name}_share_pct"] = regional[name]
    table = pd.DataFrame({"term": list(facts), "estimate": list(facts.values())})
    return table, by_year


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """Concentration facts of ``spec.outcome`` (a count per city and year).

    Options: ``year`` (default the last year), ``region`` (column of macro-regions, default
    ``region``), ``top_k`` (default [1, 5, 10]), ``rename`` (generic term -> printed name).
    Rows of ``year`` go to ``spec.column``; the by-year series to ``<column>_by_year`` with
    terms ``<name>_<year>``. One figure: Herfindahl index and top-k shares by year.
    """
    options = spec.options
    time = settings.time
    year = int(options.get("year", sample[time].max()))
    ks = tuple(int(k) for k in options.get("top_k", [1, 5, 10]))
    facts, by_year = concentration_rows(sample, spec.outcome, year, time,
                                        options.get("region", "region"), ks)
    facts["term"] = facts["term"].replace(options.get("rename", {}))
    facts["note"] = f"{spec.outcome} in {year}"
    facts["n_obs"] = int((sample[time] == year).sum())
    series = by_year.reset_index().melt(id_vars=time, var_name="name", value_name="estimate")
    series["term"] = series["name"] + "_" + series[time].astype(int).astype(str)
    series["column"] = f"{spec.column}_by_year"
    series["table"] = spec.table
    series["n_obs"] = series[time].map(sample.groupby(time).size()).astype(int)
    series["note"] = f"{spec.outcome} by year"
    facts["column"], facts["table"] = spec.column, spec.table
    tidy = pd.concat([facts, series[facts.columns]], ignore_index=True)
    figure = _figure(by_year, ks, spec, settings)
    return Estimate(tidy, figures=[figure])


def _figure(by_year: pd.DataFrame, ks: tuple[int, ...], spec: Spec, settings: Settings):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = settings.out_dir / f"concentration_{spec.table}_{spec.column}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.plot(by_year.index, by_year["hhi"], marker="o")
    left.set_title("Herfindahl index across cities", fontsize=9)
    left.set_xlabel("year")
    for k in ks:
        right.plot(by_year.index, by_year[f"top{k}_share_pct"], marker="o", label=f"top {k}")
    right.set_title("share of the national total (%)", fontsize=9)
    right.set_xlabel("year")
    right.legend(fontsize=8)
    fig.suptitle(f"Spatial concentration of {spec.outcome}{settings.figure_suffix}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""Published tables in the paper's layout: terms as rows, the paper's columns as columns, and in
every cell published | frequentist | Bayesian, with flags where they disagree.

A :class:`Grid` is the layout (which columns, which terms, the rows of each cell) that the
HTML page, the LaTeX and the Markdown export all render, so the three never disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data.errors import DataError

MOMENT_ORDER = ("n", "mean", "sd", "min", "q25", "median", "q75", "max")
# A gap between the Bayesian mean and a reference beyond this many posterior sd is flagged.
GAP_SD = 2.0


def is_missing(value) -> bool:
    """True for None, NaN and empty strings."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    try:
        return bool(np.isnan(value))
    except TypeError:
        return False


def fmt(value, digits: int = 4) -> str:
    """A number with ``digits`` decimals; '' for a missing one; whole counts without decimals."""
    if is_missing(value):
        return ""
    value = float(value)
    if abs(value) >= 1e5 or (value == int(value) and abs(value) >= 100):
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def stars(p_value=None, stat=None) -> str:
    """Conventional stars (10%, 5%, 1%) from a p-value, else from a normal t statistic."""
    if is_missing(p_value) and not is_missing(stat):
        p_value = math.erfc(abs(float(stat)) / math.sqrt(2.0))
    if is_missing(p_value):
        return ""
    p_value = float(p_value)
    return "***" if p_value < 0.01 else "**" if p_value < 0.05 else "*" if p_value < 0.1 else ""


def printed_published(study: str) -> dict[tuple[str, str, str], dict]:
    """(table, column, term) -> the printed estimate, stars and number beneath, as the paper
    has them; empty when the study has no published tables."""
    from data.published import load_published

    try:
        frame = load_published(study, as_printed=True)
    except (DataError, ValueError, KeyError, FileNotFoundError):
        return {}
    return {(str(r.table), str(r.column), str(r.term)):
            {"estimate": r.estimate, "stars": r.stars, "printed": r.printed,
             "printed_kind": r.printed_kind, "note": r.note}
            for r in frame.itertuples(index=False)}


@dataclass
class Cell:
    """The rows of one (column, term): at most one per source."""

    published: dict | None = None
    frequentist: dict | None = None
    bayesian: dict | None = None
    printed: dict | None = None

    @property
    def converged(self) -> bool:
        """Whether the Bayesian number (if any) comes from a fit that passed the checks."""
        return self.bayesian is None or is_missing(self.bayesian.get("note"))

    def flags(self) -> list[str]:
        """Where the Bayesian posterior disagrees with the paper (or, without a published
        number, with the frequentist estimate): sign, significance against the 94% HDI
        excluding 0, and a gap beyond two posterior sd."""
        b = self.bayesian
        if b is None or is_missing(b.get("estimate")) or is_missing(b.get("std_error")):
            return []
        found = []
        for name, ref in (("published", self.published), ("frequentist", self.frequentist)):
            if ref is None or is_missing(ref.get("estimate")):
                continue
            estimate, mean = float(ref["estimate"]), float(b["estimate"])
            if estimate * mean < 0:
                found.append(f"sign differs from {name}")
            significant = self._significant(name, ref)
            excludes = (not is_missing(b.get("ci_low")) and not is_missing(b.get("ci_high"))
                        and (float(b["ci_low"]) > 0 or float(b["ci_high"]) < 0))
            if significant is not None and significant != excludes:
                found.append(f"{name} {'significant' if significant else 'not significant'}, "
                             f"94% HDI {'includes' if significant else 'excludes'} 0")
            sd = float(b["std_error"])
            if sd > 0 and abs(estimate - mean) > GAP_SD * sd:
                found.append(f"{abs(estimate - mean) / sd:.1f} posterior sd from {name}")
            if name == "published":
                break
        return found

    def _significant(self, name: str, ref: dict) -> bool | None:
        if name == "published" and self.printed is not None \
                and not is_missing(self.printed.get("stars")) \
                and not is_missing(self.printed.get("printed_kind")):
            return int(float(self.printed["stars"])) > 0
        if is_missing(ref.get("p_value")) and is_missing(ref.get("stat")):
            return None
        return stars(ref.get("p_value"), ref.get("stat")) != ""


@dataclass
class Grid:
    """One table in the paper's layout."""

    table: str
    columns: list[str]
    terms: list[str]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def cell(self, column: str, term: str) -> Cell | None:
        """The cell of (column, term), or None where the table has nothing there."""
        return self.cells.get((column, term))


def _row_dict(row: pd.Series) -> dict:
    return {k: (None if is_missing(v) else v) for k, v in row.items()}


def build_grid(results: pd.DataFrame, table: str, columns: list[str] | None = None,
               printed: dict | None = None, labels: dict[str, str] | None = None) -> Grid:
    """The layout of ``table`` over ``columns`` (default: every column, published first):
    published terms first in the paper's order, then the ones computed here."""
    subset = results[results["table"].astype(str) == str(table)]
    if columns is None:
        columns = list(dict.fromkeys(
            list(subset.loc[subset["source"] == "published", "column"].astype(str))
            + list(subset["column"].astype(str))))
    subset = subset[subset["column"].astype(str).isin(columns)]
    published_terms = subset.loc[subset["source"] == "published", "term"].astype(str)
    terms = list(dict.fromkeys(list(published_terms) + list(subset["term"].astype(str))))
    # R2 reads best last, as papers print it under the coefficients.
    if "R2" in terms:
        terms = [t for t in terms if t != "R2"] + ["R2"]
    grid = Grid(table=str(table), columns=[str(c) for c in columns], terms=terms,
                labels=dict(labels or {}))
    printed = printed or {}
    for row in subset.itertuples(index=False):
        key = (str(row.column), str(row.term))
        cell = grid.cells.setdefault(key, Cell())
        if getattr(cell, row.source) is None:
            setattr(cell, row.source, _row_dict(pd.Series(row._asdict())))
        cell.printed = printed.get((str(table), *key))
    return grid


def published_text(cell: Cell) -> str:
    """The paper's number as printed: estimate with its stars, t or SE beneath in brackets."""
    if cell.printed is not None and not is_missing(cell.printed.get("estimate")):
        p = cell.printed
        star = "*" * int(float(p["stars"])) if not is_missing(p.get("stars")) else ""
        beneath = ""
        if not is_missing(p.get("printed_kind")):
            beneath = f" ({p['printed_kind']} {p['printed']})"
        return f"{p['estimate']}{star}{beneath}"
    if cell.published is None:
        return ""
    return fmt(cell.published.get("estimate"))


def frequentist_text(cell: Cell) -> str:
    """Estimate with stars from its p-value (or t), and t in brackets; a row that is an
    interval without a standard error (an honest confidence set, a threshold's likelihood
    ratio interval) shows the interval instead."""
    f = cell.frequentist
    if f is None or is_missing(f.get("estimate")):
        return ""
    text = fmt(f["estimate"]) + stars(f.get("p_value"), f.get("stat"))
    if not is_missing(f.get("stat")) and not is_missing(f.get("std_error")):
        text += f" (t {float(f['stat']):.2f})"
    elif (is_missing(f.get("std_error")) and not is_missing(f.get("ci_low"))
          and not is_missing(f.get("ci_high"))):
        text += f" [{fmt(f['ci_low'], 3)}, {fmt(f['ci_high'], 3)}]"
    return text


def bayesian_text(cell: Cell) -> str:
    """Posterior mean (sd) [94% HDI] P(>0)."""
    b = cell.bayesian
    if b is None or is_missing(b.get("estimate")):
        return ""
    text = fmt(b["estimate"])
    if not is_missing(b.get("std_error")):
        text += f" (sd {fmt(b['std_error'])})"
    if not is_missing(b.get("ci_low")) and not is_missing(b.get("ci_high")):
        text += f" [{fmt(b['ci_low'], 3)}, {fmt(b['ci_high'], 3)}]"
    if not is_missing(b.get("prob_positive")):
        text += f" P(>0) {float(b['prob_positive']):.2f}"
    return text


def diagnostics_text(cell: Cell) -> str:
    """R-hat and bulk ESS of the Bayesian number, and in words whether it converged."""
    b = cell.bayesian
    if b is None:
        return ""
    parts = []
    if not is_missing(b.get("r_hat")):
        parts.append(f"R-hat {float(b['r_hat']):.3f}")
    if not is_missing(b.get("ess_bulk")):
        parts.append(f"ESS {float(b['ess_bulk']):.0f}")
    text = ", ".join(parts)
    if not cell.converged:
        note = str(b["note"])
        short = note if len(note) <= 90 else note[:87].rsplit(" ", 1)[0] + "..."
        text = f"NOT CONVERGED ({text}): {short}"
    return text


def moments_grid(results: pd.DataFrame, table: str = "1", columns: list[str] | None = None):
    """Table 1 as variable x statistic: (statistics, variables, {(variable, stat): (published,
    data)}); ``columns`` limits the statistics (default: all of the table's)."""
    subset = results[results["table"].astype(str) == str(table)]
    if columns:
        subset = subset[subset["column"].astype(str).isin(columns)]
    present = set(subset["column"].astype(str))
    statistics = [s for s in MOMENT_ORDER if s in present]
    statistics += sorted(present - set(statistics))
    variables = list(dict.fromkeys(subset["term"].astype(str)))
    values: dict[tuple[str, str], tuple[float | None, float | None]] = {}
    for variable in variables:
        for stat in statistics:
            rows = subset[(subset["term"].astype(str) == variable)
                          & (subset["column"].astype(str) == stat)]
            pub = rows.loc[rows["source"] == "published", "estimate"]
            data = rows.loc[rows["source"] != "published", "estimate"]
            values[(variable, stat)] = (pub.iloc[0] if len(pub) else None,
                                        data.iloc[0] if len(data) else None)
    return statistics, variables, values

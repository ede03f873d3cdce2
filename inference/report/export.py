"""Every side-by-side table as LaTeX (booktabs) and Markdown, esttab-like, ready for a paper:
terms as rows, the paper's columns as columns, in each cell the published, frequentist and
Bayesian numbers on three lines."""

from __future__ import annotations

from pathlib import Path

from inference.report.page import anchor
from inference.report.sections import cell_for_export
from inference.report.tables import Grid, moments_grid

LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                 "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 ">": r"$>$", "<": r"$<$"}


def _latex(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(c, c) for c in text)


def grid_latex(grid: Grid, note: str) -> str:
    """A booktabs table: a row per term with its published, frequentist and Bayesian lines."""
    columns = "l" + "c" * len(grid.columns)
    lines = [r"\begin{table}[htbp]\centering\small",
             rf"\caption{{Table {_latex(grid.table)}: published / frequentist / Bayesian}}",
             rf"\begin{{tabular}}{{{columns}}}", r"\toprule",
             " & " + " & ".join(f"({_latex(c)})" for c in grid.columns) + r" \\", r"\midrule"]
    for term in grid.terms:
        texts = []
        for column in grid.columns:
            cell = grid.cell(column, term)
            texts.append(cell_for_export(cell) if cell else ("", "", ""))
        for line, label in enumerate(("P", "F", "B")):
            first = _latex(term) + f" [{label}]" if line == 0 else f"\\quad [{label}]"
            lines.append(first + " & " + " & ".join(_latex(t[line]) for t in texts) + r" \\")
        lines.append(r"\addlinespace")
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\par\footnotesize {_latex(note)}", r"\end{table}", ""]
    return "\n".join(lines)


def grid_markdown(grid: Grid, note: str) -> str:
    """A pipe table with the three numbers of a cell separated by line breaks."""
    head = "| term | " + " | ".join(f"({c})" for c in grid.columns) + " |"
    rule = "|---|" + "---|" * len(grid.columns)
    rows = []
    for term in grid.terms:
        cells = []
        for column in grid.columns:
            cell = grid.cell(column, term)
            parts = cell_for_export(cell) if cell else ("", "", "")
            cells.append("<br>".join(f"{k} {v}" for k, v in zip("PFB", parts) if v))
        rows.append(f"| {term} | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join([f"**Table {grid.table}**", "", head, rule, *rows, "", note, ""])


def write_tables(grids: list[Grid], folder: Path, bundle) -> list[Path]:
    """Write ``table_<t>.tex`` and ``table_<t>.md`` (the grids of one table together)."""
    folder.mkdir(parents=True, exist_ok=True)
    note = ("P: published as printed (t or se in brackets); F: frequentist, computed here; "
            "B: posterior mean (sd) [94% HDI] P(>0); NOT CONVERGED marks a fit whose R-hat, "
            "ESS or divergences failed the checks. Data: " + bundle.data_label + ".")
    by_table: dict[str, list[Grid]] = {}
    for grid in grids:
        by_table.setdefault(grid.table, []).append(grid)
    written = []
    for table, members in by_table.items():
        stem = f"table_{anchor(table)}"
        tex = folder / f"{stem}.tex"
        tex.write_text("\n".join(grid_latex(g, note) for g in members), encoding="utf-8")
        md = folder / f"{stem}.md"
        md.write_text("\n".join(grid_markdown(g, note) for g in members), encoding="utf-8")
        written += [tex, md]
    return written


def _number(value, stat: str = "") -> str:
    if value is None or value != value:
        return ""
    return f"{value:.0f}" if stat in ("n", "N", "obs") else f"{value:.3f}"


def write_moments(results, folder: Path, data_label: str, table: str = "1") -> list[Path]:
    """Table 1 as variable x statistic, the published number beside the data's, as
    ``table_1.tex`` and ``table_1.md``; nothing when the run has no such table."""
    statistics, variables, values = moments_grid(results, table)
    if not variables:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    note = f"P: as published; D: the same statistic of the data used here ({data_label})."
    columns = "l" + "c" * len(statistics)
    tex = [r"\begin{table}[htbp]\centering\small",
           rf"\caption{{Table {_latex(table)}: published / data}}",
           rf"\begin{{tabular}}{{{columns}}}", r"\toprule",
           "variable & " + " & ".join(_latex(s) for s in statistics) + r" \\", r"\midrule"]
    md = [f"**Table {table}**", "", "| variable | " + " | ".join(statistics) + " |",
          "|---|" + "---|" * len(statistics)]
    for variable in variables:
        pairs = [(_number(p, stat), _number(d, stat))
                 for stat, (p, d) in ((s, values[(variable, s)]) for s in statistics)]
        tex.append(_latex(variable) + " [P] & " + " & ".join(p for p, _ in pairs) + r" \\")
        tex.append(r"\quad [D] & " + " & ".join(d for _, d in pairs) + r" \\")
        md.append(f"| {variable} | " + " | ".join(
            "<br>".join(f"{k} {v}" for k, v in zip("PD", pair, strict=True) if v)
            for pair in pairs) + " |")
    tex += [r"\bottomrule", r"\end{tabular}", rf"\par\footnotesize {_latex(note)}",
            r"\end{table}", ""]
    stem = f"table_{anchor(table)}"
    (folder / f"{stem}.tex").write_text("\n".join(tex), encoding="utf-8")
    (folder / f"{stem}.md").write_text("\n".join([*md, "", note, ""]), encoding="utf-8")
    return [folder / f"{stem}.tex", folder / f"{stem}.md"]

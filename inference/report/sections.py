"""Sections of the page, one builder per kind of specification, found in a registry.

``SECTION_BUILDERS`` maps a spec ``kind`` (``twfe``, ``threshold``, ``heterogeneity``, ...)
to a function ``(context, table, columns) -> html``; a kind without its own builder gets the
paper-layout grid (:func:`grid_section`), so new families' rows appear as soon as they are in
``results.csv``. Register a new one with ``@register_section("event_study")``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field

from inference.report.draws import term_draws
from inference.report.figures import file_data_uri, group_forest, img
from inference.report.tables import (
    Cell,
    Grid,
    bayesian_text,
    build_grid,
    diagnostics_text,
    fmt,
    frequentist_text,
    moments_grid,
    published_text,
)

SectionBuilder = Callable[["Context", str, list[str]], str]
SECTION_BUILDERS: dict[str, SectionBuilder] = {}


@dataclass
class Context:
    """What every section builder may read."""

    bundle: object
    study: object | None
    printed: dict
    suffix: str
    grids: list[Grid] = field(default_factory=list)
    placed: set = field(default_factory=set)

    def spec(self, table: str, column: str):
        """The registry spec of a cell, or None (routed columns have none of their own)."""
        if self.study is None:
            return None
        for spec in self.study.specs:
            if spec.table == table and spec.column == column:
                return spec
        return None

    def kind(self, table: str, column: str) -> str:
        """The spec kind of a column; a column without its own spec takes its table's."""
        spec = self.spec(table, column)
        if spec is not None:
            return spec.kind
        if self.study is not None:
            kinds = [s.kind for s in self.study.specs if s.table == table]
            if kinds:
                return kinds[0]
        return "published"

    def missing_bayes_reason(self, table: str, column: str, term: str = "") -> str:
        """Why a cell has no Bayesian number, in words."""
        results = self.bundle.results
        in_column = results[(results["table"].astype(str) == table)
                             & (results["column"].astype(str) == column)]
        if (in_column["source"] == "bayesian").any():
            if term == "Constant":
                return "not a parameter of the Bayesian model (absorbed by its effects)"
            if term == "R2":
                return "no Bayesian counterpart of R2"
            if in_column.loc[in_column["term"] == term, "std_error"].isna().all():
                return "a frequentist statistic, with no posterior counterpart"
            return "not a parameter of the Bayesian model"
        if self.bundle.meta.get("frequentist_only"):
            return "no posterior: a --frequentist-only run"
        for line in self.bundle.meta.get("skipped", []):
            if f"table {table} column {column}:" in line:
                return "no posterior: " + line.split(":", 1)[1].strip()
        spec = self.spec(table, column)
        if spec is not None and not spec.bayes:
            return "no posterior: bayes = false for this specification"
        if spec is None and self.study is not None:
            # Columns an estimator routes to its table (mediation's steps) share its spec.
            owners = [s for s in self.study.specs if s.table == table]
            if owners and not any(s.bayes for s in owners):
                return (f"no posterior: bayes = false for the table's {owners[0].kind} "
                        "specification")
        return "no Bayesian counterpart in this run"


def register_section(kind: str) -> Callable[[SectionBuilder], SectionBuilder]:
    """Decorator: use ``builder`` for the tables (or extra columns) of ``kind``."""
    def decorate(builder: SectionBuilder) -> SectionBuilder:
        """Record ``builder`` for ``kind`` and hand it back unchanged."""
        SECTION_BUILDERS[kind] = builder
        return builder
    return decorate


def section_for(kind: str) -> SectionBuilder:
    """The builder registered for ``kind``, else the paper-layout grid."""
    return SECTION_BUILDERS.get(kind, grid_section)


def _cell_html(context: Context, grid: Grid, column: str, term: str) -> str:
    cell = grid.cell(column, term)
    if cell is None:
        return "<td class='cell empty'></td>"
    has_published = cell.published is not None
    pub = published_text(cell) if has_published else "not published"
    freq = frequentist_text(cell) or "not estimated here"
    if cell.bayesian is not None:
        bayes = bayesian_text(cell) or "no posterior summary"
    else:
        bayes = context.missing_bayes_reason(grid.table, column, term)
    diag = diagnostics_text(cell)
    converged = cell.converged
    bayes_class = "bayes" + ("" if converged else " unconverged")
    parts = [f"<td class='cell{' published' if has_published else ''}' "
             f"data-column='{html.escape(column)}' data-term='{html.escape(term)}'>",
             f"<div class='pub'><span class='src'>P</span> {html.escape(str(pub))}</div>",
             f"<div class='freq'><span class='src'>F</span> {html.escape(freq)}</div>",
             f"<div class='{bayes_class}'><span class='src'>B</span> {html.escape(bayes)}"]
    if diag:
        full = "" if converged else f" title='{html.escape(str(cell.bayesian['note']))}'"
        parts.append(f"<br><small class='{'ok' if converged else 'warn'}'{full}>"
                     f"{html.escape(diag)}</small>")
    parts.append("</div>")
    flags = cell.flags()
    if flags:
        parts.append("<div class='flags'>&#9873; " + html.escape("; ".join(flags)) + "</div>")
    parts.append("</td>")
    return "".join(parts)


def grid_html(context: Context, grid: Grid, caption: str = "") -> str:
    """One table in the paper's layout, each cell published (P) | frequentist (F) |
    Bayesian (B)."""
    context.grids.append(grid)
    head = "".join(
        f"<th>({html.escape(c)})"
        + (f"<br><small>{html.escape(grid.labels[c])}</small>" if grid.labels.get(c) else "")
        + "</th>" for c in grid.columns)
    lines = [f"<table class='paper' data-table='{html.escape(grid.table)}'>",
             f"<caption>{html.escape(caption)}</caption>" if caption else "",
             f"<tr><th>term</th>{head}</tr>"]
    for term in grid.terms:
        cells = "".join(_cell_html(context, grid, c, term) for c in grid.columns)
        lines.append(f"<tr><td class='term'>{html.escape(term)}</td>{cells}</tr>")
    lines.append("</table>")
    return "".join(lines)


def _labels(context: Context, table: str, columns: list[str]) -> dict[str, str]:
    labels = {}
    for column in columns:
        spec = context.spec(table, column)
        if spec is not None and spec.label:
            labels[column] = spec.label
    return labels


def _table_figures(context: Context, table: str) -> str:
    """The estimators' figures of this table (LR curves, regime slopes, event paths)."""
    figures = [p for p in context.bundle.figures()
               if f"_table{table}_" in p.name or f"_{table}_" in p.name]
    context.placed.update(p.name for p in figures)
    return "".join(img(file_data_uri(p), f"{p.stem.replace('_', ' ')}{context.suffix}")
                   for p in figures)


def grid_section(context: Context, table: str, columns: list[str]) -> str:
    """The default section: the paper-layout grid of these columns and the table's figures."""
    grid = build_grid(context.bundle.results, table, columns, context.printed,
                      _labels(context, table, columns))
    return grid_html(context, grid) + _table_figures(context, table)


@register_section("descriptive")
def moments_section(context: Context, table: str, columns: list[str]) -> str:
    """Table 1 as variable x statistic, the paper's number beside the data's."""
    statistics, variables, values = moments_grid(context.bundle.results, table, columns)
    head = "".join(f"<th>{html.escape(s)}</th>" for s in statistics)
    lines = [f"<table class='paper moments' data-table='{html.escape(table)}'>"
             f"<tr><th>variable</th>{head}</tr>"]
    for variable in variables:
        cells = []
        for stat in statistics:
            published, data = values[(variable, stat)]
            cells.append("<td class='cell" + (" published" if published is not None else "")
                         + f"'><div class='pub'><span class='src'>P</span> "
                         f"{fmt(published, 3) or '&ndash;'}"
                         f"</div><div class='freq'><span class='src'>D</span> "
                         f"{fmt(data, 3) or 'not in the data'}</div></td>")
        lines.append(f"<tr><td class='term'>{html.escape(variable)}</td>{''.join(cells)}</tr>")
    lines.append("</table><p class='note'>P: as published; D: the same statistic of the data "
                 f"used here{html.escape(context.suffix)}.</p>")
    return "".join(lines)


@register_section("heterogeneity")
def heterogeneity_section(context: Context, table: str, columns: list[str]) -> str:
    """Group slopes in one model: the grid, then P(g > h) of every pair in words."""
    out = [grid_section(context, table, columns)]
    results = context.bundle.results
    rows = results[(results["table"].astype(str) == table)
                   & results["column"].astype(str).isin(columns)
                   & (results["source"] == "bayesian")
                   & results["term"].astype(str).str.contains(r"\]-", regex=True)]
    for column in columns:
        idata = context.bundle.posterior(table, column)
        terms = results.loc[(results["table"].astype(str) == table)
                            & (results["column"].astype(str) == column)
                            & (results["source"] == "bayesian"), "term"].astype(str)
        draws = {t: term_draws(idata, t) for t in terms if "[" in t and "]-" not in t}
        draws = {t: d for t, d in draws.items() if d is not None}
        uri = group_forest(draws, f"group slopes, table {table} column {column} (94% HDI)"
                           f"{context.suffix}")
        if uri:
            out.append(img(uri, f"group slopes, table {table} column {column}"))
    if len(rows):
        out.append("<ul class='pairs'>")
        for row in rows.itertuples():
            if row.prob_positive == row.prob_positive:
                left, right = str(row.term).split("-", 1)
                out.append(f"<li>column {html.escape(str(row.column))}: P({html.escape(left)} "
                           f"&gt; {html.escape(right)}) = {row.prob_positive:.2f}</li>")
        out.append("</ul>")
    return "".join(out)


def cell_for_export(cell: Cell) -> tuple[str, str, str]:
    """The three lines of a cell as plain text, for LaTeX and Markdown; a Bayesian number of a
    fit that did not converge says so in front of it."""
    bayes = bayesian_text(cell)
    if bayes and not cell.converged:
        bayes = "NOT CONVERGED: " + bayes
    return published_text(cell), frequentist_text(cell), bayes

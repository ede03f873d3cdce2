"""The human-readable report: published | frequentist | Bayesian side by side, as HTML."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from inference.results import SOURCES

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 75em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td.term { text-align: left; font-weight: 600; }
.synthetic { background: #fff3cd; border: 2px solid #e0a800; padding: 0.8em; font-weight: 600; }
.warn { color: #a00; font-weight: 600; } .ok { color: #070; }
"""


def _fmt(value: float, digits: int = 4) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) \
        else f"{value:.{digits}f}"


def _cell(row: pd.Series | None, source: str) -> str:
    if row is None:
        return "<td></td>"
    estimate = _fmt(row["estimate"])
    if source == "bayesian":
        text = (f"{estimate} ({_fmt(row['std_error'])})<br>[{_fmt(row['ci_low'])}, "
                f"{_fmt(row['ci_high'])}]")
        flagged = isinstance(row.get("note"), str) and row["note"]
        diag = f"R-hat {_fmt(row['r_hat'], 3)}, ESS {_fmt(row['ess_bulk'], 0)}"
        text += f"<br><small class='{'warn' if flagged else 'ok'}'>{diag}"
        text += (f": NOT CONVERGED, {html.escape(row['note'])}" if flagged else "") + "</small>"
        return f"<td>{text}</td>"
    stat = _fmt(row["stat"], 2)
    return f"<td>{estimate}{f' ({stat})' if stat else ''}</td>"


def comparison_table(results: pd.DataFrame, table: str) -> str:
    """HTML table of one published table: a row per (column, term), a column per source."""
    subset = results[results["table"] == table]
    header = ("<tr><th>column</th><th>term</th><th>published<br>estimate (t)</th>"
              "<th>frequentist<br>estimate (t)</th><th>Bayesian<br>mean (sd) [94% HDI]</th></tr>")
    lines = [header]
    for (column, term), group in subset.groupby(["column", "term"], sort=False):
        by_source = {s: group[group["source"] == s] for s in SOURCES}
        cells = "".join(
            _cell(by_source[s].iloc[0] if len(by_source[s]) else None, s) for s in SOURCES
        )
        lines.append(f"<tr><td>{html.escape(str(column))}</td>"
                     f"<td class='term'>{html.escape(str(term))}</td>{cells}</tr>")
    return "<table>" + "".join(lines) + "</table>"


def _posterior_figure(bayesian: pd.DataFrame, frequentist: pd.DataFrame,
                      published: pd.DataFrame, path: Path, title: str) -> Path:
    """Bayesian 94% HDIs beside frequentist 95% CIs and published points, one line per term."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tidy = bayesian.dropna(subset=["ci_low", "ci_high"]).reset_index(drop=True)
    terms = list(tidy["term"])
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(terms) + 1.2))
    for i, term in enumerate(terms):
        b = tidy.iloc[i]
        ax.plot([b["ci_low"], b["ci_high"]], [i, i], color="C0", lw=3)
        ax.plot(b["estimate"], i, "o", color="C0", label="Bayesian 94% HDI" if i == 0 else None)
        f = frequentist[frequentist["term"] == term]
        if len(f):
            f = f.iloc[0]
            ax.errorbar(f["estimate"], i + 0.2, xerr=1.96 * f["std_error"], fmt="s", color="C1",
                        label="frequentist 95% CI" if i == 0 else None)
        p = published[published["term"] == term]
        if len(p):
            ax.plot(p.iloc[0]["estimate"], i - 0.2, "D", color="C3",
                    label="published" if i == 0 else None)
    ax.set_yticks(range(len(terms)), terms)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _sensitivity_section(sensitivity: pd.DataFrame) -> str:
    """Power-scaling prior sensitivity: a summary line and the parameters that are flagged."""
    if sensitivity is None or not len(sensitivity):
        return ""
    flagged = sensitivity[sensitivity["diagnosis"] != "data-driven"]
    lines = ["<h2>Prior sensitivity (power-scaling)</h2>",
             f"<p>{len(sensitivity)} posterior quantities checked by power-scaling the prior "
             "and the likelihood (sensitivity &ge; 0.05 flags); all of them are in "
             "<code>prior_sensitivity.csv</code>. "]
    if not len(flagged):
        lines.append("None is prior-sensitive: the data, not the priors, drive every "
                     "posterior.</p>")
        return "".join(lines)
    lines.append(f"{len(flagged)} are flagged:</p><table><tr><th>table</th><th>column</th>"
                 "<th>parameter</th><th>prior</th><th>likelihood</th><th>diagnosis</th></tr>")
    for row in flagged.itertuples():
        lines.append(f"<tr><td>{html.escape(str(row.table))}</td>"
                     f"<td>{html.escape(str(row.column))}</td>"
                     f"<td class='term'>{html.escape(row.parameter)}</td>"
                     f"<td>{row.prior_sensitivity:.3f}</td>"
                     f"<td>{row.likelihood_sensitivity:.3f}</td>"
                     f"<td class='warn'>{html.escape(row.diagnosis)}</td></tr>")
    lines.append("</table>")
    return "".join(lines)


def write_report(outcome) -> Path:
    """Write ``index.html`` (and its figures) for a finished run; return its path."""
    results, out_dir, dataset = outcome.results, outcome.out_dir, outcome.dataset
    parts = [f"<html><head><meta charset='utf-8'><title>{outcome.study.name}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(outcome.study.title)}</h1>"]
    banner_class = "synthetic" if dataset.synthetic else ""
    parts.append(f"<p class='{banner_class}'>{html.escape(dataset.banner)}</p>")
    parts.append(f"<p>Data: {html.escape(dataset.label)}; {len(dataset.frame):,} rows. "
                 "Published numbers are printed as in the paper (t in parentheses). Frequentist "
                 "and Bayesian numbers are computed here.</p>")
    bayes = results[results["source"] == "bayesian"]
    if len(bayes):
        flagged = bayes[bayes["note"].astype(str) != ""]
        if len(flagged):
            parts.append(f"<p class='warn'>{len(flagged)} Bayesian estimates did NOT converge "
                         "(R-hat > 1.01, bulk ESS < 400 or divergences): treat them as "
                         "unreliable; they are marked in the tables.</p>")
        else:
            parts.append("<p class='ok'>Every Bayesian estimate passed the convergence checks "
                         "(R-hat &le; 1.01, bulk ESS &ge; 400, no divergences).</p>")
    for table in dict.fromkeys(results["table"]):
        parts.append(f"<h2>Table {html.escape(str(table))}</h2>")
        parts.append(comparison_table(results, table))
        in_table = results[results["table"] == table]
        for column in dict.fromkeys(in_table.loc[in_table["source"] == "bayesian", "column"]):
            cell = in_table[in_table["column"] == column]
            figure = _posterior_figure(
                cell[cell["source"] == "bayesian"], cell[cell["source"] == "frequentist"],
                cell[cell["source"] == "published"],
                out_dir / f"posterior_table{table}_col{column}.png",
                f"Table {table} column {column}"
                + (" (SYNTHETIC data)" if dataset.synthetic else ""),
            )
            parts.append(f"<img src='{figure.name}' alt='posterior, table {table} column "
                         f"{column}'>")
    parts.append(_sensitivity_section(getattr(outcome, "sensitivity", pd.DataFrame())))
    if outcome.figures:
        parts.append("<h2>Figures</h2>")
        parts.extend(f"<img src='{html.escape(Path(f).name)}' alt='{html.escape(Path(f).stem)}'>"
                     for f in dict.fromkeys(outcome.figures))
    if outcome.skipped:
        parts.append("<h2>Not run</h2><ul>" + "".join(
            f"<li>{html.escape(s)}</li>" for s in outcome.skipped) + "</ul>")
    parts.append("</body></html>")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path

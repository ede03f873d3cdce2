"""The report section of a sensitivity run (``python -m inference sensitivity``), read from its
folder: the prior grid (the key estimand and the claims under every prior alternative next to
the default), the power-scaling diagnosis in words, and the figures.

The study's report shows it when the run folder holds ``sensitivity/`` (the command's default
output folder); the sensitivity folder also gets a page of its own, ``index.html``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from inference.report.figures import file_data_uri, img
from inference.report.page import SYNTHETIC_BANNER, Page
from inference.report.tables import fmt

FOLDER = "sensitivity"


def _meta(folder: Path) -> dict:
    try:
        return json.loads((folder / "sensitivity.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _grid_table(rows: pd.DataFrame) -> str:
    claims = [c for c in rows.columns if c.startswith("claim_") and rows[c].notna().any()]
    head = ("<tr><th>role</th><th>alternative</th><th>prior</th><th>mean (sd) [94% HDI]</th>"
            "<th>P(&gt;0)</th><th>shift (default sd)</th>"
            + "".join(f"<th>P({html.escape(c.removeprefix('claim_'))})</th>" for c in claims)
            + "<th>convergence</th></tr>")
    body = []
    for row in rows.itertuples():
        converged = bool(row.converged)
        style = "" if converged else " style='color:#999;text-decoration:line-through'"
        number = (f"{fmt(row.mean)} ({fmt(row.sd)}) [{fmt(row.hdi_low)}, {fmt(row.hdi_high)}]"
                  if pd.notna(row.mean) else "&mdash;")
        cells = "".join(f"<td{style}>{fmt(getattr(row, c), 3)}</td>" for c in claims)
        verdict = html.escape(str(row.convergence))
        body.append(
            f"<tr><td class='term'>{html.escape(str(row.role))}</td>"
            f"<td>{html.escape(str(row.alternative))}</td>"
            f"<td class='note' style='text-align:left'>{html.escape(str(row.prior))}</td>"
            f"<td{style}>{number}</td><td{style}>{fmt(row.prob_positive, 3)}</td>"
            f"<td{style}>{fmt(row.shift_sd, 2)}</td>{cells}"
            f"<td class='{'ok' if converged else 'warn'}' style='text-align:left'>{verdict}"
            "</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _diagnosis_table(rows: pd.DataFrame) -> str:
    body = "".join(
        f"<tr><td class='term'>{html.escape(str(r.quantity))}</td>"
        f"<td>{fmt(getattr(r, 'prior_sensitivity', float('nan')), 3)}</td>"
        f"<td>{fmt(getattr(r, 'likelihood_sensitivity', float('nan')), 3)}</td>"
        f"<td>{fmt(getattr(r, 'max_pareto_k_prior', float('nan')), 2)}</td>"
        f"<td>{fmt(getattr(r, 'max_pareto_k_likelihood', float('nan')), 2)}</td>"
        f"<td style='text-align:left'>{html.escape(str(r.diagnosis))}</td></tr>"
        for r in rows.itertuples())
    note = rows["refit"].iloc[0] if "refit" in rows and len(rows) else ""
    return ("<table><tr><th>quantity</th><th>prior sensitivity</th><th>likelihood "
            "sensitivity</th><th>max Pareto k (prior)</th><th>max Pareto k (likelihood)</th>"
            f"<th>diagnosis</th></tr>{body}</table>"
            f"<p class='note'>{html.escape(str(note))}</p>")


def _claims_table(claims: pd.DataFrame) -> str:
    """Every claim of the ledger: its probability under the default prior and its range over
    the grid, or why this run gives it none."""
    body = "".join(
        f"<tr><td class='term'>{html.escape(str(r.claim_id))}</td>"
        f"<td style='text-align:left'>{html.escape(str(r.claim))}</td>"
        f"<td>{html.escape(str(r.rests_on))}</td>"
        f"<td>{fmt(r.default_probability, 3)}</td>"
        + (f"<td>{fmt(r.min_probability, 3)} &ndash; {fmt(r.max_probability, 3)}</td>"
           if pd.notna(r.min_probability) else "<td>&mdash;</td>")
        + f"<td class='note' style='text-align:left'>{html.escape(str(r.status))}</td></tr>"
        for r in claims.itertuples())
    return ("<table><tr><th>claim</th><th>text</th><th>draws</th><th>P (default prior)</th>"
            f"<th>P range over the grid</th><th>status</th></tr>{body}</table>")


def sensitivity_section(folder: str | Path) -> str:
    """The section's HTML from a sensitivity folder; empty when it holds no ``prior_grid.csv``."""
    folder = Path(folder)
    if not (folder / "prior_grid.csv").exists():
        return ""
    grid = pd.read_csv(folder / "prior_grid.csv", dtype={"spec": str})
    diagnosis = (pd.read_csv(folder / "power_scaling_diagnosis.csv", dtype={"spec": str})
                 if (folder / "power_scaling_diagnosis.csv").exists() else pd.DataFrame())
    meta = _meta(folder)
    label = meta.get("data_label") or (grid["data_label"].iloc[0] if len(grid) else "")
    suffix = " (SYNTHETIC data)" if meta.get("synthetic") else ""
    quick = " (--quick)" if meta.get("quick") else ""
    parts = [
        f"<p>Data: {html.escape(str(label))}. Every Bayesian specification below was refitted "
        "under each alternative prior (or likelihood) of the grid; the default fit is the first "
        "row. <b>shift</b> is the move of the posterior mean from the default in units of the "
        "default's posterior sd. Claim probabilities are those of the claims ledger that rest "
        "on the specification alone; the table of claims below lists every claim of the "
        "ledger, with the reason where this run gives it none. A refit that did not converge "
        "is struck through and says why. Power-scaling scales the prior and the likelihood by "
        "alpha in [0.8, 1.25] by Pareto-smoothed importance weighting; where the Pareto k "
        "exceeds min(1 - 1/log10 S, 0.7) the model is refitted with the prior raised to alpha "
        "in closed form. Sampler: "
        f"{html.escape(json.dumps(meta.get('sampling', {})))}{quick}"
        f"; seed {meta.get('seed', '')}. Files: <code>{FOLDER}/prior_grid.csv</code>, "
        f"<code>{FOLDER}/power_scaling.csv</code>, "
        f"<code>{FOLDER}/power_scaling_diagnosis.csv</code>, <code>{FOLDER}/claims.csv</code>."
        f" Base of the grid: {html.escape(str(meta.get('prior_base', 'the default priors')))}"
        ".</p>"]
    if (folder / "claims.csv").exists():
        claims = pd.read_csv(folder / "claims.csv", dtype=str, keep_default_na=False)
        for name in ("default_probability", "min_probability", "max_probability"):
            claims[name] = pd.to_numeric(claims[name], errors="coerce")
        parts.append("<h3>Claims of the ledger under the grid</h3>" + _claims_table(claims))
    for spec in dict.fromkeys(grid["spec"]):
        rows = grid[grid["spec"] == spec]
        table, _, column = str(spec).partition("/")
        term = rows["term"].iloc[0]
        parts.append(f"<h3>Table {html.escape(table)} column {html.escape(column)}: "
                     f"{html.escape(str(term))} under each prior{html.escape(suffix)}</h3>")
        parts.append(_grid_table(rows))
        picture = folder / f"prior_grid_table{table}_col{column}.png"
        if picture.exists():
            parts.append(img(file_data_uri(picture), f"{spec}: key estimand and claims under "
                             f"each prior{suffix}"))
        if len(diagnosis):
            parts.append(f"<h4>Power-scaling diagnosis of {html.escape(str(spec))}</h4>")
            parts.append(_diagnosis_table(diagnosis[diagnosis["spec"] == spec]))
        picture = folder / f"power_scaling_table{table}_col{column}.png"
        if picture.exists():
            parts.append(img(file_data_uri(picture), f"{spec}: power-scaling sequence{suffix}"))
    return "".join(parts)


def write_page(folder: str | Path) -> Path:
    """``index.html`` of a sensitivity folder: the section alone, with the synthetic banner on
    synthetic data."""
    folder = Path(folder)
    meta = _meta(folder)
    synthetic = bool(meta.get("synthetic"))
    title = f"{meta.get('study', '')}: prior sensitivity{' (SYNTHETIC data)' if synthetic else ''}"
    page = Page(title, synthetic, SYNTHETIC_BANNER)
    page.add("Prior grid and power-scaling", sensitivity_section(folder), "prior-grid")
    path = folder / "index.html"
    path.write_text(page.render(), encoding="utf-8")
    return path

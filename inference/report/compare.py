"""Two runs side by side: per shared Bayesian term the shift of the posterior mean in posterior
sd units, the posteriors overlaid, and which conclusions (HDI excluding 0, sign, claims) change.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from inference.report.bundle import RunBundle, load_run
from inference.report.draws import term_draws
from inference.report.figures import img, overlay
from inference.report.page import Page
from inference.report.tables import fmt, is_missing

COMPARE_COLUMNS = ["table", "column", "term", "mean_a", "sd_a", "mean_b", "sd_b", "shift_sd",
                   "excludes_zero_a", "excludes_zero_b", "conclusion_changes", "converged_a",
                   "converged_b", "data_label_a", "data_label_b"]


def _excludes_zero(row) -> bool:
    return bool((not is_missing(row["ci_low"]) and row["ci_low"] > 0)
                or (not is_missing(row["ci_high"]) and row["ci_high"] < 0))


def shifts(a: RunBundle, b: RunBundle) -> pd.DataFrame:
    """One row per (table, column, term) with a Bayesian estimate in both runs: the shift
    (mean_b - mean_a) / sd_a and whether the HDI-excludes-0 conclusion or the sign changes."""
    keys = ["table", "column", "term"]
    left = a.results[a.results["source"] == "bayesian"].drop_duplicates(keys)
    right = b.results[b.results["source"] == "bayesian"].drop_duplicates(keys)
    merged = left.merge(right, on=keys, suffixes=("_a", "_b"))
    rows = []
    for r in merged.itertuples(index=False):
        r = r._asdict()
        sd_a = r["std_error_a"]
        shift = (r["estimate_b"] - r["estimate_a"]) / sd_a if sd_a and sd_a > 0 else np.nan
        ex_a = _excludes_zero({"ci_low": r["ci_low_a"], "ci_high": r["ci_high_a"]})
        ex_b = _excludes_zero({"ci_low": r["ci_low_b"], "ci_high": r["ci_high_b"]})
        sign = np.sign(r["estimate_a"]) != np.sign(r["estimate_b"])
        rows.append({"table": r["table"], "column": r["column"], "term": r["term"],
                     "mean_a": r["estimate_a"], "sd_a": sd_a, "mean_b": r["estimate_b"],
                     "sd_b": r["std_error_b"], "shift_sd": shift, "excludes_zero_a": ex_a,
                     "excludes_zero_b": ex_b,
                     "conclusion_changes": bool(ex_a != ex_b or (sign and (ex_a or ex_b))),
                     "converged_a": is_missing(r["note_a"]) or r["note_a"] == "",
                     "converged_b": is_missing(r["note_b"]) or r["note_b"] == "",
                     "data_label_a": a.data_label, "data_label_b": b.data_label})
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def _claims_changes(a: RunBundle, b: RunBundle) -> pd.DataFrame:
    from inference.claims import evaluate_claims

    ca = evaluate_claims(a, seed=0)
    cb = evaluate_claims(b, seed=0)
    if not len(ca) or not len(cb):
        return pd.DataFrame()
    merged = ca.merge(cb, on=["claim_id", "claim"], suffixes=("_a", "_b"))
    merged["verdict_changes"] = [str(x).split(":")[0] != str(y).split(":")[0]
                                 for x, y in zip(merged["verdict_a"], merged["verdict_b"])]
    return merged


def _label(bundle: RunBundle, name: str) -> str:
    priors = ", ".join(bundle.meta.get("priors", []) or []) or "default priors"
    return f"{name}: {bundle.folder} ({bundle.data_label}; {priors}; seed " \
           f"{bundle.meta.get('seed', '?')})"


def compare_runs(dir_a: str | Path, dir_b: str | Path, out: str | Path | None = None,
                 key_term: str | None = None, progress=print) -> pd.DataFrame:
    """Compare the runs in ``dir_a`` and ``dir_b``; write ``compare.csv`` and ``compare.html``
    into ``out`` (default ``dir_b/compare``) and return the shift table."""
    a, b = load_run(dir_a), load_run(dir_b)
    if a.study != b.study:
        raise ValueError(f"{dir_a} is a run of '{a.study}' and {dir_b} of '{b.study}': only runs "
                         "of one study can be compared")
    out_dir = Path(out) if out else Path(dir_b) / "compare"
    out_dir.mkdir(parents=True, exist_ok=True)
    table = shifts(a, b)
    table.to_csv(out_dir / "compare.csv", index=False, float_format="%.6g")
    if key_term is None:
        from inference.report.build import _key_term, _study

        key_term = _key_term(a.study, _study(a.study, a.meta, a.folder))
    synthetic = a.synthetic or b.synthetic
    suffix = " (SYNTHETIC data)" if synthetic else ""
    page = Page(f"Comparison of two {a.study} runs{suffix}", synthetic,
                "SYNTHETIC DATA in at least one run: differences check the workflow, not China.")
    page.add("Runs", f"<ul><li>{html.escape(_label(a, 'A'))}</li>"
             f"<li>{html.escape(_label(b, 'B'))}</li></ul>", "runs")
    changed = table[table["conclusion_changes"]]
    key_rows = table[table["term"] == key_term] if key_term else table.iloc[0:0]
    summary = [f"<p>{len(table)} Bayesian terms in both runs; {len(changed)} change their "
               "conclusion (94% HDI excluding 0, or the sign).</p>"]
    if len(key_rows):
        largest = key_rows.iloc[int(np.nanargmax(np.abs(key_rows["shift_sd"].to_numpy())))]
        summary.append(f"<p>The {html.escape(key_term)} slope moves by up to "
                       f"<b id='key-shift'>{largest['shift_sd']:+.2f}</b> posterior sd (table "
                       f"{html.escape(largest['table'])} column {html.escape(largest['column'])}"
                       f": {fmt(largest['mean_a'])} &rarr; {fmt(largest['mean_b'])}).</p>")
    page.add("Summary", "".join(summary), "summary")
    rows = "".join(
        f"<tr class='shift{' warn' if r.conclusion_changes else ''}'><td>{html.escape(r.table)}"
        f"</td><td>{html.escape(r.column)}</td><td class='term'>{html.escape(r.term)}</td>"
        f"<td>{fmt(r.mean_a)} ({fmt(r.sd_a)})</td><td>{fmt(r.mean_b)} ({fmt(r.sd_b)})</td>"
        f"<td>{r.shift_sd:+.2f}</td><td>{'yes' if r.conclusion_changes else 'no'}</td>"
        f"<td>{'' if r.converged_a and r.converged_b else 'NOT CONVERGED in a run'}</td></tr>"
        for r in table.itertuples())
    page.add("Shift per term", "<table><tr><th>table</th><th>column</th><th>term</th><th>A mean"
             " (sd)</th><th>B mean (sd)</th><th>shift (sd of A)</th><th>conclusion changes</th>"
             f"<th>convergence</th></tr>{rows}</table>", "shifts")
    claims = _claims_changes(a, b)
    if len(claims):
        rows = "".join(f"<tr><td>{html.escape(r.claim)}</td><td>{html.escape(r.verdict_a)}</td>"
                       f"<td>{html.escape(r.verdict_b)}</td><td>"
                       f"{'CHANGES' if r.verdict_changes else 'same'}</td></tr>"
                       for r in claims.itertuples())
        page.add("Claims", "<table class='claims'><tr><th>claim</th><th>A</th><th>B</th>"
                 f"<th></th></tr>{rows}</table>", "claims")
    figures = []
    # The largest shifts first, at most a dozen: each overlay is a figure to encode.
    order = key_rows.assign(size=key_rows["shift_sd"].abs()).sort_values("size", ascending=False)
    for r in order.head(12).itertuples():
        draws = [term_draws(bundle.posterior(r.table, r.column), r.term) for bundle in (a, b)]
        if draws[0] is not None and draws[1] is not None:
            figures.append(img(overlay(draws[0], draws[1], ("A", "B"),
                                       f"{r.term}, table {r.table} column {r.column}{suffix}"),
                               f"{r.term} table {r.table} column {r.column}: A vs B"))
    page.add(f"Posteriors of {key_term}, A against B", "".join(figures), "overlays")
    path = out_dir / "compare.html"
    path.write_text(page.render(), encoding="utf-8")
    progress(f"[compare] wrote {path} and {out_dir / 'compare.csv'}")
    return table

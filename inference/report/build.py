"""Build the report of a finished run from its folder: ``index.html`` (one self-contained
file), ``claims.csv`` and ``tables/`` (LaTeX and Markdown), without refitting anything."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pandas as pd

from inference.report.bundle import RunBundle, load_run, write_run_meta
from inference.report.figures import (
    file_data_uri,
    forest,
    img,
    ppc_plot,
    ppc_summary,
    rank_grid,
    specification_curve,
    trace_plot,
)
from inference.report.page import SYNTHETIC_BANNER, Page, anchor
from inference.report.sections import Context, section_for
from inference.report.tables import MOMENT_ORDER, fmt, printed_published


def _study(name: str, meta: dict, folder: Path | None = None):
    """The study's registry entry (the run's own study file for a user study), or None."""
    from data.errors import DataError
    from inference.registry import STUDIES, load_study
    from inference.user_study import load_study_file

    try:
        if name not in STUDIES and folder is not None and (folder / "study.toml").exists():
            return load_study_file(folder / "study.toml")
        return load_study(name)
    except (KeyError, ValueError, OSError, DataError):
        return None


def _key_term(study: str, study_obj) -> str | None:
    import tomllib

    from inference.claims import claims_path

    path = claims_path(study)
    if path.exists():
        key = tomllib.loads(path.read_text(encoding="utf-8")).get("key_term")
        if key:
            return str(key)
    if study_obj is not None:
        for spec in study_obj.specs:
            if spec.regressors:
                return spec.regressors[0]
    return None


def _fits(results: pd.DataFrame) -> pd.DataFrame:
    """One row per Bayesian (table, column): converged or not, and the first problem."""
    bayes = results[results["source"] == "bayesian"]
    rows = []
    for (table, column), group in bayes.groupby(["table", "column"], sort=False):
        notes = [n for n in group["note"].astype(str) if n and n != "nan"]
        rows.append({"table": table, "column": column, "converged": not notes,
                     "problem": notes[0] if notes else ""})
    return pd.DataFrame(rows, columns=["table", "column", "converged", "problem"])


def convergence_verdict(results: pd.DataFrame) -> str:
    """The convergence of every Bayesian fit, in words."""
    fits = _fits(results)
    if not len(fits):
        return "<p>No Bayesian fit in this run (frequentist numbers only).</p>"
    bad = fits[~fits["converged"]]
    if not len(bad):
        return (f"<p class='ok' id='convergence-verdict'>All {len(fits)} Bayesian fits "
                "converged: R-hat &le; 1.01, bulk ESS &ge; 400 and no divergent transitions "
                "for every reported term.</p>")
    items = "".join(f"<li>Table {html.escape(str(r.table))} column {html.escape(str(r.column))}"
                    f": {html.escape(_shorten(r.problem, 300))}</li>" for r in bad.itertuples())
    return (f"<p class='warn' id='convergence-verdict'>{len(bad)} of {len(fits)} Bayesian fits "
            "did NOT converge (R-hat above 1.01, bulk ESS below 400 or divergent transitions); "
            "their numbers are struck through in the tables and must not be read as estimates "
            "until the fits are rerun with more tuning and draws (--draws, --tune, "
            "--target-accept).</p><details><summary>which fits, and why</summary>"
            f"<ul class='warn'>{items}</ul></details>")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rsplit(" ", 1)[0] + "..."


def _headline(results: pd.DataFrame, term: str | None, first: tuple | None = None) -> str:
    if term is None:
        return ""
    rows = results[results["term"].astype(str) == term]
    cells = list(dict.fromkeys(zip(rows["table"].astype(str), rows["column"].astype(str))))
    if first is not None and first in cells:
        cells.remove(first)
        cells.insert(0, first)
    for table, column in cells:
        here = rows[(rows["table"].astype(str) == table) & (rows["column"].astype(str) == column)]
        if set(here["source"]) >= {"published", "bayesian"}:
            break
    else:
        if not cells:
            return ""
        table, column = cells[0]
        here = rows[(rows["table"].astype(str) == table) & (rows["column"].astype(str) == column)]
    bits = []
    for source in ("published", "frequentist", "bayesian"):
        row = here[here["source"] == source]
        if len(row):
            r = row.iloc[0]
            extra = ""
            if source == "bayesian":
                extra = (f" (sd {fmt(r['std_error'])}, 94% HDI [{fmt(r['ci_low'], 3)}, "
                         f"{fmt(r['ci_high'], 3)}])")
                if str(r["note"]) not in ("", "nan"):
                    extra += " NOT CONVERGED"
            bits.append(f"{source} {fmt(r['estimate'])}{extra}")
    return (f"<p>Headline: the coefficient of <b>{html.escape(term)}</b> in table "
            f"{html.escape(table)} column {html.escape(column)}: {html.escape('; '.join(bits))}."
            "</p>")


def _summary(bundle: RunBundle, term: str | None, claims: pd.DataFrame) -> str:
    results = bundle.results
    counts = results["source"].value_counts()
    n_rows = bundle.meta.get("n_rows")
    parts = [f"<p>Data: <b id='data-label'>{html.escape(bundle.data_label)}</b>"
             + (f", {int(n_rows):,} rows" if n_rows else "") + ". "
             f"{int(counts.get('published', 0))} published numbers, "
             f"{int(counts.get('frequentist', 0))} frequentist and "
             f"{int(counts.get('bayesian', 0))} Bayesian estimates.</p>"]
    if bundle.synthetic:
        parts.append("<p class='synthetic'>On this synthetic panel the frequentist replication "
                     "lands near the published numbers by construction: agreement checks the "
                     "workflow and the models, not the paper's conclusions about China.</p>")
    first = None
    if len(claims):
        first = tuple(str(claims["headline"].iloc[0]).split("/")[:2]) or None
    parts.append(_headline(results, term, first))
    parts.append(convergence_verdict(results))
    if len(claims):
        assessed = claims["probability"].notna().sum()
        supported = claims["verdict"].str.startswith("supported").sum()
        parts.append(f"<p>Claims ledger: {len(claims)} claims, {assessed} with a posterior "
                     f"probability, {supported} supported (P &ge; 0.95); see "
                     "<a href='#claims'>the ledger</a>.</p>")
    return "".join(parts)


def _claims_html(claims: pd.DataFrame) -> str:
    if not len(claims):
        return ""
    lines = ["<table class='claims'><tr><th>claim</th><th>frequentist evidence (paper; here)"
             "</th><th>posterior quantity</th><th>probability</th><th>verdict</th></tr>"]
    for row in claims.itertuples():
        p = "" if pd.isna(row.probability) else f"{row.probability:.3f}"
        cls = "ok" if str(row.verdict).startswith("supported") else "warn"
        lines.append(f"<tr class='claim' data-claim='{html.escape(row.claim_id)}'>"
                     f"<td>{html.escape(row.claim)}</td>"
                     f"<td>{html.escape(row.frequentist_evidence)}</td>"
                     f"<td><code>{html.escape(row.posterior_quantity)}</code>"
                     f"<br><small>{html.escape(row.method)}</small></td><td>{p}</td>"
                     f"<td class='{cls}'>{html.escape(row.verdict)}</td></tr>")
    lines.append("</table><p class='note'>Also in <code>claims.csv</code>. Verdicts: supported "
                 "at P &ge; 0.95, contradicted at P &le; 0.05, uncertain between.</p>")
    return "".join(lines)


def _table_sections(context: Context, page: Page) -> None:
    results = context.bundle.results
    for table in dict.fromkeys(results["table"].astype(str)):
        subset = results[results["table"].astype(str) == table]
        columns = list(dict.fromkeys(subset["column"].astype(str)))
        # Moments (Table 1) read as variable x statistic; a table may hold both kinds.
        moments = [c for c in columns if c in MOMENT_ORDER]
        body = section_for("descriptive")(context, table, moments) if moments else ""
        published = [c for c in dict.fromkeys(
            subset.loc[subset["source"] == "published", "column"].astype(str))
            if c not in moments]
        groups: dict[str, list[str]] = {}
        if published:
            groups[context.kind(table, published[0])] = list(published)
        for column in columns:
            if column not in published and column not in moments:
                groups.setdefault(context.kind(table, column), []).append(column)
        body += "".join(section_for(kind)(context, table, cols) for kind, cols in groups.items())
        heading = f"Table {table}" if table[:1].isdigit() else f"Table: {table}"
        page.add(heading, body, f"table-{anchor(table)}")


def _diagnostics(bundle: RunBundle, term: str | None, suffix: str) -> str:
    """A rank plot of the key parameter of every fit; trace plots of flagged parameters."""
    from inference.report.draws import posterior_variable

    parts, flagged, ranked = [], [], []
    notes = bundle.results[bundle.results["source"] == "bayesian"]
    for (table, column, name) in bundle.posterior_files:
        idata = bundle.posterior(table, column, name)
        found = posterior_variable(idata, term) if term else None
        if found is None and "slope" in idata.posterior:
            coef = idata.posterior["slope"].dims[-1]
            found = ("slope", {coef: [str(idata.posterior[coef].values[0])]})
        label = f"table {table} column {column}{' ' + name if name else ''}"
        if found is not None:
            ranked.append((idata, found[0], found[1], label))
        cell_notes = notes[(notes["table"].astype(str) == table)
                           & (notes["column"].astype(str) == column)]["note"].astype(str)
        text = " ".join(n for n in cell_notes if n and n != "nan")
        for var in dict.fromkeys(re.findall(r"of (\w+) is", text)):
            if var in idata.posterior:
                flagged.append((idata, var, {}, label))
            else:
                hit = posterior_variable(idata, var)
                if hit is not None:
                    flagged.append((idata, hit[0], hit[1], label))
    traces = []
    for idata, var, coords, label in flagged[:6]:
        uri = trace_plot(idata, var, coords, f"trace of {var}, {label} (flagged){suffix}")
        if uri:
            traces.append(f"<figure><img src='{uri}' alt='trace {html.escape(var)} "
                          f"{html.escape(label)}'><figcaption>trace of {html.escape(var)}, "
                          f"{html.escape(label)} (flagged)</figcaption></figure>")
    uri = rank_grid(ranked, f"rank plots of the key parameter of every fit{suffix}")
    if uri:
        parts.append(img(uri, "rank plots of the key parameter of every fit"))
    if not parts and not traces:
        return ""
    text = ("<p>Rank plots (ArviZ): each chain's ranks should spread evenly; a chain piled to "
            "one side has not mixed.</p>")
    ppc = [k for k in bundle.posterior_files if "posterior_predictive" in bundle.groups(*k)]
    if not ppc:
        text += ("<p>No saved posterior holds posterior predictive draws, so no posterior "
                 "predictive check is drawn.</p>")
    for key in ppc:
        idata = _predictive(bundle, key)
        label = (f"posterior predictive check, table {key[0]} column {key[1]}"
                 f"{' ' + key[2] if key[2] else ''}{suffix}")
        uri = ppc_plot(idata, label)
        if uri:
            text += img(uri, label) + ppc_summary(idata)
    if traces:
        text += f"<h3>Trace plots of flagged parameters</h3>{''.join(traces)}"
    return text + "<h3>Rank plots</h3>" + "".join(parts)


def _predictive(bundle: RunBundle, key):
    """The groups of one saved fit that the posterior predictive check reads, as stored (its
    unit effects and log-likelihood, if left out, are not recomputed: the check needs neither)."""
    from models.bayes.storage import load_posterior

    return load_posterior(bundle.posterior_files[key],
                          groups=("posterior", "posterior_predictive", "observed_data"))


def build_report(study: str | None, source: str | Path, out: str | Path | None = None,
                 progress=print) -> Path:
    """Rebuild the report of the run in ``source`` into ``out`` (default: the same folder)
    from its results.csv, netCDF posteriors and run.json; nothing is fitted. Returns the path
    of ``index.html``; also writes ``claims.csv`` and ``tables/``."""
    from inference.claims import evaluate_claims
    from inference.report.export import write_moments, write_tables
    from inference.report.provenance import provenance_section
    from inference.report.sensitivity_section import FOLDER as SENSITIVITY_FOLDER
    from inference.report.sensitivity_section import sensitivity_section

    started = time.perf_counter()
    bundle = load_run(source, study)
    out_dir = Path(out) if out else bundle.folder
    out_dir.mkdir(parents=True, exist_ok=True)
    study_obj = _study(bundle.study, bundle.meta, bundle.folder)
    suffix = " (SYNTHETIC data)" if bundle.synthetic else ""
    term = _key_term(bundle.study, study_obj)
    claims = evaluate_claims(bundle, seed=int(bundle.meta.get("seed") or 0))
    claims.to_csv(out_dir / "claims.csv", index=False, float_format="%.4f")
    page = Page(f"{bundle.title}{suffix}", bundle.synthetic, SYNTHETIC_BANNER)
    page.add("Summary", _summary(bundle, term, claims), "summary")
    page.add("Claims ledger", _claims_html(claims), "claims")
    context = Context(bundle=bundle, study=study_obj, printed=printed_published(bundle.study),
                      suffix=suffix)
    page.add("How to read the tables",
             "<p>Each cell: <b>P</b> published as printed (stars; t or se in brackets), "
             "<b>F</b> the frequentist estimate computed here (stars from its p-value; t), "
             "<b>B</b> the posterior mean (sd) [94% HDI] and P(&gt; 0), with R-hat and bulk "
             "ESS. &#9873; flags where the posterior disagrees with the paper: a different "
             "sign, significance (any star) against the HDI excluding 0, or a gap beyond two "
             "posterior sd. Struck-through Bayesian numbers come from fits that did not "
             "converge.</p>", "legend")
    _table_sections(context, page)
    others = [p for p in bundle.figures() if p.name not in context.placed]
    page.add("Further figures", "".join(
        img(file_data_uri(p), f"{p.stem.replace('_', ' ')}{suffix}") for p in others),
        "figures")
    if term:
        curve = specification_curve(bundle.results, term, suffix)
        parts = [f"<figure><img src='{curve}' alt='specification curve of {term}'>"
                 f"<figcaption>specification curve of {html.escape(term)}</figcaption></figure>"
                 if curve else ""]
        forest_uri = forest(bundle, term, suffix)
        if forest_uri:
            parts.append(f"<figure><img src='{forest_uri}' alt='forest plot of {term}'>"
                         f"<figcaption>ArviZ forest plot of {html.escape(term)}</figcaption>"
                         "</figure>")
        page.add(f"The key coefficient ({term}) across specifications", "".join(parts),
                 "key-coefficient")
    page.add("Convergence diagnostics", _diagnostics(bundle, term, suffix), "diagnostics")
    page.add("Prior sensitivity (power-scaling)", _sensitivity(bundle.sensitivity),
             "sensitivity")
    page.add("Prior grid and power-scaling sequence",
             sensitivity_section(bundle.folder / SENSITIVITY_FOLDER), "prior-grid")
    page.add("Provenance", provenance_section(bundle), "provenance")
    skipped = bundle.meta.get("skipped") or []
    if skipped:
        page.add("Not run", "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in skipped)
                 + "</ul>", "not-run")
    exported = write_tables(context.grids, out_dir / "tables", bundle)
    exported += write_moments(bundle.results, out_dir / "tables", bundle.data_label)
    page.add("Exported tables", "<p>LaTeX (booktabs) and Markdown versions of every table "
             "above: " + ", ".join(f"<code>tables/{html.escape(p.name)}</code>"
                                   for p in exported) + ".</p>", "exported")
    path = out_dir / "index.html"
    path.write_text(page.render(), encoding="utf-8")
    progress(f"[{bundle.study}] report built from {bundle.folder} in "
             f"{time.perf_counter() - started:.1f} s: {path} "
             f"({path.stat().st_size / 1e6:.1f} MB, one file)")
    return path


def _sensitivity(sensitivity: pd.DataFrame) -> str:
    if sensitivity is None or not len(sensitivity):
        return ""
    flagged = sensitivity[sensitivity["diagnosis"] != "data-driven"]
    text = (f"<p>{len(sensitivity)} posterior quantities checked by power-scaling the prior and "
            "the likelihood (sensitivity &ge; 0.05 flags); all are in "
            "<code>prior_sensitivity.csv</code>. ")
    if not len(flagged):
        return text + "None is prior-sensitive: the data, not the priors, drive them.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(str(r.table))}</td><td>{html.escape(str(r.column))}</td>"
        f"<td class='term'>{html.escape(str(r.parameter))}</td><td>{fmt(r.prior_sensitivity, 3)}"
        f"</td><td>{fmt(r.likelihood_sensitivity, 3)}</td>"
        f"<td class='warn'>{html.escape(str(r.diagnosis))}</td></tr>"
        for r in flagged.itertuples())
    return (text + f"{len(flagged)} are flagged:</p><table><tr><th>table</th><th>column</th>"
            "<th>parameter</th><th>prior</th><th>likelihood</th><th>diagnosis</th></tr>"
            f"{rows}</table>")


def write_report(outcome) -> Path:
    """Write ``run.json`` for a finished run, then build its report from the folder (the same
    code as ``python -m inference report``)."""
    write_run_meta(outcome)
    return build_report(outcome.study.name, outcome.out_dir, outcome.out_dir,
                        progress=lambda _message: None)

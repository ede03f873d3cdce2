"""Provenance of a run: data file and hash, seed, package versions, priors, sampler settings and
per-model timings, read from ``run.json`` and the attributes of every saved posterior."""

from __future__ import annotations

import html
import json

from inference.report.bundle import RunBundle


def _attrs(idata) -> dict:
    attrs = dict(idata.posterior.attrs)
    for key in ("spec", "priors", "versions", "wall_times"):
        try:
            attrs[key] = json.loads(attrs.get(key, "{}"))
        except (TypeError, json.JSONDecodeError):
            attrs[key] = {}
    return attrs


def fit_provenance(bundle: RunBundle) -> list[dict]:
    """One dict per saved posterior: file, model, seed, data hash, sampler settings, times."""
    rows = []
    for key, path in bundle.posterior_files.items():
        attrs = _attrs(bundle.posterior(*key))
        spec, times = attrs["spec"], attrs["wall_times"]
        rows.append({"file": path.name, "model": attrs.get("model", ""),
                     "seed": attrs.get("seed", ""), "data_hash": str(attrs.get("data_hash", "")),
                     "sampler": spec.get("sampler", ""), "draws": spec.get("draws", ""),
                     "tune": spec.get("tune", ""), "chains": spec.get("chains", ""),
                     "target_accept": spec.get("target_accept", ""), "times": times,
                     "priors": attrs["priors"], "versions": attrs["versions"]})
    return rows


def provenance_section(bundle: RunBundle) -> str:
    """The provenance section of the page."""
    meta = bundle.meta
    items = [("data", bundle.data_label), ("data file", meta.get("data_path", "not recorded")),
             ("data file sha256", meta.get("data_sha256", "not recorded")),
             ("seed", meta.get("seed", "not recorded")),
             ("sampling", json.dumps(meta.get("sampling", "not recorded"))),
             ("user priors", ", ".join(meta.get("priors", []) or []) or "none (defaults)"),
             ("prior file", meta.get("prior_file") or "none"),
             ("run folder", str(bundle.folder))]
    if meta.get("command") or meta.get("status"):
        status = meta.get("status", "status not recorded")
        items.append(("run", f"{meta.get('command', '')} ({status})"))
    if meta.get("timings"):
        items.append(("run time", ", ".join(f"{k} {v} s" for k, v in meta["timings"].items())))
    fits = fit_provenance(bundle)
    if fits:
        versions = fits[0]["versions"]
        items.append(("package versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    parts = ["<table class='provenance'>" + "".join(
        f"<tr><th>{html.escape(k)}</th><td style='text-align:left'>{html.escape(str(v))}</td>"
        "</tr>" for k, v in items) + "</table>"]
    if fits:
        parts.append("<h3>Per model</h3><table><tr><th>posterior file</th><th>model</th>"
                     "<th>seed</th><th>data hash</th><th>sampler</th><th>chains x draws "
                     "(tune)</th><th>target accept</th><th>compile s</th><th>sampling s</th>"
                     "<th>total s</th></tr>")
        for f in fits:
            t = f["times"]
            parts.append(
                f"<tr><td class='term'>{html.escape(f['file'])}</td>"
                f"<td>{html.escape(str(f['model']))}</td><td>{html.escape(str(f['seed']))}</td>"
                f"<td>{html.escape(f['data_hash'][:12])}</td>"
                f"<td>{html.escape(str(f['sampler']))}</td>"
                f"<td>{f['chains']} x {f['draws']} ({f['tune']})</td>"
                f"<td>{f['target_accept']}</td><td>{t.get('compile_s', '')}</td>"
                f"<td>{t.get('sampling_s', '')}</td><td>{t.get('total_s', '')}</td></tr>")
        parts.append("</table>")
        first = fits[0]
        prior_rows = "".join(
            f"<tr><td class='term'>{html.escape(role)}</td>"
            f"<td>{html.escape(str(p.get('prior', p) if isinstance(p, dict) else p))}</td>"
            f"<td>{html.escape(str(p.get('source', '')) if isinstance(p, dict) else '')}</td>"
            "</tr>" for role, p in first["priors"].items())
        parts.append(f"<h3>Priors of {html.escape(first['file'])}</h3><p class='note'>Every "
                     "posterior file carries its own priors in its attributes.</p>"
                     f"<table><tr><th>role</th><th>prior</th><th>source</th></tr>{prior_rows}"
                     "</table>")
    return "".join(parts)

"""Run a study end to end: data, every specification, published | frequentist | Bayesian."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data.errors import DataError
from data.published import load_published, published_to_results
from inference.datasets import Dataset, load_dataset
from inference.descriptives import moments_table
from inference.estimators import FREQUENTIST
from inference.registry import Spec, Study, load_study
from inference.results import assemble, result_rows, write_results
from inference.samples import prepare_sample

QUICK_SAMPLING = {"draws": 300, "tune": 300, "chains": 2}
FULL_SAMPLING = {"draws": 1000, "tune": 1000, "chains": 4}


@dataclass(frozen=True)
class RunOptions:
    """What the user asked for on the command line."""

    data: Path | None = None
    out: Path | None = None
    seed: int = 20250401
    quick: bool = False
    frequentist_only: bool = False
    priors: tuple[str, ...] = ()
    prior_file: Path | None = None

    @property
    def sampling(self) -> dict:
        return QUICK_SAMPLING if self.quick else FULL_SAMPLING


@dataclass
class RunOutcome:
    """What a run produced, for the report and the caller."""

    study: Study
    dataset: Dataset
    results: pd.DataFrame
    out_dir: Path
    bayes_fits: dict[str, object] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _published_rows(study: str) -> pd.DataFrame:
    published = load_published(study)
    rows = published_to_results(published, rescale=True)
    r2 = (published.dropna(subset=["r_squared"])
          .drop_duplicates(["table", "column"])[["study", "table", "column", "r_squared", "n_obs"]])
    r2_rows = r2.rename(columns={"r_squared": "estimate"}).assign(term="R2", source="published")
    rows = pd.concat([rows, r2_rows], ignore_index=True)
    rows["note"] = ""
    return rows


def _missing_columns(spec: Spec, frame: pd.DataFrame) -> list[str]:
    return [c for c in spec.columns if c not in frame.columns]


def _bayes_rows(spec: Spec, sample: pd.DataFrame, study: Study, options: RunOptions, out_dir):
    from models.bayes_panel import fit_bayes_twfe
    from models.priors import load_priors_toml

    priors = load_priors_toml(options.prior_file) if options.prior_file else None
    if options.priors:
        priors = (priors.with_overrides(list(options.priors)) if priors is not None
                  else list(options.priors))
    time_effect = study.time if study.time in spec.effects else None
    fit = fit_bayes_twfe(
        sample, spec.outcome, list(spec.regressors), unit=study.unit, time=time_effect,
        priors=priors, seed=options.seed, **options.sampling,
    )
    tidy = fit.tidy(auxiliary=False)
    rows = result_rows(tidy, study=spec.study, table=spec.table, column=spec.column,
                       source="bayesian")
    rows["note"] = [convergence_note(term, fit.convergence_problems()) for term in rows["term"]]
    fit.save_netcdf(out_dir / f"posterior_table{spec.table}_col{spec.column}.nc")
    return rows, fit


def convergence_note(term: str, problems: list[str]) -> str:
    """The convergence problems of ``term`` in words, and which other parameters of the same
    model failed (a model whose nuisance parameters have not mixed is not trusted either)."""
    own = [p for p in problems if re.search(rf"\bof {re.escape(term)} is\b", p)]
    others = sorted({m.group(1) for p in problems if p not in own
                     for m in [re.search(r"\bof (\S+) is\b", p)] if m})
    general = [p for p in problems if not re.search(r"\bof \S+ is\b", p)]
    parts = own + general
    if others:
        parts.append("other parameters of this model did not converge: " + ", ".join(others))
    return "; ".join(parts)


def run_study(
    name: str, options: RunOptions, progress: Callable[[str], None] = print
) -> RunOutcome:
    """Fit every specification of study ``name`` and write results.csv and index.html."""
    started = time.perf_counter()
    study = load_study(name)
    out_dir = Path(options.out) if options.out else Path("reports") / name
    out_dir.mkdir(parents=True, exist_ok=True)
    needed = list(dict.fromkeys(c for s in study.specs for c in s.columns))
    dataset = load_dataset(name, options.data, needed)
    progress(f"[{name}] data: {dataset.label}, {len(dataset.frame):,} rows")

    parts = [_published_rows(name)]
    moments = moments_table(dataset.frame, _summary_variables(name, dataset.frame))
    if len(moments):
        parts.append(result_rows(moments, study=name, table="1", column="", source="frequentist")
                     .assign(column=moments["column"].to_numpy()))
    outcome = RunOutcome(study=study, dataset=dataset, results=pd.DataFrame(), out_dir=out_dir)
    for index, spec in enumerate(study.specs, start=1):
        prefix = f"[{name}] {index}/{len(study.specs)} table {spec.table} column {spec.column}"
        missing = _missing_columns(spec, dataset.frame)
        estimator = FREQUENTIST.get(spec.kind)
        if missing or estimator is None:
            why = (f"columns {missing} not in the data" if missing
                   else f"no estimator for kind '{spec.kind}' yet")
            outcome.skipped.append(f"{spec.key}: {why}")
            progress(f"{prefix}: skipped ({why})")
            continue
        sample = prepare_sample(dataset.frame, spec)
        tick = time.perf_counter()
        tidy = estimator(sample, spec, {"seed": options.seed, "quick": options.quick,
                                        "time": study.time})
        parts.append(result_rows(tidy, study=name, table=spec.table, column=spec.column,
                                 source="frequentist"))
        progress(f"{prefix}: frequentist {time.perf_counter() - tick:.2f} s")
        if spec.bayes and not options.frequentist_only:
            tick = time.perf_counter()
            progress(f"{prefix}: sampling the Bayesian counterpart "
                     f"({options.sampling['chains']} chains x {options.sampling['draws']} draws)")
            rows, fit = _bayes_rows(spec, sample, study, options, out_dir)
            parts.append(rows)
            outcome.bayes_fits[f"{spec.table}/{spec.column}"] = fit
            status = "converged" if fit.converged else "NOT converged: " + "; ".join(
                fit.convergence_problems())
            progress(f"{prefix}: Bayesian {time.perf_counter() - tick:.1f} s, {status}")
    outcome.results = assemble(parts, dataset.label)
    path = write_results(outcome.results, out_dir)
    outcome.timings["total_s"] = time.perf_counter() - started
    progress(f"[{name}] wrote {path}")
    from inference.report import write_report

    report = write_report(outcome)
    progress(f"[{name}] wrote {report}")
    return outcome


def _summary_variables(study: str, frame: pd.DataFrame) -> list[str]:
    """Variables of the study's descriptive table that are in the data."""
    try:
        published = load_published(study)
    except (DataError, ValueError):
        return []
    names = published.loc[published["table"].astype(str) == "1", "term"].unique().tolist()
    return [n for n in names if n in frame.columns and np.issubdtype(frame[n].dtype, np.number)]

"""Run a study end to end: data, every specification, published | frequentist | Bayesian."""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from data.errors import DataError
from data.published import load_published, published_to_results
from inference.datasets import Dataset, load_dataset
from inference.descriptives import moments_table
from inference.estimators import BAYESIAN, FREQUENTIST, RELEASE, Estimate, Settings
from inference.outputs import check_output_folder, finish_run, start_run
from inference.registry import Spec, Study, load_study
from inference.results import assemble, result_rows, write_results
from inference.resume import fit_key, kept_files, lookup, record_fit
from inference.samples import prepare_sample

QUICK_SAMPLING = {"draws": 300, "tune": 300, "chains": 2}
# What a specification that cannot run on this data raises (a rule of the data, the sample or
# the model): it is listed as not run with the message, and the rest of the study goes on.
SPEC_ERRORS = (DataError, ValueError, np.linalg.LinAlgError)
FULL_SAMPLING = {"draws": 1000, "tune": 1000, "chains": 4}


_PATH_FIELDS = ("data", "out", "prior_file")


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
    draws: int | None = None
    tune: int | None = None
    chains: int | None = None
    target_accept: float | None = None
    encoding: str | None = None
    # A second process compiles the Bayesian models ahead on cold caches (inference.compile_ahead).
    compile_ahead: bool = True

    def as_fields(self) -> dict:
        """The options as plain values (paths as text), for another process to rebuild with
        :meth:`from_fields`."""
        fields = dataclasses.asdict(self)
        for name in _PATH_FIELDS:
            fields[name] = None if fields[name] is None else str(fields[name])
        fields["priors"] = list(self.priors)
        return fields

    @classmethod
    def from_fields(cls, fields: dict) -> RunOptions:
        """The options from :meth:`as_fields`' plain values."""
        fields = dict(fields)
        for name in _PATH_FIELDS:
            if fields.get(name) is not None:
                fields[name] = Path(fields[name])
        fields["priors"] = tuple(fields.get("priors") or ())
        return cls(**fields)

    @property
    def sampling(self) -> dict:
        """Draws, tuning steps and chains: ``--quick`` or full defaults, then any overrides."""
        return sampling_settings(self.quick, self.draws, self.tune, self.chains,
                                 self.target_accept)


def sampling_settings(quick: bool, draws: int | None = None, tune: int | None = None,
                      chains: int | None = None, target_accept: float | None = None) -> dict:
    """The sampler settings of a run: the quick or full defaults, with the given ones on top.
    ``target_accept`` is included only when given (each model has its own default)."""
    settings: dict = dict(QUICK_SAMPLING if quick else FULL_SAMPLING)
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
        if value is not None:
            settings[name] = int(value)
    if target_accept is not None:
        if not 0.0 < float(target_accept) < 1.0:
            raise ValueError(f"target_accept must lie strictly between 0 and 1; got "
                             f"{target_accept}.")
        settings["target_accept"] = float(target_accept)
    return settings


@dataclass
class RunOutcome:
    """What a run produced, for the report and the caller."""

    study: Study
    dataset: Dataset
    results: pd.DataFrame
    out_dir: Path
    posterior_files: dict[str, Path] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    not_converged: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    sensitivity: pd.DataFrame = field(default_factory=pd.DataFrame)
    timings: dict[str, float] = field(default_factory=dict)
    options: RunOptions | None = None


def _published_rows(study: str) -> pd.DataFrame:
    published = load_published(study)
    rows = published_to_results(published, rescale=True)
    r2 = (published.dropna(subset=["r_squared"])
          .drop_duplicates(["table", "column"])[["study", "table", "column", "r_squared", "n_obs"]])
    r2_rows = r2.rename(columns={"r_squared": "estimate"}).assign(term="R2", source="published")
    rows = pd.concat([rows, r2_rows], ignore_index=True)
    rows["note"] = ""
    return rows


def _derive_measures(study: Study, dataset: Dataset, progress) -> Dataset:
    """Apply the study's ``derive`` functions (constructed measures) to a copy of the data."""
    frame = dataset.frame
    for target in study.derive:
        module_name, _, function_name = target.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        before = set(frame.columns)
        frame = function(frame.copy())
        progress(f"[{study.name}] derived {sorted(set(frame.columns) - before)} "
                 f"with {target}")
    frame.attrs.update(dataset.frame.attrs)
    return replace(dataset, frame=frame)


def _power_scaling(key: str, fit) -> pd.DataFrame | None:
    """Power-scaling sensitivity of one fit (``key`` = table/column/model), or None when its
    posterior holds no log prior and log likelihood."""
    from models.bayes.sensitivity import power_scaling_table

    idata = getattr(fit, "idata", None)
    if idata is None or not {"log_prior", "log_likelihood"} <= set(idata.groups()):
        return None
    table, column, name = key.split("/")
    try:
        sensitivity = power_scaling_table(idata)
    except (ValueError, KeyError, TypeError, FloatingPointError) as exc:
        # A failed diagnostic must not cost the report; say what failed instead.
        sensitivity = pd.DataFrame([{"parameter": "(all)", "prior_sensitivity": np.nan,
                                     "likelihood_sensitivity": np.nan,
                                     "diagnosis": f"not computed: {exc}"}])
    return sensitivity.assign(table=table, column=column, model=name)


def _prior_sensitivity(tables: list[pd.DataFrame], out_dir: Path, progress) -> pd.DataFrame:
    """The fits' power-scaling tables (:func:`_power_scaling`) together, written to
    ``prior_sensitivity.csv``."""
    if not tables:
        return pd.DataFrame()
    frame = pd.concat(tables, ignore_index=True)[
        ["table", "column", "model", "parameter", "prior_sensitivity", "likelihood_sensitivity",
         "diagnosis"]]
    frame.to_csv(out_dir / "prior_sensitivity.csv", index=False, float_format="%.6g")
    flagged = int((frame["diagnosis"] != "data-driven").sum())
    progress(f"prior sensitivity: {flagged} of {len(frame)} parameters flagged "
             f"(wrote {out_dir / 'prior_sensitivity.csv'})")
    return frame


def _release_kinds(last_of_kind: dict[str, int], before: int) -> None:
    """Let the estimators of kinds whose last specification comes before ``before`` drop the
    fits they keep (:data:`inference.estimators.RELEASE`)."""
    for kind, last in list(last_of_kind.items()):
        if last < before:
            if kind in RELEASE:
                RELEASE[kind]()
            del last_of_kind[kind]


def _missing_columns(spec: Spec, frame: pd.DataFrame) -> list[str]:
    return [c for c in spec.columns if c not in frame.columns]


def user_priors(options: RunOptions):
    """The priors the user gave (file, then command-line overrides on top), or None."""
    from inference.priors import read_prior_entries

    entries = read_prior_entries(options.prior_file, list(options.priors or ()))
    return entries or None


def _save_fits(estimate: Estimate, spec: Spec, out_dir: Path) -> list[Path]:
    paths = []
    for name, fit in estimate.fits.items():
        suffix = f"_{name}" if name else ""
        path = out_dir / f"posterior_table{spec.table}_col{spec.column}{suffix}.nc"
        paths.append(fit.save_netcdf(path))
    return paths


def run_study(
    name: str | Path | Study, options: RunOptions, progress: Callable[[str], None] = print
) -> RunOutcome:
    """Fit every specification of study ``name`` (a shipped study, a study file of the user's,
    or a loaded :class:`Study`) and write results.csv and index.html."""
    started = time.perf_counter()
    source = name
    study, user_study = _load_study(name)
    name = study.name
    out_dir = check_output_folder(Path(options.out) if options.out else Path("reports") / name,
                                  [("--data", options.data), ("--priors", options.prior_file)])
    priors = user_priors(options)
    dataset = _load_data(study, user_study, options)
    reusable = kept_files(out_dir)
    start_run(out_dir, f"run {name}", keep=reusable)
    written: set[str] = set()
    sensitivity_tables: list[pd.DataFrame | None] = []
    spent = dict.fromkeys(TIME_PHASES, 0.0)
    if user_study and not isinstance(source, Study):
        # The report is rebuilt from the folder alone, so the study file travels with it.
        (out_dir / "study.toml").write_bytes(Path(source).read_bytes())
    progress(f"[{name}] data: {dataset.label}, {len(dataset.frame):,} rows")
    dataset = _derive_measures(study, dataset, progress)

    parts = [] if user_study else [_published_rows(name)]
    moments = moments_table(dataset.frame, _summary_variables(study, dataset.frame))
    if len(moments):
        parts.append(result_rows(moments, study=name, table="1", column="", source="frequentist")
                     .assign(column=moments["column"].to_numpy()))
    outcome = RunOutcome(study=study, dataset=dataset, results=pd.DataFrame(), out_dir=out_dir,
                         options=options)
    settings = Settings(seed=options.seed, unit=study.unit, time=study.time, quick=options.quick,
                        sampling=dict(options.sampling), priors=priors,
                        out_dir=out_dir, synthetic=dataset.synthetic)
    helper, digest = _compile_ahead(source, study, dataset, options, priors)
    last_of_kind = {spec.kind: index for index, spec in enumerate(study.specs, start=1)}
    try:
        for index, spec in enumerate(study.specs, start=1):
            prefix = f"[{name}] {index}/{len(study.specs)} table {spec.table} column {spec.column}"
            _release_kinds(last_of_kind, before=index)
            if helper is not None:
                spent["waiting"] += helper.reached(index)
            missing = _missing_columns(spec, dataset.frame)
            estimator = FREQUENTIST.get(spec.kind)
            if missing or estimator is None:
                why = (f"columns {missing} not in the data" if missing
                       else f"no estimator for kind '{spec.kind}' yet")
                outcome.skipped.append(f"{spec.key}: {why}")
                progress(f"{prefix}: skipped ({why})")
                continue
            tick = time.perf_counter()
            try:
                sample = prepare_sample(dataset.frame, spec)
                estimate = estimator(sample, spec, settings)
            except SPEC_ERRORS as exc:
                outcome.skipped.append(f"{spec.key}: not run ({exc})")
                progress(f"{prefix}: not run ({exc})")
                continue
            parts.append(result_rows(estimate.tidy, study=name, table=spec.table,
                                     column=spec.column, source="frequentist"))
            outcome.figures.extend(estimate.figures)
            spent["frequentist"] += time.perf_counter() - tick
            progress(f"{prefix}: frequentist {time.perf_counter() - tick:.2f} s")
            bayesian = BAYESIAN.get(spec.kind)
            if not spec.bayes or options.frequentist_only:
                continue
            if bayesian is None:
                outcome.skipped.append(f"{spec.key}: no Bayesian counterpart for kind "
                                       f"'{spec.kind}' yet")
                continue
            tick = time.perf_counter()
            progress(f"{prefix}: sampling the Bayesian counterpart "
                     f"({options.sampling['chains']} chains x {options.sampling['draws']} draws)")
            key = fit_key(spec, sample, settings)
            saved = lookup(out_dir, key)
            if saved is not None:
                progress(f"{prefix}: Bayesian counterpart reused (the same data, spec, priors, "
                         "sampler settings and seed finished here before)")
                estimate = Estimate(saved[0], fits=saved[1], figures=saved[2])
                fit_paths = [fit.path for fit in saved[1].values()]
                paths = [*fit_paths, *saved[2]]
            else:
                try:
                    estimate = bayesian(sample, spec, settings)
                except SPEC_ERRORS as exc:
                    outcome.skipped.append(f"{spec.key}: Bayesian counterpart not run ({exc})")
                    progress(f"{prefix}: Bayesian counterpart not run ({exc})")
                    continue
                writing = time.perf_counter()
                fit_paths = _save_fits(estimate, spec, out_dir)
                paths = list(fit_paths)
                record_fit(out_dir, key, estimate.tidy, estimate.fits, fit_paths, estimate.figures)
                spent["writing"] += time.perf_counter() - writing
                _add_fit_times(spent, estimate.fits.values())
                paths += [Path(f) for f in estimate.figures]
                paths += [Path(f).with_suffix(".csv") for f in estimate.figures]
            written.update(path.name for path in paths)
            parts.append(result_rows(estimate.tidy, study=name, table=spec.table,
                                     column=spec.column, source="bayesian"))
            outcome.figures.extend(estimate.figures)
            problems = [p for f in estimate.fits.values() for p in f.convergence_problems()]
            if problems:
                outcome.not_converged.append(f"{spec.key}: " + "; ".join(problems))
            status = "converged" if not problems else "NOT converged: " + "; ".join(problems)
            spent["bayesian"] += time.perf_counter() - tick
            progress(f"{prefix}: Bayesian {time.perf_counter() - tick:.1f} s, {status}")
            tick = time.perf_counter()
            for (model_name, fit), fit_path in zip(estimate.fits.items(), fit_paths, strict=True):
                fit_ref = f"{spec.table}/{spec.column}/{model_name}"
                sensitivity_tables.append(_power_scaling(fit_ref, fit))
                # Only the file is kept: holding every posterior with its pointwise
                # log-likelihood cost 130 MB per TWFE fit, 4.5 GB by the end of zhao2025.
                outcome.posterior_files[fit_ref] = Path(fit_path)
            spent["sensitivity"] += time.perf_counter() - tick
    finally:
        _release_kinds(last_of_kind, before=len(study.specs) + 1)
        if helper is not None:
            helper.stop()
    if digest is not None:
        from inference import compile_ahead

        compile_ahead.mark_filled(name, digest)
    for stale in reusable - written:  # posteriors of an earlier run that this one did not make
        (out_dir / stale).unlink(missing_ok=True)
    outcome.results = assemble(parts, dataset.label)
    tick = time.perf_counter()
    path = write_results(outcome.results, out_dir)
    spent["writing"] += time.perf_counter() - tick
    tick = time.perf_counter()
    outcome.sensitivity = _prior_sensitivity([t for t in sensitivity_tables if t is not None],
                                             out_dir, progress)
    spent["sensitivity"] += time.perf_counter() - tick
    outcome.timings.update({f"{phase}_s": round(value, 3) for phase, value in spent.items()})
    outcome.timings["total_s"] = time.perf_counter() - started
    progress(f"[{name}] wrote {path}")
    # Marked complete before the page is built: the report reads run.json and shows how the
    # run ended.
    finish_run(out_dir, "complete", not_run=outcome.skipped, not_converged=outcome.not_converged)
    from inference.report import write_report

    tick = time.perf_counter()
    report = write_report(outcome)
    progress(f"[{name}] wrote {report}")
    spent["report"] = time.perf_counter() - tick
    progress(f"[{name}] {time.perf_counter() - started:.1f} s in all: {_time_summary(spent)}")
    return outcome


def _load_study(name: str | Path | Study) -> tuple[Study, bool]:
    """The study (a shipped one by name, a study file, or a loaded :class:`Study`) and whether
    it is the user's own."""
    from inference.user_study import is_study_file, load_study_file

    user_study = isinstance(name, Study) or is_study_file(name)
    study = name if isinstance(name, Study) else (
        load_study_file(name) if user_study else load_study(name))
    return study, user_study


def _load_data(study: Study, user_study: bool, options: RunOptions) -> Dataset:
    from inference.user_study import load_user_dataset

    needed = list(dict.fromkeys(c for s in study.specs for c in s.columns))
    return (load_user_dataset(study, options.data) if user_study
            else load_dataset(study.name, options.data, needed, options.encoding))


def load_run_data(name: str | Path | Study, options: RunOptions, progress=print
                  ) -> tuple[Study, Dataset, bool]:
    """The study, its data with the derived measures (as :func:`run_study` fits them) and
    whether the study is the user's own."""
    study, user_study = _load_study(name)
    dataset = _derive_measures(study, _load_data(study, user_study, options), progress)
    return study, dataset, user_study


def _compile_ahead(source, study: Study, dataset: Dataset, options: RunOptions, priors):
    """The compiling helper (:mod:`inference.compile_ahead`) when this run samples on caches
    not yet filled for it, with the digest to mark once the fits are done; (None, None) for
    a run that does not sample."""
    if options.frequentist_only or not any(s.bayes and s.kind in BAYESIAN for s in study.specs):
        return None, None
    from inference import compile_ahead

    digest = compile_ahead.cache_digest(study, dataset.frame.shape, dataset.frame.columns,
                                        priors, options.quick)
    if not options.compile_ahead or isinstance(source, Study) \
            or compile_ahead.caches_filled(study.name, digest):
        return None, digest
    return compile_ahead.start(str(source), options.as_fields()), digest


def _time_summary(spent: dict[str, float]) -> str:
    return (f"frequentist {spent['frequentist']:.1f} s, Bayesian {spent['bayesian']:.1f} s "
            f"(compile {spent['compile']:.1f}, sampling {spent['sampling']:.1f}, "
            f"post-processing {spent['postprocess']:.1f}), writing {spent['writing']:.1f} s, "
            f"prior sensitivity {spent['sensitivity']:.1f} s, report {spent['report']:.1f} s"
            + (f", waiting for the compiling helper {spent['waiting']:.1f} s"
               if spent["waiting"] else ""))


# Where a run's time goes. The Bayesian total covers each fit's compile, sampling and
# post-processing (from the fits' own wall times) and the adapter's work around them;
# waiting is for the compiling helper to finish the model the run has reached.
TIME_PHASES = ("frequentist", "bayesian", "compile", "sampling", "postprocess", "writing",
               "sensitivity", "report", "waiting")


def _add_fit_times(spent: dict[str, float], fits) -> None:
    for fit in fits:
        times = getattr(fit, "wall_times", {}) or {}
        for phase in ("compile", "sampling", "postprocess"):
            spent[phase] += float(times.get(f"{phase}_s", 0.0))


def _summary_variables(study: Study, frame: pd.DataFrame) -> dict[str, str]:
    """Variables of the study's descriptive table that are in the data: printed name -> column
    (the registry's ``summary_names`` says where they differ)."""
    try:
        published = load_published(study.name)
    except (DataError, ValueError):
        return {}
    names = published.loc[published["table"].astype(str) == "1", "term"].unique().tolist()
    columns = {n: study.summary_names.get(n, n) for n in names}
    return {n: c for n, c in columns.items()
            if c in frame.columns and np.issubdtype(frame[c].dtype, np.number)}

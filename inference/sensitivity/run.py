"""``python -m inference sensitivity STUDY``: power-scaling and prior-grid refits of a study's
Bayesian specifications, as a batch of fits on Dask.

Two batches (:func:`inference.batch.run_batch`, one task per fit, stored under
``OUT/.batch/``): first the default fit of every chosen specification, which returns the
power-scaling sequence and diagnosis of its key quantities and the priors it used; then one
refit per prior alternative of the grid (relative alternatives resolved against those
priors) and, where the Pareto k of the prior-scaling weights is too high, a refit with every
prior raised to the power alpha in closed form. Each task key hashes the data file, the
study, the whole specification, the priors and options changed, the sampler settings, the
seed and ``--quick``; a rerun reuses every stored fit.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from inference.batch import Task, run_batch, task_key
from inference.sensitivity.grid import (
    base_priors,
    default_grid,
    read_grid,
    resolve_alternative,
)
from inference.sensitivity.tables import (
    diagnosis_frame,
    grid_frame,
    grid_row,
    plot_grid,
    plot_sequence,
    sequence_frame,
)
from inference.sensitivity.tasks import RESULT_VERSION, find_spec, load_inputs
from models.bayes.priors import PriorSpecError

TASK = "inference.sensitivity.tasks:refit"


@dataclass(frozen=True)
class SensitivityOptions:
    """What ``python -m inference sensitivity`` was asked for."""

    study: str
    specs: tuple[str, ...] = ()
    grid: Path | None = None
    quick: bool = False
    out: Path | None = None
    workers: int | None = None
    scheduler: str | None = None
    seed: int = 20250401
    data: Path | None = None
    priors: Path | None = None
    draws: int | None = None
    tune: int | None = None
    chains: int | None = None


@dataclass
class SensitivityOutcome:
    """The tables written, where, and how long it took."""

    out_dir: Path
    grid: pd.DataFrame
    sequence: pd.DataFrame
    diagnosis: pd.DataFrame
    claims: pd.DataFrame = field(default_factory=pd.DataFrame)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    fits: int = 0


def _key_term(study_name: str, spec) -> str | None:
    """The estimand the grid shows for ``spec``: the ledger's key term (``key_term``) where
    the model has it, as its kind names it (the first regime's slope of a threshold model on
    that regime, the indirect effect of the first mediator), the average post-period effect of
    an event study; else the first regressor."""
    import tomllib

    from inference.claims import claims_path

    path = claims_path(study_name)
    key = None
    if path.exists():
        key = tomllib.loads(path.read_text(encoding="utf-8")).get("key_term")
    options = spec.options
    if spec.kind == "event_study":
        return "post_average"
    if spec.kind == "threshold" and options.get("regime"):
        return f"{options['regime']}_regime1"
    if spec.kind == "mediation" and options.get("mediators"):
        mediators = options["mediators"]
        return f"indirect_{mediators if isinstance(mediators, str) else mediators[0]}"
    if key and key in spec.regressors:
        return str(key)
    return spec.regressors[0] if spec.regressors else key


def _kept_options(spec) -> dict:
    """Spec options of every refit of the grid but the default: an event study fits both of
    its likelihoods by default, and the grid refits the first (its default row) alone, leaving
    the other to the likelihood alternative; a threshold model's refits leave out the models
    with other threshold counts (fitted for the comparison of counts, not read by the grid;
    the model of the spec's own count is sampled as in the default fit)."""
    if spec.kind == "threshold":
        return {"compare_counts": False}
    if spec.kind != "event_study":
        return {}
    return {"likelihoods": [str((spec.options.get("likelihoods") or ["normal"])[0])]}


def _chosen_specs(study, refs: tuple[str, ...]):
    from inference.estimators import BAYESIAN

    if refs:
        specs = [find_spec(study, ref) for ref in refs]
        for spec in specs:
            if spec.kind not in BAYESIAN:
                raise ValueError(f"--spec {spec.table}/{spec.column}: kind {spec.kind!r} has "
                                 "no Bayesian counterpart to refit")
        return specs
    return [s for s in study.specs if s.bayes and s.kind in BAYESIAN]


def _scaled_record(record: dict[str, str], alpha: float) -> tuple[dict[str, str], list[str]]:
    """Every recorded prior raised to ``alpha`` in closed form, and the entries left as they
    were (no closed form: event-path priors, priors outside the grammar)."""
    from models.bayes.power_scaling import power_scaled_lkj, power_scaled_prior
    from models.bayes.priors import parse_lkj, parse_prior

    scaled, left = {}, []
    for key, text in record.items():
        try:
            if text.strip().lower().startswith("lkj"):
                scaled[key] = f"lkj({power_scaled_lkj(parse_lkj(text, key), alpha):.6g})"
            else:
                scaled[key] = str(power_scaled_prior(parse_prior(text), alpha))
        except PriorSpecError:
            left.append(key)
    return scaled, left


def _flagged_alphas(result: dict) -> tuple[list[float], bool]:
    """The most extreme alpha below and above 1 whose prior-scaling weights have too high a
    Pareto k (where the refit replaces the weighting), and whether the likelihood's are."""
    sequence = pd.DataFrame(result.get("power_scaling", {}).get("sequence", []))
    if not len(sequence):
        return [], False
    bad = sequence[~sequence["reliable"].astype(bool)]
    prior = sorted(set(bad.loc[bad["component"] == "prior", "alpha"]))
    picked = [a for a in (min((a for a in prior if a < 1), default=None),
                          max((a for a in prior if a > 1), default=None)) if a is not None]
    return picked, bool((bad["component"] == "likelihood").any())


def run_sensitivity(options: SensitivityOptions,
                    progress: Callable[[str], None] = print) -> SensitivityOutcome:
    """Power-scaling and prior-grid refits of the chosen specifications of ``options.study``;
    writes the CSV tables, PNG figures, ``sensitivity.json`` and ``index.html`` into
    ``options.out`` (default ``reports/STUDY/sensitivity``)."""
    from inference.outputs import check_output_folder
    from inference.report.bundle import file_hash
    from inference.runner import sampling_settings

    started = time.perf_counter()
    if options.scheduler is not None and options.workers is not None:
        raise ValueError("--workers sizes a local cluster; with --scheduler the cluster's own "
                         "workers run the batch")
    read_grid(options.grid, [])  # a bad grid file stops the run before anything is fitted
    base = base_priors(options.priors)
    study, dataset = load_inputs(options.study, str(options.data) if options.data else None)
    specs = _chosen_specs(study, options.specs)
    if not specs:
        raise ValueError(f"{study.name}: no specification with a Bayesian counterpart to refit")
    out_dir = check_output_folder(
        Path(options.out) if options.out else Path("reports") / study.name / "sensitivity",
        [("--data", options.data), ("--grid", options.grid), ("--priors", options.priors)])
    sampling = sampling_settings(options.quick, options.draws, options.tune,
                                 options.chains)
    data_hash = file_hash(dataset.path)
    label, suffix = dataset.label, (" (SYNTHETIC data)" if dataset.synthetic else "")
    progress(f"[{study.name}] sensitivity of {len(specs)} specification(s); data: {label}")
    # Absolute, so that workers started elsewhere (a --scheduler's) find the same file.
    data = str(Path(options.data).resolve()) if options.data else None
    where = (str(Path(options.study).resolve()) if str(options.study).endswith(".toml")
             else options.study)
    common = {"study": where, "data": data,
              "sampling": sampling, "seed": options.seed, "quick": options.quick}

    def task(spec, priors: dict, spec_options: dict, what: str, power: bool = False) -> Task:
        """The batch task of one fit of ``spec`` with ``priors`` and ``spec_options``."""
        ref = f"{spec.table}/{spec.column}"
        key = task_key(data_hash, study.name, dataclasses.asdict(spec), priors, spec_options,
                       sampling, options.seed, options.quick, power, RESULT_VERSION)
        return Task(key=key, function=TASK, label=f"{ref} {what}", kwargs={
            **common, "spec_ref": ref, "priors": priors, "options": spec_options,
            "key_term": _key_term(study.name, spec), "power_scaling": power})

    with ExitStack() as stack:
        cluster = _SharedCluster(stack, out_dir / ".batch", options, progress)
        return _run(options, study, specs, task, cluster, out_dir, label, suffix, sampling,
                    data_hash, started, base)


class _SharedCluster:
    """One Dask cluster for both batches (its workers keep the compiled models between them),
    started only when a batch has a fit that is not stored yet."""

    def __init__(self, stack: ExitStack, store: Path, options: SensitivityOptions, progress):
        self.stack, self.store, self.options, self.progress = stack, store, options, progress
        self.address = options.scheduler

    def run(self, tasks: list[Task]) -> dict:
        """:func:`inference.batch.run_batch` of ``tasks`` on the shared cluster; a task that
        failed maps to ``{"failed": message}`` (it is not stored, so a rerun tries it again)."""
        from inference.batch import BatchError, ResultStore, dask_client

        stored = ResultStore(self.store)
        if self.address is None and any(stored.read(t.key) is None for t in tasks):
            client = self.stack.enter_context(dask_client(None, self.options.workers))
            self.address = client.scheduler.address
        try:
            return run_batch(tasks, self.store, scheduler=self.address, progress=self.progress)
        except BatchError as error:
            messages = dict(error.failures)
            results = {}
            for t in tasks:
                saved = stored.read(t.key)
                results[t.key] = saved if saved is not None else {
                    "failed": messages.get(t.label or t.key, "the fit failed")}
            return results


def _failure(result: dict | None) -> str:
    """Why a task result holds no fit ('' when it does)."""
    if result is None:
        return "no result"
    return f"the fit failed: {result['failed']}" if "failed" in result else ""


def _run(options, study, specs, task, cluster, out_dir, label, suffix, sampling, data_hash,
         started, base: dict[str, str]) -> SensitivityOutcome:
    defaults = {f"{s.table}/{s.column}": task(s, dict(base), {}, "default", power=True)
                for s in specs}
    first = cluster.run(list(defaults.values()))
    plans, second, power_jobs = [], [], {}
    for spec in specs:
        ref = f"{spec.table}/{spec.column}"
        result = first[defaults[ref].key]
        if _failure(result):
            continue
        term = _key_term(study.name, spec)
        record = result.get("priors", {})
        means = {row["term"]: row["estimate"] for row in result.get("rows", [])}
        # Quantities without a results row (the mean of partially pooled group slopes) have
        # their posterior mean in the power-scaling sequence at alpha = 1.
        for row in result.get("power_scaling", {}).get("sequence", []):
            if row["alpha"] == 1.0:
                means.setdefault(row["quantity"], row["mean"])
        alternatives = read_grid(options.grid, default_grid(spec.kind, term, spec.options))
        for alternative in alternatives:
            try:
                priors, spec_options = resolve_alternative(alternative, record, means, ref,
                                                           spec.kind)
            except PriorSpecError as exc:
                plans.append((spec, alternative, None, "", str(exc)))
                continue
            written = "; ".join(f"{k}={v}" for k, v in {**priors, **spec_options}.items())
            job = task(spec, {**base, **priors}, {**_kept_options(spec), **spec_options},
                       f"{alternative.role}={alternative.name}")
            plans.append((spec, alternative, job, written, ""))
            second.append(job)
        alphas, _ = _flagged_alphas(result)
        for alpha in alphas:
            scaled, _ = _scaled_record(record, alpha)
            job = task(spec, {**base, **scaled}, _kept_options(spec), f"prior^{alpha:.3g}")
            power_jobs[(ref, alpha)] = job.key
            second.append(job)
    unique = list({job.key: job for job in second}.values())
    results = {**first, **cluster.run(unique)}
    outcome = _write(study, specs, defaults, plans, power_jobs, results, out_dir, label,
                     suffix, sampling, options, data_hash, base)
    outcome.seconds = time.perf_counter() - started
    outcome.fits = len(defaults) + len(unique)
    meta_path = out_dir / "sensitivity.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["wall_s"] = round(outcome.seconds, 1)
    meta_path.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    failed = sum(1 for r in results.values() if _failure(r))
    cluster.progress(f"[{study.name}] sensitivity: {outcome.fits} fits"
                     f"{f' ({failed} failed, listed in prior_grid.csv)' if failed else ''}, "
                     f"{outcome.seconds:.1f} s; wrote {out_dir}")
    return outcome


def _write(study, specs, defaults, plans, power_jobs, results, out_dir: Path, label: str,
           suffix: str, sampling: dict, options: SensitivityOptions, data_hash: str,
           base: dict[str, str]) -> SensitivityOutcome:
    from inference.claims import load_claims
    from inference.report.sensitivity_section import write_page
    from inference.sensitivity.claims import claims_frame

    claim_ids = [c.id for c in load_claims(study.name)]
    grid_rows, sequences, diagnoses, files = [], [], [], []
    for spec in specs:
        ref = f"{spec.table}/{spec.column}"
        default = results[defaults[ref].key]
        term = _key_term(study.name, spec)
        if _failure(default):
            grid_rows.append(grid_row(study.name, ref, spec.kind, "default", "default", "",
                                      None, term, None, [], _failure(default)))
            diagnoses.append(pd.DataFrame([{"study": study.name, "spec": ref,
                                            "quantity": "(all)",
                                            "diagnosis": f"not computed: {_failure(default)}",
                                            "data_label": label}]))
            continue
        ids = [c for c in claim_ids if c in default.get("claims", {})]
        grid_rows.append(grid_row(study.name, ref, spec.kind, "default", "default",
                                  "; ".join(f"{k}={v}" for k, v in default["priors"].items()),
                                  default, term, default, ids))
        for plan_spec, alternative, job, written, why in plans:
            if plan_spec is not spec:
                continue
            fitted = results.get(job.key) if job else None
            if job and _failure(fitted):
                fitted, why = None, _failure(fitted)
            grid_rows.append(grid_row(study.name, ref, spec.kind, alternative.role,
                                      alternative.name, written, fitted, term, default, ids,
                                      why))
        alphas, likelihood_flagged = _flagged_alphas(default)
        refits = [(alpha, results.get(power_jobs.get((ref, alpha), ""))) for alpha in alphas]
        refits = [(alpha, None if _failure(r) else r) for alpha, r in refits]
        _, left = _scaled_record(default.get("priors", {}), 1.0)
        note = _refit_note(alphas, likelihood_flagged, refits, left)
        sequence = sequence_frame(study.name, ref, default,
                                  [(a, r) for a, r in refits if r is not None], label)
        sequences.append(sequence)
        diagnoses.append(diagnosis_frame(study.name, ref, default, note, label))
        stem = f"table{spec.table}_col{spec.column}"
        path = plot_sequence(sequence, out_dir / f"power_scaling_{stem}.png", suffix)
        files += [path] if path else []
    base_words = (f"--priors {options.priors}: {'; '.join(f'{k}={v}' for k, v in base.items())}"
                  if options.priors else "the default priors")
    grid = grid_frame(grid_rows, label).assign(prior_base=base_words)
    grid = grid[[*grid.columns.drop(["prior_base", "data_label"]), "prior_base", "data_label"]]
    claims = claims_frame(study, specs, grid, label)
    sequence = pd.concat(sequences, ignore_index=True) if sequences else pd.DataFrame()
    diagnosis = pd.concat(diagnoses, ignore_index=True)
    for spec in specs:
        ref = f"{spec.table}/{spec.column}"
        path = plot_grid(grid[grid["spec"] == ref].dropna(axis=1, how="all"),
                         out_dir / f"prior_grid_table{spec.table}_col{spec.column}.png", suffix)
        files += [path] if path else []
    for name, frame in (("prior_grid.csv", grid), ("power_scaling.csv", sequence),
                        ("power_scaling_diagnosis.csv", diagnosis), ("claims.csv", claims)):
        frame.to_csv(out_dir / name, index=False, float_format="%.6g")
        files.append(out_dir / name)
    meta = {"study": study.name, "data_label": label, "synthetic": bool(suffix),
            "data_sha256": data_hash, "seed": options.seed, "quick": options.quick,
            "sampling": sampling, "specs": [f"{s.table}/{s.column}" for s in specs],
            "grid": str(options.grid) if options.grid else None,
            "prior_base": base_words, "priors_file": str(options.priors) if options.priors
            else None}
    (out_dir / "sensitivity.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    files.append(write_page(out_dir))
    return SensitivityOutcome(out_dir=out_dir, grid=grid, sequence=sequence,
                              diagnosis=diagnosis, claims=claims, files=files)


def _refit_note(alphas: list[float], likelihood_flagged: bool, refits,
                left: list[str]) -> str:
    """What was done where the importance weights cannot be trusted, in words."""
    parts = []
    if alphas:
        done = ", ".join(f"{a:.3g}" for a, r in refits if r is not None) or "none finished"
        flagged = ", ".join(f"{a:.3g}" for a in alphas)
        kept = f" ({', '.join(left)} kept as they were: no closed form)" if left else ""
        parts.append(f"prior-scaling weights unreliable at alpha {flagged}: refitted with "
                     f"every prior raised to alpha in closed form at {done}{kept}")
    if likelihood_flagged:
        parts.append("likelihood-scaling weights unreliable at some alpha: not refitted (the "
                     "models have no tempered likelihood); those rows are marked unreliable")
    return "; ".join(parts) or "importance weights reliable at every alpha"

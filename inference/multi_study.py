"""Several studies in one command, each study a task of a Dask batch.

``python -m inference run zhao2025 zhu2025 fu2021 --workers 2`` runs each study in its own
worker process (its own folder, ``OUT/STUDY``, default ``reports/STUDY``), with the options a
single-study run takes. The batch's store (``OUT/.batch``) records each finished study, so a
rerun skips the studies whose run finished and whose folder still says so (``run.json``);
within a study, the fits that finished before are reused as in a single run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from inference.batch import Task, run_batch, task_key
from inference.runner import RunOptions, run_study


def _file_digest(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


def run_study_task(study: str, options: dict) -> dict:
    """Run one study with ``options`` (the fields of :class:`RunOptions`, paths as text) and
    return what the batch records: the folder, its row count and what did not run or converge.
    """
    outcome = run_study(study, RunOptions.from_fields(options),
                        progress=lambda line: print(line, flush=True))
    return {"study": outcome.study.name, "out_dir": str(outcome.out_dir),
            "rows": int(len(outcome.results)), "skipped": list(outcome.skipped),
            "not_converged": list(outcome.not_converged),
            "seconds": round(float(outcome.timings.get("total_s", 0.0)), 1)}


def _finished(task: Task, result: dict) -> bool:
    """A stored study run counts only while its folder still holds a finished run."""
    marker = Path(result.get("out_dir", "")) / "run.json"
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("status") == "complete"
    except (OSError, ValueError):
        return False


def run_studies(studies: list[str], options: RunOptions, *, scheduler: str | None = None,
                workers: int | None = None,
                progress: Callable[[str], None] = print) -> list[dict]:
    """Run each of ``studies`` as a task on Dask; returns each study's record in order.

    ``options.out`` is the parent folder (each study writes ``OUT/STUDY``); ``--data`` belongs
    to one study and is refused here.
    """
    if options.data is not None:
        raise ValueError("--data gives one study's panel; run that study on its own "
                         "(python -m inference run STUDY --data FILE)")
    if len(set(studies)) != len(studies):
        raise ValueError(f"a study is named twice in {studies}")
    parent = Path(options.out) if options.out else Path("reports")
    tasks = []
    for study in studies:
        fields = options.as_fields()
        fields["out"] = str(parent / Path(study).stem)
        # The studies already share the cores; a compiling helper per study would crowd them.
        fields["compile_ahead"] = False
        key = task_key("run", study, fields, _file_digest(options.prior_file),
                       _file_digest(Path(study)) if study.endswith(".toml") else None)
        tasks.append(Task(key=key, function="inference.multi_study:run_study_task",
                          kwargs={"study": study, "options": fields}, label=f"run {study}"))
    results = run_batch(tasks, parent / ".batch", scheduler=scheduler, workers=workers,
                        progress=progress, still_valid=_finished)
    records = [results[t.key] for t in tasks]
    for record in records:
        progress(f"[{record['study']}] {record['rows']} rows in {record['out_dir']}, "
                 f"{len(record['skipped'])} not run, {len(record['not_converged'])} not "
                 f"converged ({record['seconds']} s)")
    return records

"""Batches of independent fits on Dask: prior grids, simulation-based calibration, several
studies.

Each :class:`Task` names an importable function, its keyword arguments and a key (a hash of
everything the result depends on: data, specification, priors, sampler settings, seed). The
tasks go to a ``dask.distributed`` cluster: a :class:`~distributed.LocalCluster` sized to this
machine by default (one single-threaded worker process per core: a fit samples its chains on
one core, and several fits at once use the machine better than one fit on many threads), or an
existing scheduler given by its address. Each result is written to ``STORE/<key>.json``
(atomically) by the client as soon as its task finishes, so a batch stopped midway (Ctrl-C, a
killed process, a lost worker) resumes where it stopped: a rerun reads the finished results
and submits only the rest, and a finished batch reruns in seconds.

Results must be JSON-serialisable (numbers, strings, lists, dicts). A task that raises is not
stored, so a rerun tries it again; :func:`run_batch` reports every failure with its label and
message after the others have finished.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.bayes.provenance import write_atomically

# Threads a worker's numerical libraries may start: each worker is one fit on one core.
_SINGLE_THREADED = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                           "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
# How long to wait for a scheduler given by address before saying it cannot be reached.
CONNECT_TIMEOUT_S = 20


@dataclass(frozen=True)
class Task:
    """One fit of a batch: ``function`` (``"module:name"``, importable on every worker) called
    with ``kwargs``; ``key`` names its stored result; ``label`` is what progress lines show."""

    key: str
    function: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""


class BatchError(RuntimeError):
    """Some tasks of a batch failed; the others' results are stored."""

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = failures
        lines = "\n".join(f"  - {label}: {message}" for label, message in failures)
        super().__init__(f"{len(failures)} task(s) of the batch failed (the finished ones are "
                         f"stored; a rerun retries only these):\n{lines}")


def quiet_libraries() -> None:
    """Silence library messages that do not apply to how the project computes (in the command
    line's process and in every batch worker).

    PyTensor warns that it "could not link to a BLAS installation" and that operations "will
    be severely degraded": that is its C backend, which the project does not sample with
    (nutpie compiles the models with numba). ArviZ announces at INFO level which of its
    optional preview packages are missing; none is used.
    """
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=".*could not link to a BLAS", category=UserWarning)
    logging.getLogger("arviz.preview").setLevel(logging.WARNING)


def task_key(*parts: Any) -> str:
    """sha256 (32 hex digits) of ``parts`` written as canonical JSON."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def call_task(function: str, kwargs: Mapping[str, Any]) -> Any:
    """Import ``function`` (``"module:name"``) and call it; what a worker runs."""
    module_name, _, name = function.partition(":")
    if not name:
        raise ValueError(f"task function {function!r} must be written 'module:name'")
    return getattr(importlib.import_module(module_name), name)(**dict(kwargs))


class ResultStore:
    """Finished results of a batch, one JSON file per task key in ``folder``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def read(self, key: str) -> Any | None:
        """The stored result of ``key``, or None when there is none (or it cannot be read:
        then the task runs again rather than the batch failing)."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))["result"]
        except (OSError, ValueError, KeyError):
            return None

    def write(self, task: Task, result: Any, seconds: float) -> Path:
        record = {"key": task.key, "label": task.label, "function": task.function,
                  "seconds": round(seconds, 3), "result": result}
        text = json.dumps(record, allow_nan=True, default=_plain)
        return write_atomically(self.path(task.key),
                                lambda p: p.write_text(text, encoding="utf-8"))


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"a batch result holds {type(value).__name__}, which is not JSON")


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None):
    """A ``distributed.Client``: to the scheduler at ``scheduler`` (e.g.
    ``tcp://10.0.0.5:8786``), or to a new :class:`~distributed.LocalCluster` of ``workers``
    single-threaded worker processes (default: one per core), closed on exit."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        if workers is not None:
            raise ValueError("--workers sizes a local cluster; with --scheduler the cluster's "
                             "own workers run the batch")
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
        except OSError as exc:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    n_workers = workers or default_workers()
    if n_workers < 1:
        raise ValueError(f"--workers must be at least 1; got {n_workers}")
    with dask.config.set({"distributed.nanny.pre-spawn-environ": _SINGLE_THREADED}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def run_batch(
    tasks: Iterable[Task],
    store: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[str], None] = print,
    still_valid: Callable[[Task, Any], bool] | None = None,
) -> dict[str, Any]:
    """Run ``tasks`` on Dask, skipping those whose result ``store`` already holds; returns
    ``{key: result}`` in the order of ``tasks``.

    ``still_valid(task, stored_result)``, when given, decides whether a stored result may be
    reused (for tasks whose real output lies elsewhere, such as a study's report folder that
    the user may have removed since); a stored result it rejects runs again.

    Each result is stored the moment its task finishes. Raises :class:`BatchError` naming every
    task that failed, after the rest have finished and been stored.
    """
    tasks = list(tasks)
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("two tasks of the batch have the same key: their results would "
                         "overwrite each other")
    results_store = ResultStore(store)
    results: dict[str, Any] = {}
    for task in tasks:
        saved = results_store.read(task.key)
        if saved is not None and (still_valid is None or still_valid(task, saved)):
            results[task.key] = saved
    pending = [t for t in tasks if t.key not in results]
    progress(f"batch: {len(tasks)} fits, {len(results)} finished before (reused), "
             f"{len(pending)} to run")
    failures: list[tuple[str, str]] = []
    if pending:
        from distributed import as_completed

        started = time.perf_counter()
        with dask_client(scheduler, workers) as client:
            n_workers = len(client.scheduler_info().get("workers", {}))
            progress(f"batch: {n_workers} Dask worker(s) at {client.scheduler.address}")
            submitted = {}
            for task in pending:
                future = client.submit(_timed_call, task.function, dict(task.kwargs),
                                       key=f"fit-{task.key}", pure=False)
                submitted[future] = task
            for done, future in enumerate(as_completed(submitted), start=1):
                task = submitted[future]
                try:
                    result, seconds = future.result()
                except Exception as exc:  # noqa: BLE001 - a failed fit must not stop the rest
                    failures.append((task.label or task.key, f"{type(exc).__name__}: {exc}"))
                    progress(f"batch: {done}/{len(pending)} {task.label}: FAILED ({exc})")
                    continue
                results_store.write(task, result, seconds)
                results[task.key] = result
                elapsed = time.perf_counter() - started
                remaining = elapsed / done * (len(pending) - done)
                progress(f"batch: {done}/{len(pending)} {task.label} {seconds:.1f} s "
                         f"(elapsed {elapsed:.0f} s, about {remaining:.0f} s left)")
    if failures:
        raise BatchError(failures)
    return {key: results[key] for key in keys}


def _timed_call(function: str, kwargs: dict) -> tuple[Any, float]:
    quiet_libraries()
    tick = time.perf_counter()
    result = call_task(function, kwargs)
    return result, time.perf_counter() - tick

"""Compile a study's Bayesian models in a second process while the run fits them.

On empty compile caches a run spends most of its time compiling, one model structure after
the other on one core (zhao2025 on a 2-core machine: 333 of 488 s), while the sampler of
each fit uses the cores only between compiles. The compiled code goes to numba's and
PyTensor's disk caches, which every process on the machine reads, so a second process that
builds the same models fills those caches for the run: it goes through the study's Bayesian
specifications from the last backwards (:mod:`inference.compile_worker`), each fitted
briefly into a temporary folder and thrown away, while the run goes forwards and finds
compiled whatever the helper has reached. Nothing the helper computes reaches the run's
results; what it changes is only how soon a compiled model is on disk.

The helper starts only when the caches were not filled for this study, these data and this
code before: a run that finished its Bayesian fits leaves a mark under PyTensor's
``base_compiledir`` (cleared with it), named by a digest of the specifications, the priors,
the data's shape and the source of ``models/`` with the versions of the compiling libraries.
A run with warm caches therefore has the machine to itself. ``--no-compile-ahead`` (and runs
of several studies, which already spread over the cores) never start it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Files in the helper's folder: the index of the specification the run is at, and of the
# one the helper is compiling.
REACHED, WORKING = "reached", "working"
# The longest the run waits for the helper to finish compiling the specification it reached.
WAIT_LIMIT_S = 900.0


def cache_digest(study, shape: tuple[int, int], columns, priors: Any, quick: bool) -> str:
    """Digest of what the compiled models of a run depend on: the study's specifications,
    the priors, whether the run is quick, the data's shape and columns, the source of
    ``models/`` and the versions of the compiling libraries."""
    from models.bayes.graph_recipe import environment_digest

    digest = hashlib.sha256()
    for part in (repr(study.specs), repr(priors), repr(quick), repr(shape), repr(list(columns)),
                 environment_digest()):
        digest.update(part.encode())
        digest.update(b"\x1f")
    return digest.hexdigest()[:24]


def marks_folder() -> Path:
    """The folder of the marks, inside the compile cache so that clearing it clears them."""
    import pytensor

    return Path(pytensor.config.base_compiledir) / "compiled_studies"


def mark_path(study_name: str, digest: str) -> Path:
    """Where a finished run marks the caches filled for ``digest``."""
    return marks_folder() / f"{study_name}-{digest}"


def caches_filled(study_name: str, digest: str) -> bool:
    """Whether a run with this digest finished its Bayesian fits on this machine before."""
    return mark_path(study_name, digest).exists()


def mark_filled(study_name: str, digest: str) -> None:
    """Record that the caches hold every model of this digest (after the Bayesian fits)."""
    path = mark_path(study_name, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(study_name + "\n")


def write_index(path: Path, index: int) -> None:
    """Write a specification's index so that a reader never sees a half-written file."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(str(index))
    temporary.replace(path)


def read_index(path: Path) -> int:
    """The index in ``path``; 0 before it is written."""
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return 0


class Helper:
    """The compiling process of one run; :meth:`stop` ends it (it only ever fills caches)."""

    def __init__(self, process: subprocess.Popen, folder: Path):
        self.process = process
        self.folder = folder

    def reached(self, index: int) -> float:
        """Tell the helper the run has reached specification ``index`` (1-based), so that it
        stops where its way backwards meets the run; when it is compiling that very
        specification, wait for it (at most ``WAIT_LIMIT_S``): compiling it twice at once
        would halve the speed of both on a 2-core machine (zhao2025's double threshold took
        134 s so, against 55-99 s alone). Returns the seconds waited."""
        write_index(self.folder / REACHED, index)
        started = time.perf_counter()
        while (self.process.poll() is None and read_index(self.folder / WORKING) == index
               and time.perf_counter() - started < WAIT_LIMIT_S):
            time.sleep(0.1)
        return time.perf_counter() - started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start(source: str, options_fields: dict) -> Helper:
    """Start the helper on ``source`` (a shipped study's name or a study file) with the run's
    options (their fields, paths as text); its output goes to a temporary folder's log."""
    folder = Path(tempfile.mkdtemp(prefix="compile_ahead_"))
    payload = json.dumps({"study": str(source), "options": options_fields, "out": str(folder)})
    log = open(folder / "helper.log", "wb")  # noqa: SIM115 - the child holds it
    env = dict(os.environ, PYTHONHASHSEED=os.environ.get("PYTHONHASHSEED", "0"))
    process = subprocess.Popen([sys.executable, "-m", "inference.compile_worker", payload],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               env=env, start_new_session=True)
    log.close()
    return Helper(process, folder)

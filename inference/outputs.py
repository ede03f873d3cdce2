"""The output folder of a run: checked before anything is fitted, and marked while a run writes.

A run writes ``results.csv``, ``index.html``, ``prior_sensitivity.csv``, posteriors
(``posterior_*.nc``) and figures (``*.png``) into its folder. Before fitting, the folder must be
creatable and writable, and no input the user gave (data file, priors file) may sit there
under a name the run writes: it would be overwritten. ``run.json`` in the folder says whether
the last run there finished; outputs of an earlier run in the same folder are removed when a
new run starts, so that a folder never mixes two runs.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterable
from pathlib import Path

from data.errors import DataError

OUTPUT_PATTERNS = ("results.csv", "index.html", "prior_sensitivity.csv", "claims.csv",
                   "posterior_*.nc", "*.png", "mediation_sensitivity_*.csv", ".*.partial")
MARKER = "run.json"


def _written_by_a_run(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in OUTPUT_PATTERNS)


def check_output_folder(out: Path, inputs: Iterable[tuple[str, Path | None]]) -> Path:
    """Create ``out`` if needed and refuse it when a run cannot write there or would overwrite
    one of ``inputs`` (``(option, path)`` pairs such as ``("--data", path)``).

    Raises
    ------
    DataError
        Naming the option and the path.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: is a file, not a folder; give a folder to write into.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"--out {out}: cannot create the folder ({error.strerror}).") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise DataError(f"--out {out}: the folder is not writable.")
    folder = out.resolve()
    for option, path in inputs:
        if path is None:
            continue
        source = Path(path).resolve()
        if source.parent == folder and _written_by_a_run(source.name):
            raise DataError(
                f"{option} {path} lies in the output folder {out} under a name the run writes "
                f"('{source.name}'); it would be overwritten. Move it or choose another --out.")
    return out


def start_run(out: Path, command: str, keep: Iterable[str] = ()) -> None:
    """Remove an earlier run's outputs from ``out`` (only files a run writes, and only where a
    run marker shows the folder is a run's), except the names in ``keep`` (posteriors this run
    may reuse), and mark the folder as being written."""
    marker = out / MARKER
    kept = set(keep)
    if marker.exists():
        for entry in out.iterdir():
            if entry.is_file() and _written_by_a_run(entry.name) and entry.name not in kept:
                entry.unlink()
    marker.write_text(json.dumps({"command": command, "status": "running"}) + "\n")


def finish_run(out: Path, status: str, **details) -> None:
    """Record how the run in ``out`` ended: ``complete``, ``interrupted`` or ``failed``."""
    marker = out / MARKER
    record = json.loads(marker.read_text()) if marker.exists() else {}
    record.update(status=status, **details)
    marker.write_text(json.dumps(record, indent=1) + "\n")

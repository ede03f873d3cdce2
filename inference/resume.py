"""Resume a study run: Bayesian fits that finished in an earlier run into the same folder are
reused, not refitted.

A fit is reused only when everything it depends on is the same: the study and the whole
specification, the sample's rows and values, the user's priors, the sampler settings, the
seed and the ``--quick`` switch. That key's entry (``.resume/<key>.json`` in the output folder)
lists the posterior files the fit wrote, its convergence problems and its result rows; it is
written after the files, so an entry exists only for a fit whose files are whole. The
posteriors stay where the run wrote them (no second copy on disk).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pandas as pd

FOLDER = ".resume"


def fit_key(spec, sample: pd.DataFrame, settings) -> str:
    """sha256 of what a Bayesian fit of ``spec`` on ``sample`` depends on."""
    digest = hashlib.sha256()
    rows = pd.util.hash_pandas_object(sample, index=True).to_numpy()
    digest.update(rows.tobytes())
    digest.update(",".join(map(str, sample.columns)).encode())
    described = {
        "spec": dataclasses.asdict(spec),
        "priors": repr(settings.priors),
        "sampling": settings.sampling,
        "seed": settings.seed,
        "quick": settings.quick,
    }
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


@dataclasses.dataclass
class SavedPosterior:
    """A posterior reused from an earlier run: its file, its convergence verdict, and its
    InferenceData loaded when first asked for."""

    path: Path
    problems: list[str]
    _idata: Any = None

    @property
    def idata(self):
        if self._idata is None:
            from models.bayes.storage import load_posterior

            self._idata = load_posterior(self.path)
        return self._idata

    def convergence_problems(self) -> list[str]:
        return list(self.problems)

    @property
    def converged(self) -> bool:
        return not self.problems

    def save_netcdf(self, path: str | Path) -> Path:
        """The file is already where the run writes it."""
        if Path(path).resolve() != self.path.resolve():
            raise ValueError(f"a reused posterior lives at {self.path}, not {path}")
        return self.path


def lookup(out_dir: Path, key: str
           ) -> tuple[pd.DataFrame, dict[str, SavedPosterior], list[Path]] | None:
    """The rows, posteriors and figures of a finished fit with this key, or None (no entry,
    or a file it lists is gone)."""
    entry = out_dir / FOLDER / f"{key}.json"
    if not entry.is_file():
        return None
    record = json.loads(entry.read_text())
    fits = {name: SavedPosterior(out_dir / item["file"], item["problems"])
            for name, item in record["fits"].items()}
    figures = [out_dir / name for name in record.get("figures", [])]
    if not all(path.is_file() for path in [*(f.path for f in fits.values()), *figures]):
        return None
    rows = pd.read_csv(StringIO(record["rows"]), keep_default_na=False, na_values=[""],
                       dtype={"table": str, "column": str, "term": str, "note": str})
    return rows, fits, figures


def record_fit(out_dir: Path, key: str, rows: pd.DataFrame, fits: dict, paths: list[Path],
               figures: list[Path] = ()) -> None:
    """Write the entry of a fit whose posterior files (``paths``, one per fit) and figures
    (with any table of numbers saved beside a figure under the same name) are written."""
    from models.bayes.provenance import write_atomically

    beside = [Path(f).with_suffix(".csv") for f in figures]
    entry = {
        "rows": rows.to_csv(index=False),
        "fits": {name: {"file": Path(path).name, "problems": fit.convergence_problems()}
                 for (name, fit), path in zip(fits.items(), paths, strict=True)},
        "figures": [Path(f).name for f in [*figures, *beside] if Path(f).is_file()],
    }
    write_atomically(out_dir / FOLDER / f"{key}.json",
                     lambda target: target.write_text(json.dumps(entry)))


def kept_files(out_dir: Path) -> set[str]:
    """Names of the posterior and figure files that resume entries in ``out_dir`` point to."""
    folder = out_dir / FOLDER
    names: set[str] = set()
    for entry in folder.glob("*.json") if folder.is_dir() else ():
        record = json.loads(entry.read_text())
        names.update(item["file"] for item in record["fits"].values())
        names.update(record.get("figures", []))
    return names

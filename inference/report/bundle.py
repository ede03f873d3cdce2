"""A finished run read back from its folder: results, posteriors, sensitivity and metadata.

The report is always built from a folder, never from objects in memory, so that ``run`` and
``report --from`` produce the same page. ``run.json`` holds what the folder's files do not
(data file and label, seed, sampler settings, what was skipped, which figures the estimators
wrote); a folder without it (an older run) is still readable, with the data label taken from
``results.csv``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from data.errors import DataError

RUN_FILE = "run.json"
POSTERIOR_PATTERN = re.compile(r"^posterior_table(?P<table>.+?)_col(?P<column>[^_]+)"
                               r"(?:_(?P<name>.+))?\.nc$")
# Figures this package used to write beside an older page; they are redrawn, not embedded.
OLD_REPORT_FIGURES = re.compile(r"^posterior_table.*\.png$")


class RunFolderError(DataError):
    """A folder that is not a finished run (missing, or without ``results.csv``)."""


@dataclass
class RunBundle:
    """Everything the report reads from one run folder."""

    folder: Path
    study: str
    results: pd.DataFrame
    meta: dict = field(default_factory=dict)
    sensitivity: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def data_label(self) -> str:
        """What the non-published numbers were computed on (``SYNTHETIC ...``, ``user data``)."""
        if self.meta.get("data_label"):
            return str(self.meta["data_label"])
        labels = self.results.loc[self.results["source"] != "published", "data_label"]
        labels = labels.dropna().astype(str)
        return labels.iloc[0] if len(labels) else "unknown"

    @property
    def synthetic(self) -> bool:
        """Whether the run used a synthetic panel (from ``run.json``, else from the label)."""
        if "synthetic" in self.meta:
            return bool(self.meta["synthetic"])
        return self.data_label.upper().startswith("SYNTHETIC")

    @property
    def title(self) -> str:
        """The study's title as the run recorded it (its id otherwise)."""
        return str(self.meta.get("title") or self.study)

    @cached_property
    def posterior_files(self) -> dict[tuple[str, str, str], Path]:
        """(table, column, model name) -> netCDF file of every saved posterior.

        Columns may hold underscores (``region_pooled``), so a file name is matched against
        the cells of ``results.csv``, longest first, before it is split by the pattern."""
        cells = sorted({(str(t), str(c)) for t, c in zip(self.results["table"],
                                                          self.results["column"])},
                       key=lambda cell: -len(cell[0]) - len(cell[1]))
        found = {}
        for path in sorted(self.folder.glob("posterior_*.nc")):
            for table, column in cells:
                stem = f"posterior_table{table}_col{column}"
                if path.name == f"{stem}.nc":
                    found[(table, column, "")] = path
                    break
                if path.name.startswith(f"{stem}_"):
                    found[(table, column, path.name[len(stem) + 1:-3])] = path
                    break
            else:
                match = POSTERIOR_PATTERN.match(path.name)
                if match:
                    found[(match["table"], match["column"], match["name"] or "")] = path
        return found

    def posterior(self, table: str, column: str, name: str | None = None):
        """The InferenceData of one fit (the first of the cell when ``name`` is None), or None;
        loaded on first use and kept."""
        keys = [k for k in self.posterior_files if k[:2] == (str(table), str(column))
                and (name is None or k[2] == name)]
        if not keys:
            return None
        key = keys[0]
        if key not in self._loaded:
            self._loaded[key] = _open_posterior(self.posterior_files[key])
        return self._loaded[key]

    def groups(self, table: str, column: str, name: str = "") -> list[str]:
        """The groups saved in one posterior file, read without loading any of them."""
        import h5py

        path = self.posterior_files.get((str(table), str(column), name))
        if path is None:
            return []
        with h5py.File(path, "r") as handle:
            return list(handle.keys())

    @cached_property
    def _loaded(self) -> dict:
        return {}

    def figures(self) -> list[Path]:
        """PNG figures the estimators wrote into the folder (LR curves, event paths, ...)."""
        named = self.meta.get("figures")
        if named is not None:
            return [self.folder / n for n in named if (self.folder / n).exists()]
        return [p for p in sorted(self.folder.glob("*.png"))
                if not OLD_REPORT_FIGURES.match(p.name)]


def _open_posterior(path: Path):
    """The posterior group of a saved fit, opened lazily: the report reads a few variables
    and the attributes, never the unit effects, so loading whole files would cost most of
    the rebuild."""
    import arviz as az
    import xarray as xr

    from models.bayes.storage import ENGINE

    return az.InferenceData(posterior=xr.open_dataset(path, group="posterior", engine=ENGINE))


def load_run(folder: str | Path, study: str | None = None) -> RunBundle:
    """Read a finished run from ``folder``; ``study`` must match the run's when given.

    Raises :class:`RunFolderError` naming the path when the folder or its ``results.csv`` is
    missing or unreadable, or when the run belongs to another study.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RunFolderError(f"run folder {folder} does not exist")
    path = folder / "results.csv"
    if not path.exists():
        raise RunFolderError(f"{folder} holds no results.csv: it is not a finished run "
                             "(run `python -m inference run STUDY --out DIR` first)")
    try:
        results = pd.read_csv(path, dtype={"table": str, "column": str, "term": str},
                              keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise RunFolderError(f"{path} cannot be read as the results table: {exc}") from None
    missing = {"study", "table", "column", "term", "source", "estimate"} - set(results)
    if missing:
        raise RunFolderError(f"{path} lacks the results columns {sorted(missing)}")
    results["note"] = results["note"].fillna("") if "note" in results else ""
    if "data_label" not in results:
        results["data_label"] = ""
    meta = {}
    if (folder / RUN_FILE).exists():
        try:
            meta = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RunFolderError(f"{folder / RUN_FILE} is not valid JSON: {exc}") from None
    found = results["study"].dropna().astype(str).unique().tolist()
    run_study = str(meta.get("study") or (found[0] if found else folder.name))
    if study is not None and run_study != study:
        raise RunFolderError(f"{folder} is a run of study '{run_study}', not '{study}'")
    sensitivity = pd.DataFrame()
    if (folder / "prior_sensitivity.csv").exists():
        sensitivity = pd.read_csv(folder / "prior_sensitivity.csv",
                                  dtype={"table": str, "column": str})
    return RunBundle(folder=folder, study=run_study, results=results, meta=meta,
                     sensitivity=sensitivity)


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes, or '' when it cannot be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def write_run_meta(outcome) -> Path:
    """Write ``run.json`` for a finished :class:`~inference.runner.RunOutcome`."""
    dataset, options = outcome.dataset, getattr(outcome, "options", None)
    meta = {
        "study": outcome.study.name,
        "title": outcome.study.title,
        "data_label": dataset.label,
        "synthetic": bool(dataset.synthetic),
        "data_path": str(dataset.path),
        "data_sha256": file_hash(dataset.path),
        "n_rows": int(len(dataset.frame)),
        "skipped": list(outcome.skipped),
        "figures": [Path(f).name for f in dict.fromkeys(outcome.figures)],
        "timings": {k: round(float(v), 3) for k, v in outcome.timings.items()},
    }
    if options is not None:
        meta.update({"seed": options.seed, "quick": options.quick,
                     "frequentist_only": options.frequentist_only,
                     "sampling": dict(options.sampling), "priors": list(options.priors),
                     "prior_file": str(options.prior_file) if options.prior_file else None})
    path = outcome.out_dir / RUN_FILE
    # The run marker may already hold the command and status of this run; keep them.
    record = {}
    if path.exists():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            record = {}
    record.update(meta)
    path.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    return path

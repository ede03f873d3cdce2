"""Run the studies: specifications as data, the command line, results and reports.

The Python API for scripts and notebooks::

    from inference import run_study, compare_runs, fit_panel

    run = run_study("zhao2025", quick=True, out="reports/zhao_default")
    run.results                      # the results table (published | frequentist | Bayesian)
    run.posteriors["2/6"]            # ArviZ InferenceData of Table 2 column 6
    shifts = compare_runs("reports/zhao_default", "reports/zhao_tight")

Everything is imported on first use, so ``import inference`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["StudyRun", "compare_runs", "fit_panel", "load_study_run", "run_study"]


@dataclass
class StudyRun:
    """A finished run: the results table, the posteriors by specification and the report.

    ``posteriors`` maps ``"table/column"`` (``"table/column/model"`` for a cell's further
    models, such as the threshold counts) to ArviZ ``InferenceData``, ready for
    ``az.plot_forest``, ``az.compare`` or your own code; each is read from the run's folder
    when asked for (:class:`StoredPosteriors`).
    """

    study: str
    folder: Path
    results: Any
    posteriors: Mapping[str, Any] = field(default_factory=dict)
    outcome: Any = None

    @property
    def report(self) -> Path:
        """The run's ``index.html``."""
        return self.folder / "index.html"

    def bayesian(self):
        """The Bayesian rows of the results table."""
        return self.results[self.results["source"] == "bayesian"]


class StoredPosteriors(Mapping):
    """Posteriors by ``"table/column[/model]"``, each read from its netCDF file when asked for
    (:func:`models.bayes.storage.load_posterior`), so that a run holds no posterior in
    memory; every access reads the file again."""

    def __init__(self, paths: dict[str, Path]):
        self.paths = dict(paths)

    def __getitem__(self, key: str):
        from models.bayes.storage import load_posterior

        return load_posterior(self.paths[key])

    def __iter__(self):
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)


def _posteriors_of(folder: Path) -> StoredPosteriors:
    from inference.report.bundle import load_run

    bundle = load_run(folder)
    return StoredPosteriors({f"{table}/{column}" + (f"/{name}" if name else ""): path
                             for (table, column, name), path in bundle.posterior_files.items()})


def run_study(study: str, *, data=None, out=None, seed: int = 20250401, quick: bool = False,
              frequentist_only: bool = False, priors=(), prior_file=None, draws=None,
              tune=None, chains=None, target_accept=None, progress=print) -> StudyRun:
    """Fit every specification of ``study`` (as ``python -m inference run``) and return the
    results table with the posteriors by specification; writes the same folder (results.csv,
    netCDF posteriors, index.html, claims.csv, tables/)."""
    from inference.runner import RunOptions
    from inference.runner import run_study as _run

    options = RunOptions(data=Path(data) if data else None, out=Path(out) if out else None,
                         seed=seed, quick=quick, frequentist_only=frequentist_only,
                         priors=tuple(priors), prior_file=Path(prior_file) if prior_file
                         else None, draws=draws, tune=tune, chains=chains,
                         target_accept=target_accept)
    outcome = _run(study, options, progress=progress)
    posteriors = StoredPosteriors({key.removesuffix("/"): path
                                   for key, path in outcome.posterior_files.items()})
    return StudyRun(study=study, folder=outcome.out_dir, results=outcome.results,
                    posteriors=posteriors, outcome=outcome)


def load_study_run(folder) -> StudyRun:
    """A finished run read back from its folder (nothing is fitted)."""
    from inference.report.bundle import load_run

    bundle = load_run(folder)
    return StudyRun(study=bundle.study, folder=Path(folder), results=bundle.results,
                    posteriors=_posteriors_of(Path(folder)))


def compare_runs(dir_a, dir_b, out=None, key_term: str | None = None, progress=print):
    """Line up two runs' posteriors (as ``python -m inference compare``); returns the table of
    shifts in posterior sd units and writes compare.html and compare.csv."""
    from inference.report.compare import compare_runs as _compare

    return _compare(dir_a, dir_b, out, key_term=key_term, progress=progress)


def fit_panel(data, formula: str, out, *, cluster: str | None = None, seed: int = 20250401,
              likelihood: str = "normal", quick: bool = False, frequentist_only: bool = False,
              priors=(), prior_file=None, progress=print, model: str = "twfe",
              **family) -> StudyRun:
    """Fit ``formula`` ("y ~ x1 + x2 | unit + time") on any panel file both ways (as
    ``python -m inference fit``); returns the results and the posteriors (key ``"fit/1"``,
    and ``"fit/1/<name>"`` for a family's further fits). ``model`` is ``twfe``, ``iv``,
    ``threshold``, ``event_study`` or ``mediation``; ``family`` the options of the last three
    (``threshold_variable``, ``regime``, ``treat``, ``reference``, ``mediators``,
    ``n_boot``), as the command line's."""
    from inference.fit_command import FitRequest, run_fit
    from inference.runner import sampling_settings

    sampling = sampling_settings(quick)
    if "mediators" in family:
        family["mediators"] = tuple(family["mediators"])
    results = run_fit(FitRequest(data=Path(data), formula=formula, out=Path(out),
                                 cluster=cluster, seed=seed, likelihood=likelihood,
                                 frequentist_only=frequentist_only, priors=tuple(priors),
                                 prior_file=Path(prior_file) if prior_file else None,
                                 model=model, quick=quick, **family, **sampling),
                      progress=progress)
    posteriors = {}
    for path in sorted(Path(out).glob("posterior_fit*.nc")):
        from models.bayes.storage import load_posterior

        name = path.stem.removeprefix("posterior_fit").removeprefix("_")
        posteriors["fit/1" + (f"/{name}" if name else "")] = load_posterior(path)
    return StudyRun(study="fit", folder=Path(out), results=results, posteriors=posteriors)

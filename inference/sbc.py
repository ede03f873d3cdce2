"""``python -m inference sbc FAMILY --sims N``: simulation-based calibration of a model family.

Each simulation is one Dask task (:mod:`inference.batch`): the family draws parameters from its
priors and data from its likelihood (:meth:`~models.bayes.calibration.CalibrationFamily.
simulate`), fits its own model (compiled once per worker process, the data swapped for each
simulation), and returns, per parameter, the truth, its rank among :data:`RANKED_DRAWS`
thinned posterior draws and whether the 94% HDI covers it. A fit that fails its convergence
checks is counted and reported, never ranked. The random numbers of simulation ``i`` come from
``SeedSequence([seed, i])``, so a batch is the same however it is split over workers, and an
interrupted one resumes from the results stored under ``OUT/.batch``.

Outputs in ``--out``: ``sbc_ranks.csv`` (one row per simulation and parameter),
``sbc_summary.csv`` (per parameter: the uniformity tests of :mod:`models.bayes.uniformity`,
the HDI coverage and a verdict), ``sbc_rank_histograms.png`` and ``sbc_ecdf_difference.png``.
"""

from __future__ import annotations

import functools
import importlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.bayes.calibration import HDI_PROB, RANKED_DRAWS, hdi_covers, rank_of, thin
from models.bayes.provenance import write_atomically
from models.bayes.uniformity import (
    chisquare_p,
    coverage_interval,
    coverage_p,
    ecdf_test,
    verdict,
)

FAMILIES = {
    "twfe": "models.panel.calibration:TwfeCalibration",
    "heterogeneity": "models.heterogeneity.calibration:HeterogeneityCalibration",
    "threshold": "models.threshold.calibration:ThresholdCalibration",
    "iv": "models.iv.calibration:IvCalibration",
    "mediation": "models.mediation.calibration:MediationCalibration",
    "event_study": "models.event_study.calibration:EventStudyCalibration",
    "event_study_negbin": "models.event_study.calibration:EventStudyNegbinCalibration",
}
# Used when a family does not set its own ``SAMPLING`` ({quick: settings}).
DEFAULT_SAMPLING = {False: {"draws": 1000, "tune": 1000, "chains": 4},
                    True: {"draws": 300, "tune": 300, "chains": 4}}
DATA_LABEL = "SIMULATED (simulation-based calibration)"


def family_class(name: str):
    """The calibration class registered as ``name``; ValueError naming the known families, or
    the missing module, otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown calibration family {name!r}; known: {', '.join(FAMILIES)}")
    module_name, _, class_name = FAMILIES[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ValueError(f"the {name} family has no calibration yet: module "
                             f"{module_name} is missing") from None
        raise
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ValueError(f"the {name} family has no calibration yet: {module_name} does not "
                         f"define {class_name}") from None


@functools.cache
def load_family(name: str, quick: bool):
    """The family object, built once per process: its compiled model then serves every
    simulation this process fits."""
    return family_class(name)(quick=quick)


def sampling_for(name: str, quick: bool) -> dict[str, int]:
    """Draws, tuning steps and chains of each fit: the family's ``SAMPLING`` or the default."""
    table = getattr(family_class(name), "SAMPLING", DEFAULT_SAMPLING)
    return dict(table[bool(quick)])


def simulate_and_fit(family: str, sim_index: int, seed: int, quick: bool,
                     sampling: dict) -> dict[str, Any]:
    """One simulation: simulate, fit, and rank each parameter's truth (the batch task).

    Returns ``{"simulation", "converged", "problems", "parameters": {name: {"truth", "rank",
    "ranked_draws", "hdi_covers"}}}``; rank and coverage are None when the fit did not converge.
    """
    calibration = load_family(family, quick)
    rng = np.random.default_rng(np.random.SeedSequence([seed, sim_index]))
    simulation = calibration.simulate(rng)
    fit = calibration.fit(simulation, int(rng.integers(2**31 - 1)), dict(sampling))
    converged = not fit.problems
    parameters = {}
    for name in calibration.parameters:
        truth = float(simulation.truth[name])
        entry = {"truth": truth, "rank": None, "ranked_draws": RANKED_DRAWS, "hdi_covers": None}
        if converged:
            draws = np.asarray(fit.draws[name], dtype=float).reshape(-1)
            entry["rank"] = rank_of(truth, thin(draws, RANKED_DRAWS), rng)
            entry["hdi_covers"] = hdi_covers(truth, draws, HDI_PROB)
        parameters[name] = entry
    return {"simulation": int(sim_index), "converged": converged,
            "problems": list(fit.problems), "parameters": parameters}


def rank_table(results: list[dict]) -> pd.DataFrame:
    """One row per simulation and parameter (``sbc_ranks.csv``)."""
    rows = []
    for result in sorted(results, key=lambda r: r["simulation"]):
        for name, entry in result["parameters"].items():
            rows.append({"data": DATA_LABEL, "simulation": result["simulation"],
                         "parameter": name, "truth": entry["truth"], "rank": entry["rank"],
                         "ranked_draws": entry["ranked_draws"],
                         "hdi_covers": entry["hdi_covers"], "converged": result["converged"],
                         "problems": "; ".join(result["problems"])})
    table = pd.DataFrame(rows)
    table["rank"] = table["rank"].astype("Int64")
    table["hdi_covers"] = table["hdi_covers"].astype("boolean")
    return table


def summary_table(ranks: pd.DataFrame, parameters: tuple[str, ...],
                  discrete: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per parameter: simulations, ranked, not converged, the chi-square and ECDF p-values,
    whether the ECDF is inside the simultaneous 95% band, the 94% HDI coverage with its 95%
    Clopper-Pearson interval and exact binomial p (one-sided for the ``discrete``
    parameters), and the verdict (``sbc_summary.csv``)."""
    rows = []
    for name in parameters:
        part = ranks[ranks["parameter"] == name]
        ranked = part[part["converged"]]
        values = ranked["rank"].to_numpy(dtype=int)
        n_draws = int(part["ranked_draws"].iloc[0]) if len(part) else RANKED_DRAWS
        ecdf = ecdf_test(values, n_draws)
        covered = int(ranked["hdi_covers"].astype(bool).sum())
        low, high = coverage_interval(covered, len(ranked))
        chi_p = chisquare_p(values, n_draws)
        cover_p = coverage_p(covered, len(ranked), HDI_PROB, name in discrete)
        rows.append({"data": DATA_LABEL, "parameter": name, "simulations": len(part),
                     "ranked": len(ranked), "not_converged": int((~part["converged"]).sum()),
                     "chisquare_p": chi_p, "ecdf_p": ecdf.p, "inside_ecdf_band": ecdf.inside,
                     "hdi_coverage": covered / len(ranked) if len(ranked) else float("nan"),
                     "coverage_low": low, "coverage_high": high, "coverage_p": cover_p,
                     "verdict": verdict(chi_p, ecdf.p, cover_p, len(ranked))})
    return pd.DataFrame(rows)


@dataclass
class SbcOutcome:
    """What a calibration run produced: the tables, where they went, and how it ran."""

    family: str
    out: Path
    ranks: pd.DataFrame
    summary: pd.DataFrame
    wall_s: float
    workers: str
    reused: int


def run_sbc(family: str, sims: int, *, quick: bool = False, out: str | Path | None = None,
            seed: int = 20250401, workers: int | None = None, scheduler: str | None = None,
            progress: Callable[[str], None] = print) -> SbcOutcome:
    """Calibrate ``family`` on ``sims`` simulations and write the outputs of the module
    docstring to ``out`` (default ``reports/sbc/FAMILY``)."""
    from inference.batch import Task, run_batch, task_key

    if sims < 1:
        raise ValueError(f"--sims must be at least 1; got {sims}")
    cls = family_class(family)
    out = Path(out) if out is not None else Path("reports") / "sbc" / family
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    sampling = sampling_for(family, quick)
    version = str(getattr(cls, "version", "1"))
    tasks = [Task(key=task_key("sbc", family, i, seed, sampling, bool(quick), version),
                  function="inference.sbc:simulate_and_fit",
                  kwargs={"family": family, "sim_index": i, "seed": seed, "quick": bool(quick),
                          "sampling": sampling},
                  label=f"{family} simulation {i}")
             for i in range(sims)]
    seen: dict[str, Any] = {"workers": None, "reused": 0}

    def watch(line: str) -> None:
        found = re.search(r"(\d+) Dask worker", line)
        if found:
            seen["workers"] = found.group(1)
        found = re.search(r"(\d+) finished before \(reused\)", line)
        if found:
            seen["reused"] = int(found.group(1))
        progress(line)

    started = time.perf_counter()
    results = run_batch(tasks, out / ".batch", scheduler=scheduler, workers=workers,
                        progress=watch)
    ranks = rank_table(list(results.values()))
    # A family whose parameters depend on its design (the event years) names them per object.
    parameters = tuple(getattr(cls, "parameters", None) or dict.fromkeys(ranks["parameter"]))
    summary = summary_table(ranks, parameters, tuple(getattr(cls, "discrete", ())))
    out.mkdir(parents=True, exist_ok=True)
    for name, table in (("sbc_ranks.csv", ranks), ("sbc_summary.csv", summary)):
        write_atomically(out / name, lambda p, t=table: t.to_csv(p, index=False))
    from inference.sbc_plots import plot_ecdf_differences, plot_rank_histograms

    plot_rank_histograms(ranks, parameters, family, out / "sbc_rank_histograms.png")
    plot_ecdf_differences(ranks, parameters, family, out / "sbc_ecdf_difference.png")
    wall = time.perf_counter() - started
    if scheduler is not None:
        workers_text = f"the cluster at {scheduler}"
    elif seen["workers"] is None:
        workers_text = "no workers (every fit reused)"
    else:
        workers_text = f"{seen['workers']} worker(s)"
    outcome = SbcOutcome(family, out, ranks, summary, wall, workers_text, seen["reused"])
    progress(describe(outcome, sampling))
    return outcome


def describe(outcome: SbcOutcome, sampling: dict) -> str:
    """The printed summary of a calibration run."""
    summary = outcome.summary
    n_sims = int(summary["simulations"].max()) if len(summary) else 0
    not_converged = int(outcome.ranks.groupby("simulation")["converged"].first().eq(False).sum())
    lines = [f"SBC of {outcome.family} on {n_sims} SIMULATED data sets "
             f"({sampling['chains']} chains x {sampling['draws']} draws after "
             f"{sampling['tune']} tuning steps): {not_converged} fit(s) not converged (counted, "
             f"not ranked), {outcome.reused} reused from {outcome.out / '.batch'}; "
             f"wall time {outcome.wall_s:.1f} s on {outcome.workers}",
             f"{'parameter':<16}{'ranked':>7}{'chi2 p':>8}{'ECDF p':>8}{'band':>6}"
             f"{'HDI94%':>8}  verdict"]
    for row in summary.itertuples():
        lines.append(f"{row.parameter:<16}{row.ranked:>7}{row.chisquare_p:>8.3f}"
                     f"{row.ecdf_p:>8.3f}{'in' if row.inside_ecdf_band else 'OUT':>6}"
                     f"{row.hdi_coverage:>8.2f}  {row.verdict}")
    lines.append(f"outputs: {outcome.out}")
    return "\n".join(lines)

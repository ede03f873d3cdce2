"""Compile and sampling time of one model of each Bayesian family, by compile route, with
cold (empty) and warm (filled) compile caches, each run in a fresh process.

Routes: ``cached`` (:func:`models.bayes.nutpie_compile.compile_model`, the project's route:
cached on disk) and ``nutpie`` (``nutpie.compile_pymc_model(model, backend="numba")``, not
cached). Models: the Bayesian Hansen (1999) double threshold, and the fixed designs of the
event-study, IV, mediation and partial-pooling calibrations, each on one data set simulated
from its priors (seed 1).
Each run samples 4 chains x 1,000 draws after 1,000 tuning steps, seed 1.

    python benchmarks/bench_compile.py [--families threshold,event_study,iv,mediation,
        heterogeneity] [--routes cached,nutpie]
    python benchmarks/bench_compile.py --one FAMILY ROUTE     (one run, JSON on stdout)

Cold: ``NUMBA_CACHE_DIR`` and ``PYTENSOR_FLAGS=base_compiledir`` point at fresh folders (also
PyTensor's C cache, which PyMC's initial-point function uses); warm: a second process on the
folders the first filled.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FAMILIES = ("threshold", "event_study", "iv", "mediation", "heterogeneity")
ROUTES = ("cached", "nutpie")


def build_model(family: str):
    """One PyMC model of ``family`` (see the module docstring) and the values of its data
    containers for one simulated data set (seed 1) of the family's calibration."""
    if family == "threshold":
        from benchmarks.bench_bayes_threshold import FIXED
        from data.hansen1999 import load_invest_panel
        from models.threshold.data import prepare_threshold_data, threshold_log_prior
        from models.threshold.likelihood import profile_fit
        from models.threshold.model import build_threshold_model, whitening
        from models.threshold.priors import resolve_slope_priors

        stats = prepare_threshold_data(load_invest_panel(), y="I", regime="CF", threshold="D",
                                       fixed=FIXED, unit="firm", period="year",
                                       demean="hansen", time=False, grid_size=400, trim=0.01)
        log_prior = threshold_log_prior(stats.grid, 2, "uniform", [4])
        centre, chol = whitening(profile_fit(stats, 2, log_prior))
        return build_threshold_model(stats, 2, resolve_slope_priors(None, stats, 2),
                                     log_prior, centre, chol), {}
    rng = np.random.default_rng(1)
    if family == "event_study":
        from models.event_study.calibration import EventStudyCalibration

        design = EventStudyCalibration()
        return design.model, design.data_values(design.simulate(rng))
    if family == "iv":
        from models.iv.calibration import IvCalibration

        design = IvCalibration()
        return design.model, design.data_values(design.simulate(rng))
    if family == "mediation":
        from models.mediation.calibration import MediationCalibration

        design = MediationCalibration()
        return design.model, design.data_values(design.simulate(rng))
    if family == "heterogeneity":
        from models.heterogeneity.calibration import HeterogeneityCalibration
        from models.heterogeneity.model import outcome_data

        design = HeterogeneityCalibration()
        simulation = design.simulate(rng)
        return design.model(), outcome_data(design.prepare(simulation.data))
    raise ValueError(f"unknown family {family!r}; use one of {FAMILIES}")


def run_one(family: str, route: str) -> dict:
    """Build, compile and sample one model in this process; the seconds of each step, the
    gradient evaluations and the posterior means and sds of the free variables."""
    from models.bayes.sampler import run_nutpie

    start = time.perf_counter()
    model, data = build_model(family)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    if route == "cached":
        from models.bayes.nutpie_compile import compile_model

        compiled = compile_model(model)
    elif route == "nutpie":
        import nutpie

        compiled = nutpie.compile_pymc_model(model, backend="numba")
    else:
        raise ValueError(f"unknown route {route!r}; use one of {ROUTES}")
    compile_s = time.perf_counter() - start
    compiled = compiled.with_data(**data) if data else compiled
    idata, sampling_s = run_nutpie(compiled, 1000, 1000, 4, 1, False)
    steps = int(idata.sample_stats["n_steps"].sum())
    names = [v.name for v in model.free_RVs]
    summary = {name: [float(idata.posterior[name].mean()), float(idata.posterior[name].std())]
               for name in names if name in idata.posterior}
    return {"family": family, "route": route, "build_s": build_s, "compile_s": compile_s,
            "sampling_s": sampling_s, "draw_steps": steps,
            "us_per_step": 1e6 * sampling_s / max(steps, 1), "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--one", nargs=2, metavar=("FAMILY", "ROUTE"))
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(*args.one)), flush=True)
        return
    from benchmarks.measure import python_command, run_measured

    for family in args.families.split(","):
        for route in args.routes.split(","):
            with tempfile.TemporaryDirectory() as caches:
                env = {"NUMBA_CACHE_DIR": f"{caches}/numba",
                       "PYTENSOR_FLAGS": f"base_compiledir={caches}/pytensor"}
                for label in ("cold", "warm"):
                    load = os.getloadavg()[0]
                    run = run_measured(python_command(__file__, "--one", family, route), env)
                    lines = [x for x in run["output"].splitlines() if x.startswith("RESULT ")]
                    if not lines:
                        print(f"{family} {route} {label} failed:\n{run['output']}")
                        continue
                    result = json.loads(lines[-1][len("RESULT "):])
                    print(f"{family:<13} {route:<6} {label}: process {run['seconds']:5.1f} s, "
                          f"build {result['build_s']:4.1f}, compile {result['compile_s']:5.1f}, "
                          f"sampling {result['sampling_s']:5.2f} s "
                          f"({result['us_per_step']:.0f} us per draw gradient, tuning included; "
                          f"{result['draw_steps']} in the draws), load {load:.1f}  "
                          f"{json.dumps(result['summary'])}", flush=True)


if __name__ == "__main__":
    main()

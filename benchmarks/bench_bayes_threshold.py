"""Time the Bayesian double-threshold posterior on Hansen's (1999) data.

Fits :func:`models.threshold.bayes.fit_bayes_threshold` (thresholds marginalised exactly over
Hansen's grid, NUTS by nutpie; 4 chains x 1,000 draws after 1,000 tuning steps by default) and,
in the same process, the frequentist :func:`models.threshold.hansen.fit_panel_threshold` with 300
bootstraps per test, and prints both wall times, their ratio, the Bayesian time split
(compile, sampling, post-processing) and the thresholds beside Hansen's 95% sets.

    python benchmarks/bench_bayes_threshold.py [--draws 1000] [--tune 1000] [--chains 4]
        [--boot 300] [--no-pointwise] [--bayes-only]

``--bayes-only`` skips the frequentist fit and prints the Bayesian wall times as one JSON line
(``TIMES {...}``), as the benchmark suite reads them.

Warm and cold compilation: the numba kernels of :mod:`models.threshold.kernels` are
cached on disk (``models/threshold/__pycache__``, or ``$NUMBA_CACHE_DIR``) and the compiled
log density and its gradient are cached by PyTensor's numba cache (under its
``base_compiledir``; :mod:`models.bayes.nutpie_compile`), so only the first run on a machine
compiles them. To time a cold start, point both caches at empty folders:

    NUMBA_CACHE_DIR=$(mktemp -d) PYTENSOR_FLAGS=base_compiledir=$(mktemp -d) \
        python benchmarks/bench_bayes_threshold.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.hansen1999 import load_invest_panel  # noqa: E402
from models.threshold.bayes import fit_bayes_threshold  # noqa: E402
from models.threshold.hansen import fit_panel_threshold  # noqa: E402

FIXED = ["Q", "Q2", "Q3", "D", "QD"]
HANSEN_CI = {"gamma_1": (0.0139, 0.0181), "gamma_2": (0.5305, 0.5629)}


def bayes(panel, args):
    """The Bayesian double threshold with the command line's sampling settings."""
    return fit_bayes_threshold(panel, y="I", regime="CF", threshold="D", fixed=FIXED,
                               unit="firm", period="year", n_thresholds=2, draws=args.draws,
                               tune=args.tune, chains=args.chains, seed=1,
                               pointwise=not args.no_pointwise)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--boot", type=int, default=300)
    parser.add_argument("--no-pointwise", action="store_true",
                        help="skip the pointwise log likelihood (LOO) after sampling")
    parser.add_argument("--bayes-only", action="store_true",
                        help="skip the frequentist fit; print the Bayesian times as JSON")
    args = parser.parse_args()
    panel = load_invest_panel()
    if args.bayes_only:
        load = os.getloadavg()[0]
        # The fit imports PyMC and nutpie on first use (1.4-2.3 s): a process cost, timed apart
        # as the TWFE benchmark does, so that the fit's time is the fit's.
        start = time.perf_counter()
        import nutpie  # noqa: F401
        import pymc  # noqa: F401
        imported = time.perf_counter() - start
        start = time.perf_counter()
        fit = bayes(panel, args)
        print("TIMES " + json.dumps({**fit.wall_times, "fit_s": time.perf_counter() - start,
                                     "import_s": imported, "load": load,
                                     "converged": bool(fit.converged)}))
        return

    start = time.perf_counter()
    frequentist = fit_panel_threshold(panel, y="I", regime="CF", threshold="D", fixed=FIXED,
                                      unit="firm", period="year", n_thresholds=2, n_tests=2,
                                      n_boot=args.boot, seed=1)
    frequentist_s = time.perf_counter() - start

    start = time.perf_counter()
    fit = bayes(panel, args)
    bayes_s = time.perf_counter() - start

    print(f"frequentist fit_panel_threshold (double, {args.boot} + {args.boot} bootstraps): "
          f"{frequentist_s:.1f} s")
    print(f"Bayesian double threshold ({args.chains} chains x {args.draws} draws, "
          f"{args.tune} tuning): {bayes_s:.1f} s  {fit.wall_times}")
    times = fit.wall_times
    other = times["total_s"] - times["compile_s"] - times["sampling_s"] - times["postprocess_s"]
    print(f"split: compile {times['compile_s']:.1f} s, sampling {times['sampling_s']:.1f} s, "
          f"post-processing {times['postprocess_s']:.1f} s, other (data, profile fit, model) "
          f"{other:.1f} s")
    print(f"ratio Bayesian / frequentist: {bayes_s / frequentist_s:.1f}")
    table = fit.tidy().set_index("term")
    for term, (low, high) in HANSEN_CI.items():
        row = table.loc[term]
        print(f"{term}: posterior mean {row['estimate']:.4f}, 94% HDI [{row['ci_low']:.4f}, "
              f"{row['ci_high']:.4f}]; Hansen 95% set [{low}, {high}]")
    print("frequentist thresholds:", frequentist.thresholds)
    print("converged:", fit.converged, fit.convergence_problems())


if __name__ == "__main__":
    main()

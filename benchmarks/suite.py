"""Every benchmark in one run, ratios against peers measured in the same run.

    python -m inference bench [--quick] [--out DIR]      (or python -m benchmarks.suite)

1. TWFE: the warm fit end to end by phase (NUTS, exact draws, log-likelihood and log prior,
   save), bulk ESS/s of the AI slope, ours against PyMC's default NUTS on the textbook
   parametrisation (left out with ``--quick``) and against exact conjugate draws, and the
   first fit in a fresh process with an empty and with a filled numba cache
   (:mod:`benchmarks.bench_bayes_twfe`), on a simulated zhao2025-shaped panel.
2. Hansen (1999) double threshold with 300 + 300 bootstraps, ours against pyxthreg (when
   installed: ``pip install -e ".[bench]"``), and both sets of p-values beside Hansen's.
3. The Bayesian double threshold on Hansen's data, each in its own process: cold (empty
   compile caches) and warm (the caches filled).
4. Study runs, each in its own process: frequentist-only, then the whole run with empty
   compile caches (cold) and again with the caches it filled (warm): wall time, peak memory,
   output size; the first study also cold without the compiling helper
   (``--no-compile-ahead``). ``--studies`` picks the studies; ``--quick`` runs zhao2025 only,
   with ``--quick`` sampling.
5. The scale curve: TWFE and threshold, frequentist and Bayesian, at 1x, 10x, 100x the
   zhao2025 cities (1x, 4x with ``--quick``): wall time and peak memory per point, the exponent
   of time in rows, and the largest panel whose extrapolated peak memory fits 24 GiB.

Writes ``bench.csv`` (section, name, value, unit, note) and ``bench.png`` into ``--out``
(default ``reports/bench``). Simulated panels are labelled SYNTHETIC. The machine's load is
recorded (``os.getloadavg``) at the start and end, since a busy machine slows every number.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.measure import folder_size_mb, python_command, run_measured

STUDIES = ("zhao2025", "zhu2025", "fu2021", "agglo2025", "hansen1999")
GIB_24_MB = 24 * 1024.0


class Table:
    """The benchmark's rows as they are measured, echoed to the terminal."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, section: str, name: str, value: float, unit: str, note: str = "") -> None:
        self.rows.append({"section": section, "name": name, "value": value, "unit": unit,
                          "note": note})
        shown = f"{value:,.3g}" if isinstance(value, float) else str(value)
        print(f"  {section:<10} {name:<52} {shown:>12} {unit:<8} {note}", flush=True)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["section", "name", "value", "unit", "note"])


def twfe_sampling(table: Table, quick: bool) -> None:
    """The Bayesian TWFE: warm fit end to end by phase, bulk ESS/s of the AI slope against
    exact conjugate draws (and PyMC's default NUTS), first fits cold and warm."""
    from benchmarks.bench_bayes_twfe import (
        compile_cold_and_warm,
        run_exact,
        run_ours,
        run_pymc_default,
        simulate_zhao_like,
    )

    draws, tune, chains = (300, 300, 2) if quick else (1000, 1000, 4)
    panel = simulate_zhao_like()
    ours = run_ours(panel, draws, tune, chains, seed=0, repeats=5)
    exact = run_exact(panel, draws * chains, chains, seed=0, repeats=5)
    runs = {"ours": ours, "exact": exact}
    if not quick:
        runs["pymc_default"] = run_pymc_default(panel, draws, tune, chains, seed=0)
    for name, run in runs.items():
        run["per_s"] = run["ess"] / run["sampling_s"]
        table.add("twfe", f"{name}: bulk ESS/s of AI (sampling)", run["per_s"], "1/s",
                  "SYNTHETIC panel; ours counts NUTS, trace conversion and exact draws")
    table.add("twfe", "ratio exact / ours (ESS/s)", exact["per_s"] / ours["per_s"], "x",
              "goal: at most 3")
    without_units = ours["ess"] / (ours["sampling_s"] - ours["unit_effect_draws_s"])
    table.add("twfe", "ratio exact / ours (ESS/s), unit-effect draws not counted",
              exact["per_s"] / without_units, "x", "as counted before the scales-only sampler")
    if "pymc_default" in runs:
        table.add("twfe", "ratio ours / PyMC default NUTS (ESS/s)",
                  ours["per_s"] / runs["pymc_default"]["per_s"], "x")
    table.add("twfe", "ours: warm fit end to end (fit + save)", ours["end_to_end_s"], "s",
              "goal: at most 0.3; fastest of 5")
    table.add("twfe", "ours: warm fit without the save", ours["fit_s"], "s", "fastest of 5")
    for key, label in (("nuts_s", "NUTS and trace conversion"),
                       ("exact_draws_s", "exact draws of the integrated-out terms"),
                       ("log_density_s", "log-likelihood and log prior"),
                       ("save_s", "save to netCDF")):
        table.add("twfe", f"ours: warm {label}", ours[key], "s",
                  f"{ours[key] / ours['end_to_end_s']:.0%} of end to end")
    table.add("twfe", "ours: warm rest of the fit (data, predictive, record)",
              ours["fit_s"] - ours["sampling_s"] - ours["log_density_s"], "s")
    first = compile_cold_and_warm(draws, tune, chains)
    for label in ("cold", "warm"):
        run = first[label]
        table.add("twfe", f"ours: first fit in a fresh process, {label} numba cache",
                  run["fit_s"], "s", f"compile {run['compile_s']:.2f} s, imports "
                  f"{run['import_s']:.1f} s, process {run['process_s']:.1f} s")
    table.add("twfe", "ratio cold / warm first fit", first["cold"]["fit_s"]
              / first["warm"]["fit_s"], "x")


def threshold_against_peer(table: Table) -> None:
    """Hansen's double threshold with 300 + 300 bootstraps: ours and pyxthreg."""
    from benchmarks.bench_threshold import PUBLISHED, run_ours, run_pyxthreg, timed
    from data.hansen1999 import load_invest_panel

    panel = load_invest_panel()
    run_ours(panel, 2)  # first call compiles the numba kernels or loads them from the cache
    ours_s, ours = timed(run_ours, panel, 300)
    table.add("threshold", "ours: double threshold, 300 + 300 bootstraps", ours_s, "s")
    table.add("threshold", "ours: p single / double", ours.tests["single"].p_value, "p",
              f"double {ours.tests['double'].p_value:.3f}; Hansen printed "
              f"{PUBLISHED['p_single']} / {PUBLISHED['p_double']}")
    try:
        import pyxthreg

        run_pyxthreg(panel, 2)
        peer_s, peer = timed(run_pyxthreg, panel, 300)
    except Exception as error:  # noqa: BLE001 - an absent or failing peer must not stop ours
        table.add("threshold", "pyxthreg", float("nan"), "s",
                  f"not measured: {type(error).__name__}: {error}")
        return
    p_single, p_double = (peer["boot_results"][i]["p_value"] for i in (0, 1))
    off = max(abs(p_single - PUBLISHED["p_single"]), abs(p_double - PUBLISHED["p_double"])) > 0.05
    table.add("threshold", f"pyxthreg {pyxthreg.__version__}: same fit", peer_s, "s")
    table.add("threshold", "ratio pyxthreg / ours", peer_s / ours_s, "x")
    table.add("threshold", f"pyxthreg {pyxthreg.__version__}: p single / double", p_single, "p",
              f"double {p_double:.3f}; " + ("still far from Hansen's printed p-values" if off
                                            else "close to Hansen's printed p-values"))


def bayes_threshold(table: Table, quick: bool, scratch: Path) -> None:
    """The Bayesian double threshold on Hansen's data in its own process: cold (empty compile
    caches) and warm (the caches the cold run filled)."""
    caches = {"NUMBA_CACHE_DIR": str(scratch / "threshold_numba"),
              "PYTENSOR_FLAGS": f"base_compiledir={scratch / 'threshold_pytensor'}"}
    sampling = (["--draws", "300", "--tune", "300", "--chains", "2"] if quick else [])
    for label in ("cold (empty compile caches)", "warm (caches filled)"):
        measured = run_measured(python_command("benchmarks/bench_bayes_threshold.py",
                                               "--bayes-only", *sampling), env=caches)
        lines = [x for x in measured["output"].splitlines() if x.startswith("TIMES ")]
        if measured["returncode"] != 0 or not lines:
            table.add("threshold", f"Bayesian double threshold, {label}", float("nan"), "s",
                      f"FAILED with status {measured['returncode']}")
            continue
        times = json.loads(lines[-1][len("TIMES "):])
        table.add("threshold", f"Bayesian double threshold, {label}", times["fit_s"], "s",
                  f"compile {times['compile_s']:.1f}, sampling {times['sampling_s']:.1f}, "
                  f"post-processing {times['postprocess_s']:.1f}; imports before it "
                  f"{times.get('import_s', float('nan')):.1f} s, process "
                  f"{measured['seconds']:.1f} s, load {times['load']:.1f}; "
                  "goal warm <= 8, cold <= 15")


def study_runs(table: Table, studies: tuple[str, ...], quick: bool, scratch: Path) -> None:
    """Each study's frequentist-only run, and its whole run cold and warm, in own processes;
    the first study also cold without the compiling helper (``--no-compile-ahead``), on
    caches of its own, for the ratio."""
    extra = ["--quick"] if quick else []
    for position, study in enumerate(studies):
        caches = _caches(scratch / study)
        runs = [("frequentist-only", ["--frequentist-only"], {}),
                ("cold (empty compile caches)", extra, caches),
                ("warm (caches filled)", extra, caches)]
        if position == 0:
            runs.append(("cold without the compiling helper", [*extra, "--no-compile-ahead"],
                         _caches(scratch / f"{study}_alone")))
        for index, (label, options, env) in enumerate(runs):
            out = scratch / f"{study}_{index}"
            measured = run_measured(python_command("-m", "inference", "run", study, "--out",
                                                   str(out), *options), env=env)
            note = f"peak {measured['peak_mb']:,.0f} MB, outputs {folder_size_mb(out):,.0f} MB"
            if measured["returncode"] != 0:
                note += f"; FAILED with status {measured['returncode']}"
            table.add("studies", f"{study} {'quick ' if quick and index else ''}{label}",
                      measured["seconds"], "s", note)


def _caches(folder: Path) -> dict[str, str]:
    """Environment of a process whose numba and PyTensor compile caches live in ``folder``."""
    return {"NUMBA_CACHE_DIR": str(folder / "numba"),
            "PYTENSOR_FLAGS": f"base_compiledir={folder / 'pytensor'}"}


def machine_speed(table: Table) -> None:
    """Two fixed workloads, for comparing absolute times between machines: a pure-Python
    loop (what PyTensor's rewriting and numba's typing are made of) and a float64 matrix
    product on one thread."""
    import time

    started = time.perf_counter()
    total = 0
    for step in range(10**7):
        total += step
    table.add("machine", "pure-Python loop of 1e7 additions", time.perf_counter() - started,
              "s", "one core; compare machines by it")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1000, 1000)), rng.normal(size=(1000, 1000))
    started = time.perf_counter()
    for _ in range(5):
        a @ b
    table.add("machine", "1000 x 1000 matrix product", (time.perf_counter() - started) / 5,
              "s", "float64, numpy's BLAS")


def scale_curve(table: Table, quick: bool) -> list[dict]:
    """Each model at growing panel sizes, each point in its own process."""
    factors = (1, 4) if quick else (1, 10, 100)
    points = []
    for model in ("twfe", "twfe_bayes", "threshold", "threshold_bayes"):
        for factor in factors:
            arguments = ["-m", "benchmarks.scale", model, str(factor)] + (["--quick"] if quick
                                                                            else [])
            measured = run_measured(python_command(*arguments))
            lines = [ln for ln in measured["output"].splitlines() if ln.startswith("{")]
            if measured["returncode"] != 0 or not lines:
                table.add("scale", f"{model} x{factor}", float("nan"), "s",
                          f"FAILED (status {measured['returncode']}): "
                          f"{measured['output'][-300:]!r}")
                break  # a larger panel would fail the same way
            point = json.loads(lines[-1]) | {"peak_mb": measured["peak_mb"]}
            points.append(point)
            table.add("scale", f"{model} x{factor} ({point['rows']:,} rows SYNTHETIC)",
                      point["warm_s"], "s", f"first fit {point['first_s']:.1f} s, peak "
                      f"{point['peak_mb']:,.0f} MB")
        mine = [p for p in points if p["model"] == model]
        if len(mine) >= 2:
            rows = np.log([p["rows"] for p in mine])
            exponent = np.polyfit(rows, np.log([p["warm_s"] for p in mine]), 1)[0]
            slope, base = np.polyfit([p["rows"] for p in mine], [p["peak_mb"] for p in mine], 1)
            largest = (GIB_24_MB - base) / slope if slope > 0 else float("inf")
            table.add("scale", f"{model}: exponent of time in rows", float(exponent), "",
                      "goal: 1 (linear)")
            table.add("scale", f"{model}: largest panel in 24 GiB (extrapolated)",
                      float(largest), "rows", "linear fit of peak memory in rows")
    return points


def plot(frame: pd.DataFrame, points: list[dict], path: Path) -> None:
    """The scale curve (log-log) and the study run times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for model in dict.fromkeys(p["model"] for p in points):
        mine = [p for p in points if p["model"] == model]
        left.loglog([p["rows"] for p in mine], [p["warm_s"] for p in mine], "o-", label=model)
    left.set(xlabel="rows (SYNTHETIC panels)", ylabel="seconds (warm fit)",
             title="Cost against panel size")
    if points:
        left.legend()
    studies = frame[frame["section"] == "studies"]
    right.barh(studies["name"], studies["value"])
    right.set(xlabel="seconds", title="Study runs")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> Path:
    """Run the benchmarks and write ``bench.csv`` and ``bench.png``; returns the CSV's path."""
    parser = argparse.ArgumentParser(prog="python -m inference bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (minutes)")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    parser.add_argument("--sections", default="twfe,threshold,studies,scale",
                        help="comma-separated subset of twfe,threshold,studies,scale")
    parser.add_argument("--studies", type=lambda text: tuple(text.split(",")),
                        help=f"comma-separated studies of the study runs (default: "
                             f"{','.join(STUDIES)}; zhao2025 with --quick)")
    args = parser.parse_args(argv)
    sections = set(args.sections.split(","))
    unknown = sections - {"twfe", "threshold", "studies", "scale"}
    if unknown:
        raise ValueError(f"unknown benchmark section(s) {sorted(unknown)}")
    warnings.filterwarnings("ignore")
    args.out.mkdir(parents=True, exist_ok=True)
    table = Table()
    table.add("machine", "cores", float(os.cpu_count() or 0), "")
    table.add("machine", "load average at start (1 min)", os.getloadavg()[0], "")
    machine_speed(table)
    points: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        if "twfe" in sections:
            twfe_sampling(table, args.quick)
        if "threshold" in sections:
            threshold_against_peer(table)
            bayes_threshold(table, args.quick, Path(scratch))
        if "studies" in sections:
            study_runs(table, args.studies or (("zhao2025",) if args.quick else STUDIES),
                       args.quick, Path(scratch))
        if "scale" in sections:
            points = scale_curve(table, args.quick)
    table.add("machine", "load average at end (1 min)", os.getloadavg()[0], "")
    frame = table.frame()
    path = args.out / "bench.csv"
    frame.to_csv(path, index=False, float_format="%.6g")
    plot(frame, points, args.out / "bench.png")
    print(f"wrote {path} and {args.out / 'bench.png'}")
    return path


if __name__ == "__main__":
    main()

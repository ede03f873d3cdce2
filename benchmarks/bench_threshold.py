"""Time the double-threshold fit with 300 + 300 bootstraps on Hansen's (1999) data.

Runs this project's estimator (``models.threshold.hansen``) and, when it is installed, pyxthreg
0.0.3 in the same process, and prints both times, their ratio, and both sets of thresholds and
bootstrap p-values beside Hansen's published Table 2/3 values.
    python benchmarks/bench_threshold.py [--boot 300] [--repeats 3]

The two programs do not bootstrap alike: ours resamples whole units' residual vectors and
re-estimates the earlier thresholds in every sample, as Hansen's program; pyxthreg draws a wild
(normal-multiplier) bootstrap with the earlier thresholds held fixed. pyxthreg also demeans with
all rows kept, tests q <= gamma and draws its own grid, so its thresholds differ slightly.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.hansen1999 import load_invest_panel  # noqa: E402
from models.threshold.hansen import fit_panel_threshold  # noqa: E402

FIXED = ["Q", "Q2", "Q3", "D", "QD"]
PUBLISHED = {"gamma_1": 0.0157, "gamma_2": 0.5362, "p_single": 0.003, "p_double": 0.017,
             "F_single": 32.6, "F_double": 25.8}


def run_ours(panel, n_boot: int, demean: str = "hansen"):
    return fit_panel_threshold(panel, y="I", regime="CF", threshold="D", fixed=FIXED,
                               unit="firm", period="year", n_thresholds=2, n_tests=2,
                               n_boot=n_boot, seed=1, demean=demean)


def run_pyxthreg(panel, n_boot: int):
    from pyxthreg import ThresholdPanel

    model = ThresholdPanel(data=panel, dep="I", rx=["CF"], qx="D", indep=FIXED,
                           entity_col="firm", time_col="year")
    # its bootstrap draws progress bars on stderr whatever nobslog says
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        model.fit(thnum=2, trim=0.01, grid=400, bs=n_boot, nobslog=True)
    return model.results


def timed(function, *args):
    start = time.perf_counter()
    out = function(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boot", type=int, default=300, help="replications per test")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of our estimator")
    args = parser.parse_args()
    panel = load_invest_panel()

    times = []
    for _ in range(max(args.repeats, 1)):
        seconds, ours = timed(run_ours, panel, args.boot)
        times.append(seconds)
    ours_time = statistics.median(times)
    ours_all = run_ours(panel, 0, demean="all")
    print(f"Hansen (1999) double threshold, {args.boot} + {args.boot} bootstrap replications")
    print(f"ours (demean='hansen'): median {ours_time:.2f} s over {len(times)} runs "
          f"({', '.join(f'{t:.2f}' for t in times)})")

    rows = [("published (Hansen 1999)", PUBLISHED["gamma_1"], PUBLISHED["gamma_2"],
             PUBLISHED["F_single"], PUBLISHED["F_double"], PUBLISHED["p_single"],
             PUBLISHED["p_double"])]
    rows.append(("ours, demean='hansen'", *ours.thresholds, ours.tests["single"].statistic,
                 ours.tests["double"].statistic, ours.tests["single"].p_value,
                 ours.tests["double"].p_value))
    rows.append(("ours, demean='all' (no bootstrap)", *ours_all.thresholds,
                 ours_all.tests["single"].statistic, ours_all.tests["double"].statistic,
                 float("nan"), float("nan")))

    try:
        import pyxthreg

        version = pyxthreg.__version__
        warm_seconds, _ = timed(run_pyxthreg, panel, 2)   # numba compilation happens here
        peer_time, peer = timed(run_pyxthreg, panel, args.boot)
    except Exception as error:  # an absent or failing peer must not stop our timing
        print(f"pyxthreg unavailable or failed ({type(error).__name__}: {error}); "
              "only ours was timed")
    else:
        tests = peer["boot_results"]
        rows.append((f"pyxthreg {version}", *peer["thresholds"], tests[0]["F_stat"],
                     tests[1]["F_stat"], tests[0]["p_value"], tests[1]["p_value"]))
        print(f"pyxthreg {version}: {peer_time:.2f} s (after a {warm_seconds:.2f} s warm-up run, "
              "numba compilation or cache load)")
        print(f"ratio pyxthreg / ours: {peer_time / ours_time:.1f}x")

    print()
    header = f"{'source':<36}{'gamma_1':>9}{'gamma_2':>9}{'F_1':>8}{'F_2':>8}{'p_1':>8}{'p_2':>8}"
    print(header)
    print("-" * len(header))
    for name, g1, g2, f1, f2, p1, p2 in rows:
        print(f"{name:<36}{g1:>9.4f}{g2:>9.4f}{f1:>8.2f}{f2:>8.2f}{p1:>8.3f}{p2:>8.3f}")


if __name__ == "__main__":
    main()

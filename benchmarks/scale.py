"""One point of the scale curve, in its own process: a model on the zhao2025-shaped panel with
FACTOR times the cities (same 12 years).

    python -m benchmarks.scale MODEL FACTOR [--quick]

MODEL is ``twfe`` (within estimator, clustered errors), ``twfe_bayes`` (the Bayesian TWFE model
of :mod:`models.panel.bayes`), ``threshold`` (Hansen single threshold in AI with 300 bootstrap
replications) or ``threshold_bayes`` (its Bayesian counterpart). Prints one JSON line: rows
and the seconds of a first and a second (warm) fit. The panel is simulated (SYNTHETIC), built
before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

from benchmarks.bench_bayes_twfe import REGRESSORS, simulate_zhao_like

MODELS = ("twfe", "twfe_bayes", "threshold", "threshold_bayes")


def fit_once(model: str, factor: int, quick: bool) -> dict:
    """Fit ``model`` twice on the panel ``factor`` times the zhao2025 cities: rows, the first
    fit's seconds (compiling what it needs) and the second's (warm)."""
    panel = simulate_zhao_like(n_cities=271 * factor, seed=2025 + factor)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        _fit(model, panel, quick)
        times.append(time.perf_counter() - start)
    return {"model": model, "factor": factor, "rows": len(panel), "first_s": times[0],
            "warm_s": times[1]}


def _fit(model: str, panel, quick: bool) -> None:
    sampling = ({"draws": 300, "tune": 300, "chains": 2} if quick
                else {"draws": 1000, "tune": 1000, "chains": 4})
    if model == "twfe":
        from models.panel.fe import fit_twfe

        fit_twfe(panel, "Inn", REGRESSORS, ["city", "year"], vcov="cluster:city")
    elif model == "twfe_bayes":
        from models.panel.bayes import fit_bayes_twfe

        fit_bayes_twfe(panel, "Inn", REGRESSORS, "city", "year", seed=1, **sampling)
    elif model == "threshold":
        from models.threshold.hansen import fit_panel_threshold

        fit_panel_threshold(panel, y="Inn", regime="AI", threshold="AI", fixed=REGRESSORS[1:],
                            unit="city", period="year", n_thresholds=1, n_tests=1,
                            n_boot=50 if quick else 300, seed=1)
    elif model == "threshold_bayes":
        from models.threshold.bayes import fit_bayes_threshold

        fit_bayes_threshold(panel, y="Inn", regime="AI", threshold="AI", fixed=REGRESSORS[1:],
                            unit="city", period="year", n_thresholds=1, seed=1, **sampling)
    else:
        raise ValueError(f"unknown model {model!r}; one of {MODELS}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=MODELS)
    parser.add_argument("factor", type=int)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    print(json.dumps(fit_once(args.model, args.factor, args.quick)))


if __name__ == "__main__":
    main()

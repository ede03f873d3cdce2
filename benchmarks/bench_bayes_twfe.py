"""Benchmark: bulk ESS per second of the AI slope in the Bayesian TWFE model.

On a simulated 271-city x 12-year panel shaped like zhao2025 Table 2 column 6 (outcome Inn;
regressors AI, Eco, Huc, Edu, Fis, Gov; city and year effects; moments from Table 1, slopes
from column 6) this compares, in one run:

1. PyMC's default NUTS on the textbook Mundlak parametrisation (raw regressors plus their city
   means, centred city effects), as in the project's peer measurements;
2. the project's model (:func:`models.panel.bayes.fit_bayes_twfe`, orthogonal within/between
   split) with its defaults: the collapsed form (intercept, Mundlak terms, year and city
   effects integrated out exactly, NUTS on the slopes and three scales, the rest drawn
   exactly afterwards and counted in the sampling time) on nutpie;
3. exact conjugate draws of the flat-prior Gaussian TWFE posterior.

Compile time is reported separately; ESS/s is shown with and without it.

Run: ``python -m benchmarks.bench_bayes_twfe [--quick]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

REGRESSORS = ["AI", "Eco", "Huc", "Edu", "Fis", "Gov"]
# zhao2025 Table 2 column 6 slopes and Table 1 means / sds.
TRUE_SLOPES = {"AI": 0.272, "Eco": 0.243, "Huc": 0.0467, "Edu": 0.2339, "Fis": 0.3922, "Gov": -0.5}
MEANS = {"AI": 4.859, "Eco": 10.79, "Huc": 4.761, "Edu": 13.32, "Fis": 0.459, "Gov": 0.194}
SDS = {"AI": 1.796, "Eco": 0.549, "Huc": 0.966, "Edu": 0.813, "Fis": 0.215, "Gov": 0.084}


def simulate_zhao_like(n_cities: int = 271, n_years: int = 12, seed: int = 2025) -> pd.DataFrame:
    """A synthetic panel with Table 1 moments; regressors correlated with the city effect.

    Each regressor = mean + sd * (0.8 * city component + 0.35 * year trend + 0.45 * noise),
    where the city component loads 0.6 on the city effect of Inn. Inn = 7.6 + x' beta
    + city effect (sd 1.2) + year effect + N(0, 0.55).
    """
    rng = np.random.default_rng(seed)
    city = np.repeat(np.arange(n_cities), n_years)
    year = np.tile(np.arange(2011, 2011 + n_years), n_cities)
    city_effect = rng.normal(0.0, 1.0, n_cities)
    trend = (year - year.mean()) / year.std()
    data = {"city": city, "year": year}
    linear = np.zeros(city.size)
    for name in REGRESSORS:
        component = 0.6 * city_effect + 0.8 * rng.normal(0.0, 1.0, n_cities)
        z = 0.8 * component[city] + 0.35 * trend + 0.45 * rng.normal(0.0, 1.0, city.size)
        data[name] = MEANS[name] + SDS[name] * z
        linear += TRUE_SLOPES[name] * (data[name] - MEANS[name])
    year_effect = rng.normal(0.0, 0.3, n_years)
    data["Inn"] = (
        7.6
        + linear
        + 1.2 * city_effect[city]
        + year_effect[year - 2011]
        + rng.normal(0.0, 0.55, city.size)
    )
    return pd.DataFrame(data)


def _ess(draws: np.ndarray) -> float:
    import arviz as az

    return float(az.ess(np.asarray(draws), method="bulk"))


def run_pymc_default(df: pd.DataFrame, draws: int, tune: int, chains: int, seed: int) -> dict:
    """PyMC's default NUTS on raw regressors plus city means with centred city effects."""
    from models.bayes.sampler import sample_model
    from models.panel.bayes import resolve_priors
    from models.panel.design import prepare_panel
    from models.panel.model import build_twfe_model

    design = prepare_panel(df, "Inn", REGRESSORS, "city", "year")
    model = build_twfe_model(
        design, resolve_priors(None, design, "identity"), "normal", "mundlak_raw"
    )
    idata, times = sample_model(model, "pymc", draws, tune, chains, seed, False, None)
    ai = idata.posterior["slope"].sel(coef="AI").values
    return {
        "name": "PyMC default NUTS, textbook Mundlak (centred)",
        "ess": _ess(ai),
        "mean": float(ai.mean()),
        "sd": float(ai.std()),
        "compile_s": times["compile_s"],
        "sampling_s": times["sampling_s"],
    }


def run_ours(df: pd.DataFrame, draws: int, tune: int, chains: int, seed: int,
             repeats: int = 1) -> dict:
    """The project's model with its default sampler and settings.

    The first fit compiles; ``repeats`` fits (same seed, so the same draws) re-use the compiled
    model, and the fastest sampling and post-processing times are kept.
    """
    from models.panel.bayes import fit_bayes_twfe

    fits = [fit_bayes_twfe(df, "Inn", REGRESSORS, "city", "year", draws=draws, tune=tune,
                           chains=chains, seed=seed) for _ in range(max(repeats, 1))]
    fit = fits[0]
    ai = fit.idata.posterior["slope"].sel(coef="AI").values
    times = {"compile_s": fit.wall_times["compile_s"],
             "sampling_s": min(f.wall_times["sampling_s"] for f in fits),
             "postprocess_s": min(f.wall_times["postprocess_s"] for f in fits)}
    return {
        "name": f"ours: orthogonal Mundlak, unit effects {fit.spec['unit_effects']}, "
        f"{fit.spec['sampler']}",
        "ess": _ess(ai),
        "mean": float(ai.mean()),
        "sd": float(ai.std()),
        "compile_s": times["compile_s"],
        "sampling_s": times["sampling_s"],
        "postprocess_s": times["postprocess_s"],
    }


def run_exact(df: pd.DataFrame, n_draws: int, chains: int, seed: int, repeats: int = 1) -> dict:
    """Exact conjugate draws (flat priors); no compile step; the fastest of ``repeats``."""
    from models.panel.bayes import conjugate_twfe_draws

    elapsed = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        draws = conjugate_twfe_draws(df, "Inn", REGRESSORS, "city", "year", n_draws, seed)
        elapsed.append(time.perf_counter() - start)
    ai = draws["AI"].to_numpy().reshape(chains, -1)
    return {
        "name": "exact conjugate draws",
        "ess": _ess(ai),
        "mean": float(ai.mean()),
        "sd": float(ai.std()),
        "compile_s": 0.0,
        "sampling_s": min(elapsed),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--skip-pymc",
        action="store_true",
        help="leave out PyMC default NUTS (the slowest, about 2 minutes)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="time ours and the exact draws this many times and keep the fastest (timer noise "
        "is of the order of the exact draws' 10-20 ms); PyMC's default runs once",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    df = simulate_zhao_like()
    import pyfixest as pf

    twfe = pf.feols("Inn ~ " + " + ".join(REGRESSORS) + " | city + year", data=df)
    print(
        f"Simulated panel: {df['city'].nunique()} cities x {df['year'].nunique()} years; "
        f"pyfixest TWFE AI = {twfe.coef()['AI']:.4f} (se {twfe.se()['AI']:.4f})"
    )
    results = []
    if not args.skip_pymc:
        results.append(run_pymc_default(df, args.draws, args.tune, args.chains, args.seed))
    results.append(run_ours(df, args.draws, args.tune, args.chains, args.seed, args.repeats))
    results.append(run_exact(df, args.draws * args.chains, args.chains, args.seed,
                             args.repeats))
    header = (
        f"{'method':<58} {'AI mean':>8} {'AI sd':>7} {'ESS':>7} {'compile s':>9} "
        f"{'sample s':>8} {'ESS/s':>8} {'ESS/s+c':>8}"
    )
    print(header)
    for r in results:
        r["ess_per_s"] = r["ess"] / r["sampling_s"]
        r["ess_per_s_total"] = r["ess"] / (
            r["sampling_s"] + r["compile_s"] + r.get("postprocess_s", 0.0)
        )
        print(
            f"{r['name']:<58} {r['mean']:8.4f} {r['sd']:7.4f} {r['ess']:7.0f} "
            f"{r['compile_s']:9.2f} {r['sampling_s']:8.2f} {r['ess_per_s']:8.0f} "
            f"{r['ess_per_s_total']:8.0f}"
        )
    print(
        "(ESS/s: sampling only; ESS/s+c: including compile and, for ours, the log-likelihood"
        " / log-prior post-processing)"
    )
    by_name = {r["name"].split(":")[0].split(",")[0]: r for r in results}
    ours = by_name["ours"]
    exact = by_name["exact conjugate draws"]
    for label, key in (("sampling only", "ess_per_s"), ("with compile", "ess_per_s_total")):
        line = f"ratios, {label}: "
        if "PyMC default NUTS" in by_name:
            line += f"ours / PyMC default = {ours[key] / by_name['PyMC default NUTS'][key]:.1f}x"
            line += "; "
        line += f"exact / ours = {exact[key] / ours[key]:.1f}x"
        print(line)


if __name__ == "__main__":
    main()

"""Command line: ``python -m inference run STUDY [options]``,
``python -m inference report STUDY --from DIR [--out DIR]`` (rebuild without refitting),
``python -m inference compare DIR_A DIR_B [--out DIR]``,
``python -m inference bench [--quick] [--out DIR]`` (benchmarks against peers) and
``python -m inference fit --data FILE --formula "y ~ x | unit + time" --out DIR``
(``--model iv`` with ``"y ~ x + [d ~ z1 + z2] | unit + time"`` for panel 2SLS) and
``python -m inference sbc FAMILY --sims N`` (simulation-based calibration)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data.errors import DataError
from inference.batch import BatchError, quiet_libraries
from inference.registry import STUDIES


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m inference",
        description="Published | frequentist | Bayesian re-analysis of panel studies.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="fit every specification of a study")
    run.add_argument("study", type=_study_name, metavar="STUDY", nargs="+",
                     help=f"one of {', '.join(STUDIES)}, or your own study file (.toml); "
                     "several studies run as a Dask batch, one study per worker")
    run.add_argument("--data", type=Path, help="your own CSV/Parquet/Stata/Excel panel "
                     "(default: the embedded panel of the study)")
    run.add_argument("--out", type=Path, help="output folder (default: reports/STUDY; with "
                     "several studies the parent folder of OUT/STUDY)")
    run.add_argument("--encoding", help="text encoding of a CSV --data file (default UTF-8; "
                     "e.g. gbk)")
    run.add_argument("--seed", type=_seed, default=20250401, help="fixes all randomness "
                     "(0 to 2**32 - 1)")
    run.add_argument("--quick", action="store_true", help="few draws, for smoke runs")
    _add_sampling_arguments(run)
    run.add_argument("--frequentist-only", action="store_true", help="no sampling")
    run.add_argument("--no-compile-ahead", action="store_false", dest="compile_ahead",
                     help="no second process compiling the Bayesian models ahead on empty "
                          "compile caches")
    run.add_argument("--prior", action="append", default=[], metavar="ROLE=DIST",
                     help="override a prior, e.g. slope=normal(0,1) (repeatable)")
    run.add_argument("--priors", type=Path, dest="prior_file", help="TOML file of priors")
    _add_batch_arguments(run)

    report = commands.add_parser(
        "report", help="rebuild a run's report from its saved results and posteriors")
    report.add_argument("study", type=_study_name, metavar="STUDY",
                        help=f"one of {', '.join(STUDIES)}, or the study file of a user study")
    report.add_argument("--from", dest="source", type=Path,
                        help="the run's folder (default: reports/STUDY)")
    report.add_argument("--out", type=Path, help="where to write (default: the run's folder)")

    compare = commands.add_parser("compare", help="line up the posteriors of two runs")
    compare.add_argument("dir_a", type=Path, help="the first run's folder")
    compare.add_argument("dir_b", type=Path, help="the second run's folder")
    compare.add_argument("--out", type=Path, help="where to write (default: DIR_B/compare)")
    compare.add_argument("--term", help="the coefficient to overlay (default: the study's key "
                         "term, e.g. AI)")

    bench = commands.add_parser("bench", help="measure speed, memory and output size against "
                                "peers (run from a source checkout)")
    bench.add_argument("--quick", action="store_true", help="smaller runs (minutes)")
    bench.add_argument("--out", type=Path, default=Path("reports/bench"),
                       help="where bench.csv and bench.png go (default reports/bench)")
    bench.add_argument("--sections", default="twfe,threshold,studies,scale",
                       help="a comma-separated subset of twfe,threshold,studies,scale")
    bench.add_argument("--studies", help="comma-separated studies of the study runs "
                                         "(default: all five; zhao2025 with --quick)")

    sensitivity = commands.add_parser(
        "sensitivity", help="power-scaling and prior-grid refits of a study's Bayesian fits")
    sensitivity.add_argument("study", type=_study_name, metavar="STUDY",
                             help=f"one of {', '.join(STUDIES)}, or your own study file")
    sensitivity.add_argument("--spec", action="append", default=[], metavar="TABLE/COLUMN",
                             help="a specification to refit, e.g. 2/6 (repeatable; default: "
                             "every one with a Bayesian counterpart)")
    sensitivity.add_argument("--grid", type=Path, metavar="FILE.toml",
                             help="TOML file of prior alternatives "
                             "(format in the README)")
    sensitivity.add_argument("--quick", action="store_true", help="few draws, for smoke runs")
    sensitivity.add_argument("--out", type=Path,
                             help="output folder (default: reports/STUDY/sensitivity)")
    sensitivity.add_argument("--workers", type=_positive_int,
                             help="local Dask workers (default: one per core)")
    sensitivity.add_argument("--scheduler", metavar="ADDRESS",
                             help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    sensitivity.add_argument("--seed", type=_seed, default=20250401,
                             help="fixes all randomness (0 to 2**32 - 1)")
    sensitivity.add_argument("--data", type=Path, metavar="FILE",
                             help="your own panel (default: the "
                             "embedded panel of the study)")
    for name, words in (("draws", "posterior draws per chain (default 1000; 300 with --quick)"),
                        ("tune", "tuning steps per chain (default 1000; 300 with --quick)"),
                        ("chains", "number of chains (default 4; 2 with --quick)")):
        sensitivity.add_argument(f"--{name}", type=_positive_int, help=words)
    sensitivity.add_argument("--priors", type=Path, dest="prior_file", metavar="FILE.toml",
                             help="TOML file of priors (as for run): the base the grid's "
                             "alternatives are built around (default: the default priors)")

    fit = commands.add_parser("fit", help="fit a panel formula on your own data")
    fit.add_argument("--data", type=Path, required=True,
                     help="CSV/Parquet/Stata/Excel panel, one row per unit and period")
    fit.add_argument("--formula", required=True, metavar='"y ~ x1 + x2 | unit + time"',
                     help="outcome ~ regressors | unit effect [+ period effect]")
    fit.add_argument("--out", type=Path, required=True, help="output folder")
    fit.add_argument("--encoding", help="text encoding of a CSV --data file (default UTF-8; "
                     "e.g. gbk)")
    fit.add_argument("--model", choices=("twfe", "iv", "threshold", "event_study", "mediation"),
                     default="twfe",
                     help="twfe: within estimator; iv: panel 2SLS, the formula naming "
                     "'[endogenous ~ instruments]'; threshold: Hansen's single threshold "
                     "(--threshold-variable); event_study: treat x event year "
                     "(--treat, --reference); mediation: three steps (--mediator)")
    fit.add_argument("--threshold-variable", dest="threshold_variable", metavar="COLUMN",
                     help="threshold: the variable q whose value sets the regime")
    fit.add_argument("--regime", metavar="COLUMN", help="threshold: the regressor whose slope "
                     "switches at the threshold (default: the formula's first regressor)")
    fit.add_argument("--treat", metavar="COLUMN", help="event_study: unit-level treatment "
                     "(0/1, or continuous: units above its median are treated)")
    fit.add_argument("--reference", type=int, default=2015, metavar="PERIOD",
                     help="event_study: the omitted period (default 2015)")
    fit.add_argument("--mediator", action="append", default=[], dest="mediators",
                     metavar="COLUMN", help="mediation: a mediator (repeatable; the treatment "
                     "is the formula's first regressor)")
    fit.add_argument("--bootstrap", type=_positive_int, dest="n_boot", metavar="N",
                     help="threshold / mediation: bootstrap replications (default 300 / "
                     "1000; 50 / 200 with --quick)")
    fit.add_argument("--cluster", help="cluster the frequentist errors by this column "
                     "(default: heteroskedasticity-robust HC1)")
    fit.add_argument("--seed", type=_seed, default=20250401, help="fixes all randomness "
                     "(0 to 2**32 - 1)")
    fit.add_argument("--likelihood", choices=("normal", "student_t", "negbin"),
                     default="normal", help="Bayesian likelihood (negbin for counts)")
    fit.add_argument("--quick", action="store_true", help="few draws, for smoke runs")
    _add_sampling_arguments(fit)
    fit.add_argument("--frequentist-only", action="store_true", help="no sampling")
    fit.add_argument("--prior", action="append", default=[], metavar="ROLE=DIST",
                     help="override a prior, e.g. slope=normal(0,1) (repeatable)")
    fit.add_argument("--priors", type=Path, dest="prior_file", help="TOML file of priors")

    sbc = commands.add_parser("sbc", help="simulation-based calibration of a model family")
    sbc.add_argument("family", metavar="FAMILY", help="twfe, heterogeneity, threshold, iv, "
                     "mediation or event_study")
    sbc.add_argument("--sims", type=_positive_int, required=True,
                     help="number of simulated data sets")
    sbc.add_argument("--quick", action="store_true", help="fewer draws per fit, for smoke runs")
    sbc.add_argument("--out", type=Path, help="output folder (default: reports/sbc/FAMILY)")
    sbc.add_argument("--seed", type=_seed, default=20250401, help="fixes all randomness "
                     "(0 to 2**32 - 1)")
    sbc.add_argument("--workers", type=_positive_int,
                     help="Dask worker processes of a local cluster (default: one per core)")
    sbc.add_argument("--scheduler", metavar="ADDRESS",
                     help="run on the Dask cluster at this scheduler address instead")
    return parser


def _study_name(text: str) -> str:
    if text in STUDIES or text.endswith(".toml"):
        return text
    raise argparse.ArgumentTypeError(f"unknown study '{text}' (known: {', '.join(STUDIES)}; "
                                     "or give a study file ending in .toml)")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{value} must lie strictly between 0 and 1")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value} must lie between 0 and 2**32 - 1 "
                                         "(the range numpy's generators take)")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _add_sampling_arguments(command) -> None:
    """--draws / --tune / --chains / --target-accept: what a convergence flag asks for,
    without editing code."""
    command.add_argument("--draws", type=_positive_int,
                         help="posterior draws per chain (default 1000; 300 with --quick)")
    command.add_argument("--tune", type=_positive_int,
                         help="tuning steps per chain (default 1000; 300 with --quick)")
    command.add_argument("--chains", type=_positive_int,
                         help="number of chains (default 4; 2 with --quick)")
    command.add_argument("--target-accept", type=_probability, dest="target_accept",
                         help="the sampler's target acceptance rate, e.g. 0.95 after "
                         "divergences (default: each model's own)")
    command.add_argument("--strict", action="store_true",
                         help="exit with status 3 when a specification was not run or a "
                         "posterior did not converge")


def _add_batch_arguments(command) -> None:
    """--workers / --scheduler: where a batch of fits runs (Dask)."""
    command.add_argument("--workers", type=_positive_int,
                         help="Dask worker processes of the local cluster (default: one per "
                         "core)")
    command.add_argument("--scheduler", metavar="ADDRESS",
                         help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 with a one-line error on bad input)."""
    args = build_parser().parse_args(argv)
    quiet_libraries()
    from inference.runner import RunOptions, run_study, sampling_settings

    trouble: list[str] = []
    out = None
    try:
        if args.command == "run":
            options = RunOptions(
                data=args.data, out=args.out, seed=args.seed, quick=args.quick,
                frequentist_only=args.frequentist_only, priors=tuple(args.prior),
                prior_file=args.prior_file, draws=args.draws, tune=args.tune, chains=args.chains,
                target_accept=args.target_accept, encoding=args.encoding,
                compile_ahead=args.compile_ahead,
            )
            if len(args.study) > 1:
                from inference.multi_study import run_studies

                records = run_studies(args.study, options, scheduler=args.scheduler,
                                      workers=args.workers)
                trouble = [f"{r['study']}: {line}" for r in records
                           for line in [*r["skipped"], *r["not_converged"]]]
            else:
                if args.scheduler or args.workers:
                    raise ValueError("--workers and --scheduler spread several studies over "
                                     "Dask workers; give more than one STUDY")
                # A study file's study may be named otherwise; the default folder is a best
                # guess for marking an interrupted run, run_study itself decides.
                out = args.out or Path("reports") / Path(str(args.study[0])).stem
                outcome = run_study(args.study[0], options)
                trouble = [*outcome.skipped, *outcome.not_converged]
        elif args.command == "report":
            from inference.report import build_report
            from inference.user_study import is_study_file, load_study_file

            name = (load_study_file(args.study).name if is_study_file(args.study)
                    else args.study)
            build_report(name, args.source or Path("reports") / name, args.out)
        elif args.command == "compare":
            from inference.report.compare import compare_runs

            compare_runs(args.dir_a, args.dir_b, args.out, key_term=args.term)
        elif args.command == "bench":
            try:
                from benchmarks.suite import main as bench_main
            except ImportError as exc:
                raise ValueError(f"bench runs from a source checkout of the project (the "
                                 f"benchmarks/ folder beside inference/): {exc}") from None
            bench_args = ["--out", str(args.out), "--sections", args.sections,
                          *(["--studies", args.studies] if args.studies else [])]
            bench_main(bench_args + (["--quick"] if args.quick else []))
        elif args.command == "sensitivity":
            from inference.sensitivity import SensitivityOptions, run_sensitivity

            run_sensitivity(SensitivityOptions(
                study=args.study, specs=tuple(args.spec), grid=args.grid, quick=args.quick,
                out=args.out, workers=args.workers, scheduler=args.scheduler, seed=args.seed,
                data=args.data, priors=args.prior_file, draws=args.draws, tune=args.tune,
                chains=args.chains))
        elif args.command == "fit":
            from inference.fit_command import FitRequest, run_fit

            out = args.out
            sampling = sampling_settings(args.quick, args.draws, args.tune, args.chains,
                                         args.target_accept)
            results = run_fit(FitRequest(
                data=args.data, formula=args.formula, out=args.out, cluster=args.cluster,
                seed=args.seed, likelihood=args.likelihood, frequentist_only=args.frequentist_only,
                priors=tuple(args.prior), prior_file=args.prior_file, encoding=args.encoding,
                model=args.model, quick=args.quick, n_boot=args.n_boot,
                threshold_variable=args.threshold_variable, regime=args.regime,
                treat=args.treat, reference=args.reference, mediators=tuple(args.mediators),
                **sampling,
            ))
            flagged = results[(results["source"] == "bayesian") & (results["note"] != "")]
            trouble = [f"{term}: {note}" for term, note in zip(flagged["term"], flagged["note"],
                                                               strict=True)]
        elif args.command == "sbc":
            from inference.sbc import run_sbc

            run_sbc(args.family, args.sims, quick=args.quick, out=args.out, seed=args.seed,
                    workers=args.workers, scheduler=args.scheduler)
    except (DataError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _mark_interrupted(out)
        print(f"interrupted: the run stopped before it finished; {out or 'the output folder'} "
              "holds only files that were written whole, and run.json there says the run "
              "did not finish.", file=sys.stderr)
        return 130
    if getattr(args, "strict", False) and trouble:
        print(f"strict: {len(trouble)} problem(s):", file=sys.stderr)
        for line in trouble:
            print(f"  - {line}", file=sys.stderr)
        return 3
    return 0


def _mark_interrupted(out: Path | None) -> None:
    from inference.outputs import MARKER, finish_run

    if out is not None and (Path(out) / MARKER).exists():
        finish_run(Path(out), "interrupted")

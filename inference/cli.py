"""Command line: ``python -m inference run STUDY [options]`` and
``python -m inference fit --data FILE --formula "y ~ x | unit + time" --out DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data.errors import DataError
from inference.registry import STUDIES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m inference",
        description="Published | frequentist | Bayesian re-analysis of panel studies.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="fit every specification of a study")
    run.add_argument("study", choices=STUDIES)
    run.add_argument("--data", type=Path, help="your own CSV/Parquet/Stata/Excel panel "
                     "(default: the embedded panel of the study)")
    run.add_argument("--out", type=Path, help="output folder (default: reports/STUDY)")
    run.add_argument("--seed", type=int, default=20250401, help="fixes all randomness")
    run.add_argument("--quick", action="store_true", help="few draws, for smoke runs")
    run.add_argument("--frequentist-only", action="store_true", help="no sampling")
    run.add_argument("--prior", action="append", default=[], metavar="ROLE=DIST",
                     help="override a prior, e.g. slope=normal(0,1) (repeatable)")
    run.add_argument("--priors", type=Path, dest="prior_file", help="TOML file of priors")

    fit = commands.add_parser("fit", help="fit a panel formula on your own data")
    fit.add_argument("--data", type=Path, required=True,
                     help="CSV/Parquet/Stata/Excel panel, one row per unit and period")
    fit.add_argument("--formula", required=True, metavar='"y ~ x1 + x2 | unit + time"',
                     help="outcome ~ regressors | unit effect [+ period effect]")
    fit.add_argument("--out", type=Path, required=True, help="output folder")
    fit.add_argument("--cluster", help="cluster the frequentist errors by this column "
                     "(default: heteroskedasticity-robust HC1)")
    fit.add_argument("--seed", type=int, default=20250401, help="fixes all randomness")
    fit.add_argument("--likelihood", choices=("normal", "student_t", "negbin"),
                     default="normal", help="Bayesian likelihood (negbin for counts)")
    fit.add_argument("--quick", action="store_true", help="few draws, for smoke runs")
    fit.add_argument("--frequentist-only", action="store_true", help="no sampling")
    fit.add_argument("--prior", action="append", default=[], metavar="ROLE=DIST",
                     help="override a prior, e.g. slope=normal(0,1) (repeatable)")
    fit.add_argument("--priors", type=Path, dest="prior_file", help="TOML file of priors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from inference.runner import FULL_SAMPLING, QUICK_SAMPLING, RunOptions, run_study

    try:
        if args.command == "run":
            options = RunOptions(
                data=args.data, out=args.out, seed=args.seed, quick=args.quick,
                frequentist_only=args.frequentist_only, priors=tuple(args.prior),
                prior_file=args.prior_file,
            )
            run_study(args.study, options)
        elif args.command == "fit":
            from inference.fit_command import FitRequest, run_fit

            sampling = QUICK_SAMPLING if args.quick else FULL_SAMPLING
            run_fit(FitRequest(
                data=args.data, formula=args.formula, out=args.out, cluster=args.cluster,
                seed=args.seed, likelihood=args.likelihood, frequentist_only=args.frequentist_only,
                priors=tuple(args.prior), prior_file=args.prior_file, **sampling,
            ))
    except (DataError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

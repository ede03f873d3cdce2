"""``python -m inference fit``: the frequentist and Bayesian panel model for the user's own data.

``--formula "y ~ x1 + x2 | unit + time"`` fits

    y_it = x_it' beta + a_i + d_t + e_it

by the within estimator (pyfixest; robust HC1 errors, or clustered with ``--cluster``) and its
hierarchical Bayesian counterpart (:func:`models.panel.bayes.fit_bayes_twfe`: correlated random
unit effects, sum-to-zero period effects). ``| unit`` alone fits one-way unit effects. Both go
to ``DIR/results.csv`` in the results contract (table ``fit``, column ``1``, term = regressor),
with the posterior as netCDF and an ``index.html`` that shows them side by side.

``--model iv --formula "y ~ x1 + [d ~ z1 + z2] | unit + time"`` fits panel 2SLS instead
(:func:`models.iv.tsls.fit_panel_iv`: d instrumented by z1, z2, the effects absorbed; any
number of endogenous regressors) with its first stages (column ``first_stage``, or
``first_stage/<d>`` for several), the Kleibergen-Paap, Cragg-Donald and Hansen statistics as
terms of column ``1``, and, for one endogenous regressor, the Bayesian IV model with
correlated first-stage and outcome errors (:func:`models.iv.bayes.fit_bayes_iv`).

``--model threshold``, ``event_study`` and ``mediation`` fit those families
(:mod:`inference.fit_families`) into the same contract.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from data.contracts import ColumnRule, DataContract, validate_panel
from data.errors import DataError
from data.loaders import read_table
from inference.datasets import Dataset
from inference.estimators.base import convergence_note
from inference.fit_families import FAMILIES
from inference.formula import PanelFormula, parse_formula
from inference.outputs import check_output_folder, finish_run, start_run
from inference.registry import Study
from inference.results import assemble, result_rows, write_results

FIT_TABLE, FIT_COLUMN = "fit", "1"
# Stands in for the period key of a one-way panel so that no (unit, period) pair repeats.
_ROW_KEY = "__row_number__"


@dataclass(frozen=True)
class FitRequest:
    """What the user asked ``fit`` to do."""

    data: Path
    formula: str
    out: Path
    cluster: str | None = None
    seed: int = 20250401
    likelihood: str = "normal"
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float | None = None
    frequentist_only: bool = False
    priors: tuple[str, ...] = ()
    prior_file: Path | None = None
    encoding: str | None = None
    model: str = "twfe"
    quick: bool = False
    n_boot: int | None = None
    threshold_variable: str | None = None
    regime: str | None = None
    treat: str | None = None
    reference: int = 2015
    mediators: tuple[str, ...] = ()

    @property
    def sampling(self) -> dict:
        """The sampler settings every Bayesian fit receives."""
        settings = {"draws": self.draws, "tune": self.tune, "chains": self.chains}
        if self.target_accept is not None:
            settings["target_accept"] = self.target_accept
        return settings


def _contract(formula: PanelFormula, cluster: str | None,
              extra: tuple[ColumnRule, ...] = ()) -> DataContract:
    columns = [ColumnRule(formula.unit, "id"), ColumnRule(formula.time or _ROW_KEY, "id"),
               ColumnRule(formula.outcome, "float", description="outcome")]
    given = {rule.name for rule in extra}
    columns += [ColumnRule(x, "float", description="regressor", varies_within=True)
                for x in formula.regressors if x not in given]
    columns += list(extra)
    columns += [ColumnRule(z, "float", description="instrument", varies_within=True)
                for z in formula.instruments]
    if cluster and cluster not in formula.effects:
        columns.append(ColumnRule(cluster, "id", description="cluster"))
    return DataContract(study="fit", unit=formula.unit, time=formula.time or _ROW_KEY,
                        description="user panel", columns=tuple(columns))


def load_user_panel(path: Path, formula: PanelFormula, cluster: str | None,
                    encoding: str | None = None,
                    extra: tuple[ColumnRule, ...] = ()) -> pd.DataFrame:
    """Read the user's file and check the formula's columns and the ``extra`` ones a model
    family reads (the file is only read)."""
    raw = read_table(path, encoding)
    missing = [c for c in [*formula.columns, *([cluster] if cluster else [])]
               if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: the formula names column(s) {missing} that the file lacks "
                        f"(present: {list(raw.columns)[:20]}) [rule: required columns]")
    absent = [rule for rule in extra if rule.name not in raw.columns]
    if absent:
        raise DataError(f"{path}: the {absent[0].description} '{absent[0].name}' is not a "
                        f"column of the file (present: {list(raw.columns)[:20]}) "
                        "[rule: required columns]")
    frame = raw if formula.time else raw.assign(**{_ROW_KEY: range(len(raw))})
    contract = _contract(formula, cluster, extra)
    checked = validate_panel(frame, contract, source=str(path),
                             needed=[c.name for c in contract.columns])
    if cluster:
        _check_cluster(checked[cluster], cluster, path)
    return checked


def _check_cluster(values: pd.Series, name: str, path: Path) -> None:
    """A cluster variable groups rows (cities, provinces). A continuous column passed by
    mistake makes nearly every row its own cluster, and the "clustered" errors are then
    heteroskedasticity-robust errors with the wrong small-sample factor."""
    groups = values.nunique()
    fractional = pd.api.types.is_float_dtype(values) and (values != values.round()).any()
    if fractional or groups > len(values) / 2:
        raise DataError(
            f"{path}: --cluster '{name}' has {groups} distinct values in {len(values)} rows"
            f"{' and fractional values' if fractional else ''}; a cluster variable groups rows "
            "(a city, a province), and this one looks continuous [rule: cluster groups rows]")


def _user_priors(request: FitRequest, family: str = "panel"):
    from inference.priors import priors_for, read_prior_entries

    entries = read_prior_entries(request.prior_file, list(request.priors or ()))
    return priors_for(entries or None, family)


def run_fit(request: FitRequest, progress=print) -> pd.DataFrame:
    """Fit the request's panel model both ways; write results.csv, the posterior and a report."""
    from models.panel.fe import fit_twfe

    formula = parse_formula(request.formula)
    if request.model in FAMILIES:
        return _run_family(request, formula, progress)
    if request.model not in ("twfe", "iv"):
        raise ValueError(f"--model must be one of twfe, iv, {', '.join(FAMILIES)}, not "
                         f"'{request.model}'")
    if request.model == "twfe" and formula.endogenous:
        raise ValueError(f"formula '{request.formula}' instruments {list(formula.endogenous)}: "
                         "fit it with --model iv")
    if request.model == "iv" and not formula.endogenous:
        raise ValueError(f"--model iv needs an instrumented block in the formula, as in "
                         f"'y ~ x1 + [d ~ z1 + z2] | unit + time', not '{request.formula}'")
    out = check_output_folder(Path(request.out), [("--data", request.data),
                                                  ("--priors", request.prior_file)])
    # Read even with --frequentist-only: a priors file that cannot be read is an error, not
    # something a later run with sampling would be the first to find.
    priors = _user_priors(request, "iv" if request.model == "iv" else "panel")
    frame = load_user_panel(request.data, formula, request.cluster, request.encoding)
    if request.model == "iv":
        start_run(out, "fit --model iv")
        return _run_iv(request, formula, frame, out, priors, progress)
    label = f"user data: {request.data.name}"
    progress(f"[fit] {label}, {len(frame):,} rows; {request.formula}")
    start_run(out, "fit")
    vcov = f"cluster:{request.cluster}" if request.cluster else "hetero"
    tick = _time.perf_counter()
    frequentist = fit_twfe(frame, formula.outcome, list(formula.regressors),
                           list(formula.effects), vcov=vcov)
    parts = [result_rows(frequentist.tidy(), study="fit", table=FIT_TABLE, column=FIT_COLUMN,
                         source="frequentist", note=f"within estimator, {vcov} errors")]
    progress(f"[fit] frequentist {_time.perf_counter() - tick:.2f} s")
    fits = {}
    if not request.frequentist_only:
        from models.panel.bayes import fit_bayes_twfe

        tick = _time.perf_counter()
        fit = fit_bayes_twfe(frame, formula.outcome, list(formula.regressors), unit=formula.unit,
                             time=formula.time, priors=priors,
                             likelihood=request.likelihood, draws=request.draws,
                             tune=request.tune, chains=request.chains, seed=request.seed,
                             target_accept=request.target_accept)
        tidy = fit.tidy(auxiliary=False).drop(columns=["divergences"])
        problems = fit.convergence_problems()
        tidy["note"] = [convergence_note(term, problems) for term in tidy["term"]]
        parts.append(result_rows(tidy, study="fit", table=FIT_TABLE, column=FIT_COLUMN,
                                 source="bayesian"))
        fit.save_netcdf(out / "posterior_fit.nc")
        fits[f"{FIT_TABLE}/{FIT_COLUMN}"] = fit
        status = "converged" if not problems else "NOT converged: " + "; ".join(problems)
        progress(f"[fit] Bayesian {_time.perf_counter() - tick:.1f} s, {status}")
    results = assemble(parts, label)
    progress(f"[fit] wrote {write_results(results, out)}")
    finish_run(out, "complete", not_converged=[p for f in fits.values()
                                               for p in f.convergence_problems()])
    _write_report(results, frame, label, request, out)
    return results


def _run_iv(request: FitRequest, formula: PanelFormula, frame: pd.DataFrame, out: Path,
            priors, progress) -> pd.DataFrame:
    """``--model iv``: panel 2SLS and, for one endogenous regressor, the Bayesian IV model."""
    from models.iv.tsls import fit_panel_iv

    label = f"user data: {request.data.name}"
    progress(f"[fit] {label}, {len(frame):,} rows; {request.formula} (IV)")
    vcov = f"cluster:{request.cluster}" if request.cluster else "hetero"
    endogenous = list(formula.endogenous)
    tick = _time.perf_counter()
    fit = fit_panel_iv(frame, formula.outcome, endogenous, list(formula.instruments),
                       list(formula.exogenous), list(formula.effects), vcov=vcov)
    note = f"2SLS, {', '.join(endogenous)} instrumented, {vcov} errors"
    parts = [result_rows(fit.tidy(), study="fit", table=FIT_TABLE, column=FIT_COLUMN,
                         source="frequentist", note=note)]
    for name, table in fit.first_stage.items():
        column = "first_stage" if len(endogenous) == 1 else f"first_stage/{name}"
        parts.append(result_rows(table, study="fit", table=FIT_TABLE, column=column,
                                 source="frequentist", note=f"first stage of {name}"))
    progress(f"[fit] frequentist {_time.perf_counter() - tick:.2f} s")
    fits = {}
    if not request.frequentist_only and len(endogenous) > 1:
        progress("[fit] the Bayesian IV model takes one endogenous regressor; "
                 f"{len(endogenous)} given, so only the frequentist fit is reported")
    elif not request.frequentist_only:
        from models.iv.bayes import fit_bayes_iv

        tick = _time.perf_counter()
        bayes = fit_bayes_iv(frame, formula.outcome, endogenous[0], list(formula.instruments),
                             list(formula.exogenous), unit=formula.unit, time=formula.time,
                             priors=priors, seed=request.seed,
                             draws=request.draws, tune=request.tune, chains=request.chains,
                             target_accept=request.target_accept)
        tidy = bayes.tidy(auxiliary=False)
        problems = bayes.convergence_problems()
        tidy["note"] = [convergence_note(term, problems) for term in tidy["term"]]
        for stage, column in (("first", "first_stage"), ("second", FIT_COLUMN)):
            rows = tidy[tidy["stage"] != "first"] if stage == "second" else tidy[
                tidy["stage"] == "first"]
            parts.append(result_rows(rows.drop(columns=["stage", "divergences"]), study="fit",
                                     table=FIT_TABLE, column=column, source="bayesian"))
        bayes.save_netcdf(out / "posterior_fit.nc")
        fits[f"{FIT_TABLE}/{FIT_COLUMN}"] = bayes
        status = "converged" if not problems else "NOT converged: " + "; ".join(problems)
        progress(f"[fit] Bayesian {_time.perf_counter() - tick:.1f} s, {status}")
    results = assemble(parts, label)
    progress(f"[fit] wrote {write_results(results, out)}")
    finish_run(out, "complete", not_converged=[p for f in fits.values()
                                               for p in f.convergence_problems()])
    _write_report(results, frame, label, request, out)
    return results


def _family_rules(request: FitRequest) -> tuple[ColumnRule, ...]:
    if request.model == "threshold":
        return (ColumnRule(request.threshold_variable, "float",
                           description="threshold variable (--threshold-variable)"),)
    if request.model == "event_study":
        return (ColumnRule(request.treat, "float", description="treatment column (--treat)"),)
    return tuple(ColumnRule(m, "float", description="mediator (--mediator)",
                            varies_within=True) for m in request.mediators)


def _run_family(request: FitRequest, formula: PanelFormula, progress) -> pd.DataFrame:
    """``--model threshold | event_study | mediation`` (:mod:`inference.fit_families`)."""
    from inference.fit_families import check_family_data, check_family_request, run_family
    from inference.priors import priors_for, read_prior_entries

    check_family_request(request, formula)
    out = check_output_folder(Path(request.out), [("--data", request.data),
                                                  ("--priors", request.prior_file)])
    entries = read_prior_entries(request.prior_file, list(request.priors or ())) or None
    family = {"threshold": "panel", "event_study": "event_study", "mediation": "mediation"}
    priors_for(entries, family[request.model])
    frame = load_user_panel(request.data, formula, request.cluster, request.encoding,
                            _family_rules(request))
    check_family_data(request, formula, frame)
    start_run(out, f"fit --model {request.model}")
    results, fits = run_family(request, formula, frame, out, entries, request.sampling,
                               progress)
    finish_run(out, "complete", not_converged=[p for f in fits.values()
                                               for p in f.convergence_problems()])
    _write_report(results, frame, f"user data: {request.data.name}", request, out)
    return results


def _write_report(results, frame, label, request, out) -> None:
    from inference.report import write_report
    from inference.runner import RunOutcome

    study = Study(name="fit", title=f"Panel fit: {request.formula}", unit="", time="", specs=())
    dataset = Dataset(frame=frame, label=label, path=Path(request.data), synthetic=False)
    report = write_report(RunOutcome(study=study, dataset=dataset, results=results,
                                     out_dir=out))
    print(f"[fit] wrote {report}")

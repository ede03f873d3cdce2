"""``python -m inference fit`` for the threshold, event-study and mediation families.

Each family is fitted by the same adapter a study specification of its kind uses
(:mod:`inference.estimators.threshold`, ``event_study``, ``mediation``), on a specification
built from the command line, so the rows, notes and figures are those of a study run:

- ``--model threshold --threshold-variable q``: Hansen's (1999) single-threshold model
  y_it = x_it' b + z_it (t_1 1[q_it < g] + t_2 1[q_it >= g]) + a_i [+ d_t] + e_it, z the
  regime regressor (``--regime``, default the first regressor of the formula), with the
  bootstrap F test of 0 against 1 threshold (``--bootstrap`` replications, 300 by default, 50
  with ``--quick``); Bayesian: the threshold marginalised over Hansen's grid, compared with
  the linear model by LOO and the marginal likelihood.
- ``--model event_study --treat T --reference 2015``: y_it = sum_{k != ref} b_k T_i 1[t = k]
  + x_it' g + a_i + d_t + e_it, the formula's other regressors the controls x, T a unit-level
  column (0/1, or continuous with the units above its median treated); the outcome as given
  (normal) or, with ``--likelihood negbin``, counts with a log link.
- ``--model mediation --mediator m``: the three steps with the Sobel test and a cluster
  bootstrap of a b (``--bootstrap``, 1000 by default, 200 with ``--quick``), the treatment the
  first regressor and the others controls of every equation; Bayesian: mediator and outcome
  equations jointly. Column ``1``: the total effect; for the i-th mediator (from 0) column
  ``2 + 2 i`` the a path and ``3 + 2 i`` the b path, direct and indirect effects; with several
  mediators column ``joint`` fits them together.
"""

from __future__ import annotations

import time as _time
from pathlib import Path

import pandas as pd

from data.errors import DataError
from inference.estimators.base import Settings
from inference.formula import PanelFormula
from inference.registry import Spec
from inference.results import assemble, result_rows, write_results

FAMILIES = ("threshold", "event_study", "mediation")
FIT_TABLE, FIT_COLUMN = "fit", "1"
# Hansen's grid runs over the distinct values of q between its 1% and 99% quantiles; with
# fewer than this many values there is hardly a split to search and each regime is thin.
MIN_THRESHOLD_VALUES = 10
EVENT_LIKELIHOODS = ("normal", "negbin")


def check_family_request(request, formula: PanelFormula) -> None:
    """Refuse, in one line naming the option or column, what the family cannot fit (before the
    data are read: options only)."""
    model = request.model
    if formula.endogenous:
        raise ValueError(f"formula '{request.formula}' instruments {list(formula.endogenous)}: "
                         "fit it with --model iv")
    needs = {"threshold": ("threshold_variable", "--threshold-variable"),
             "event_study": ("treat", "--treat"), "mediation": ("mediators", "--mediator")}
    attribute, flag = needs[model]
    if not getattr(request, attribute):
        raise ValueError(f"--model {model} needs {flag} COLUMN [rule: {model} options]")
    if model in ("threshold", "event_study") and formula.time is None:
        raise ValueError(f"--model {model} needs a period effect: write the formula as "
                         f"'... | {formula.unit} + <period column>' [rule: two-way panel]")
    if model == "threshold":
        regime = request.regime or formula.regressors[0]
        if regime not in formula.regressors:
            raise ValueError(f"--regime '{regime}' must be a regressor of the formula "
                             f"{list(formula.regressors)} [rule: regime regressor]")
        if request.cluster and request.cluster != formula.unit:
            raise ValueError(f"--model threshold clusters by the unit '{formula.unit}' only, "
                             f"not by '{request.cluster}' [rule: threshold errors]")
    if model != "event_study" and request.likelihood != "normal":
        raise ValueError(f"--model {model} has a normal likelihood only, not "
                         f"'{request.likelihood}' [rule: {model} likelihood]")
    if model == "event_study" and request.likelihood not in EVENT_LIKELIHOODS:
        raise ValueError(f"--model event_study takes --likelihood {' or '.join(EVENT_LIKELIHOODS)}"
                         f", not '{request.likelihood}' [rule: event-study likelihood]")
    if model == "mediation":
        clash = [m for m in request.mediators if m in formula.columns]
        if clash:
            raise ValueError(f"--mediator {clash} is already in the formula; name the "
                             "mediator only with --mediator [rule: mediator]")


def check_family_data(request, formula: PanelFormula, frame: pd.DataFrame) -> None:
    """Data rules of each family, named in one line."""
    path = request.data
    if request.model == "threshold":
        q = request.threshold_variable
        distinct = frame[q].nunique()
        if distinct < MIN_THRESHOLD_VALUES:
            raise DataError(f"{path}: threshold variable '{q}' has {distinct} distinct values; "
                            f"the threshold search needs at least {MIN_THRESHOLD_VALUES} "
                            "[rule: threshold variable values]")
    if request.model == "event_study":
        years = sorted(pd.unique(frame[formula.time]))
        if request.reference not in years:
            raise DataError(f"{path}: --reference {request.reference} is not a value of "
                            f"'{formula.time}' ({years[0]}-{years[-1]}) "
                            "[rule: reference year present]")


def _spec(request, formula: PanelFormula) -> Spec:
    vcov = f"cluster:{request.cluster}" if request.cluster else "hetero"
    options: dict = {}
    regressors = list(formula.regressors)
    if request.model == "threshold":
        regime = request.regime or regressors[0]
        options = {"regime": regime, "threshold_variable": request.threshold_variable,
                   "n_thresholds": 1, "demean": "all", "compare_counts": True,
                   "se_columns": {FIT_COLUMN: "cluster" if request.cluster else "white"}}
        regressors = [r for r in regressors if r != regime]
    elif request.model == "event_study":
        options = {"treat": request.treat, "reference": int(request.reference),
                   "transform": "none", "likelihoods": [request.likelihood]}
        regressors = [r for r in regressors if r != request.treat]
    else:
        options = {"treatment": regressors[0], "mediators": list(request.mediators)}
        if len(request.mediators) > 1:
            options["joint_column"] = "joint"
    if request.n_boot is not None:
        options["n_boot"] = int(request.n_boot)
    return Spec(study="fit", table=FIT_TABLE, column=FIT_COLUMN, kind=request.model,
                outcome=formula.outcome, regressors=tuple(regressors),
                effects=formula.effects, vcov=vcov, bayes=not request.frequentist_only,
                label=request.formula, options=options)


def run_family(request, formula: PanelFormula, frame: pd.DataFrame, out: Path, priors,
               sampling: dict, progress) -> tuple[pd.DataFrame, dict]:
    """Fit ``request.model`` both ways; write results.csv and the posteriors into ``out``.

    Returns the results and the posterior fits (key ``fit/1`` or ``fit/1/<name>``).
    """
    from inference.estimators import event_study, mediation, threshold

    adapter = {"threshold": threshold, "event_study": event_study,
               "mediation": mediation}[request.model]
    spec = _spec(request, formula)
    settings = Settings(seed=request.seed, unit=formula.unit, time=formula.time,
                        quick=request.quick, sampling=sampling, priors=priors, out_dir=out)
    label = f"user data: {request.data.name}"
    progress(f"[fit] {label}, {len(frame):,} rows; {request.formula} ({request.model})")
    tick = _time.perf_counter()
    estimate = adapter.frequentist(frame, spec, settings)
    parts = [result_rows(estimate.tidy, study="fit", table=FIT_TABLE, column=FIT_COLUMN,
                         source="frequentist")]
    progress(f"[fit] frequentist {_time.perf_counter() - tick:.2f} s")
    fits = {}
    if not request.frequentist_only:
        tick = _time.perf_counter()
        bayes = adapter.bayesian(frame, spec, settings)
        for name, fit in bayes.fits.items():
            fit.save_netcdf(out / f"posterior_fit{'_' + name if name else ''}.nc")
            fits[f"{FIT_TABLE}/{FIT_COLUMN}" + (f"/{name}" if name else "")] = fit
        parts.append(result_rows(bayes.tidy, study="fit", table=FIT_TABLE, column=FIT_COLUMN,
                                 source="bayesian"))
        problems = [p for f in fits.values() for p in f.convergence_problems()]
        status = "converged" if not problems else "NOT converged: " + "; ".join(problems)
        progress(f"[fit] Bayesian {_time.perf_counter() - tick:.1f} s, {status}")
    results = assemble(parts, label)
    progress(f"[fit] wrote {write_results(results, out)}")
    return results, fits

"""The fit a worker runs for the sensitivity batch: one specification of a study under one set
of priors, summarised as JSON.

The worker loads the study and the data itself (nothing large travels to it), fits the
specification's Bayesian adapter with the alternative priors and spec options, and returns the
summary of every term (posterior mean, sd, 94% HDI, P(> 0), R-hat, ESS, and the table and
column the row goes to), the convergence problems, the priors the fit used, the probabilities
of the claims whose draws are all rows of this specification, its own column or those its
adapter routes rows to (computed here from the draws of the fit that wrote each row, so that
no draws travel back) and, when asked, the power-scaling sequence and diagnosis of the key
quantities.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Terms whose power-scaling sequence is computed: the key term first, then the claims', then
# the other terms of the model, up to this many.
MAX_QUANTITIES = 12
# Part of every task key: a change to what a task returns must not reuse older results.
RESULT_VERSION = 3
SUMMARY_COLUMNS = ("estimate", "std_error", "ci_low", "ci_high", "prob_positive", "r_hat",
                   "ess_bulk")


def load_inputs(study: str, data: str | None, encoding: str | None = None):
    """The study (a shipped name or a study file) and its validated, derived dataset."""
    from inference.datasets import load_dataset
    from inference.registry import load_study
    from inference.runner import _derive_measures
    from inference.user_study import is_study_file, load_study_file, load_user_dataset

    if is_study_file(study):
        study_obj = load_study_file(study)
        dataset = load_user_dataset(study_obj, Path(data) if data else None)
    else:
        study_obj = load_study(study)
        needed = list(dict.fromkeys(c for s in study_obj.specs for c in s.columns))
        dataset = load_dataset(study, Path(data) if data else None, needed, encoding)
    return study_obj, _derive_measures(study_obj, dataset, lambda _message: None)


def find_spec(study, ref: str):
    """The spec ``TABLE/COLUMN`` of ``study``; ValueError naming the known ones otherwise."""
    table, sep, column = ref.partition("/")
    for spec in study.specs:
        if sep and spec.table == table and spec.column == column:
            return spec
    known = ", ".join(f"{s.table}/{s.column}" for s in study.specs if s.bayes)
    raise ValueError(f"--spec {ref}: no specification table {table!r} column {column!r} in "
                     f"{study.name} (write TABLE/COLUMN; with a Bayesian counterpart: {known})")


def prior_record(fit) -> dict[str, str]:
    """The priors a fit used, ``{role[.term]: "family(...)"}``."""
    record = {}
    for key, value in (getattr(fit, "priors", None) or {}).items():
        text = value.get("prior") if isinstance(value, dict) else value
        if isinstance(text, str):
            record[str(key)] = text
    return record


def _placed(tidy: pd.DataFrame, spec) -> pd.DataFrame:
    """``tidy`` with every row's table and column (an adapter may route rows to other
    columns of the paper, as mediation does; the others leave them to the spec's)."""
    tidy = tidy.copy()
    for name, default in (("table", spec.table), ("column", spec.column)):
        values = tidy[name] if name in tidy else pd.Series(default, index=tidy.index)
        tidy[name] = values.where(values.notna(), default).astype(str)
    return tidy


def _summary(tidy: pd.DataFrame) -> list[dict]:
    rows = []
    for row in tidy.to_dict("records"):
        if not np.isfinite(float(row.get("std_error", np.nan))):
            continue
        rows.append({"term": str(row["term"]), "table": row["table"], "column": row["column"],
                     **{c: float(row[c]) if row.get(c) is not None else None
                        for c in SUMMARY_COLUMNS}})
    return rows


def _candidates(idata, term: str):
    """Draws that may hold the results term ``term``, most likely first: what
    :func:`inference.report.draws.term_draws` finds, every variable at the coordinate label
    ``term``, and for ``<variable>_<label>`` (mediation's ``indirect_Va``) that variable at
    that label."""
    from inference.report.draws import term_draws

    values = term_draws(idata, term)
    if values is not None:
        yield values
    if idata is None or "posterior" not in idata.groups():
        return
    posterior = idata.posterior
    parts = term.split("_")
    splits = [(name, term) for name in posterior.data_vars if not name.endswith("__")]
    splits += [("_".join(parts[:cut]), "_".join(parts[cut:]))
               for cut in range(len(parts) - 1, 0, -1)]
    for name, label in splits:
        if name not in posterior.data_vars:
            continue
        variable = posterior[name]
        for dim in variable.dims:
            if dim in ("chain", "draw") or dim not in posterior.coords:
                continue
            if label in [str(v) for v in posterior.coords[dim].values]:
                picked = variable.sel({dim: label})
                if set(picked.dims) <= {"chain", "draw"}:
                    yield np.asarray(picked.values, dtype=float).reshape(-1)


def fit_draws(idata, term: str, mean: float | None = None) -> np.ndarray | None:
    """Draws of the results term ``term`` (see :func:`_candidates`); with ``mean`` (the
    results row's posterior mean) only draws with that mean, since a family's row names need
    not be its variables' (mediation's b path is the row ``Va``, and ``a`` also carries the
    label ``Va``); None when none qualifies."""
    for values in _candidates(idata, term):
        if mean is None or np.isclose(values.mean(), mean, rtol=1e-9, atol=1e-12):
            return values
    return None


def _row_draws(estimate, tidy: pd.DataFrame, ref: str) -> np.ndarray | None:
    """Draws of a claim's ``table/column/term`` from the fit of ``estimate`` that produced
    that results row: the fit whose draws of the term have the row's posterior mean (an
    adapter may fit several models, each writing rows to other columns)."""
    table, column, term = ref.split("/", 2)
    rows = tidy[(tidy["table"] == table) & (tidy["column"] == column) & (tidy["term"] == term)]
    if not len(rows) or not np.isfinite(float(rows["estimate"].iloc[0])):
        return None
    target = float(rows["estimate"].iloc[0])
    for fit in estimate.fits.values():
        values = fit_draws(getattr(fit, "idata", None), term, target)
        if values is not None:
            return values
    return None


def claim_refs(study_name: str) -> dict[str, list[str]]:
    """The ``table/column/term`` draws of every claim of the study's ledger, by claim id."""
    from inference.claims import load_claims

    return {claim.id: list(claim.draws.values()) for claim in load_claims(study_name)}


def _claims(study_name: str, estimate, tidy: pd.DataFrame) -> dict[str, float | None]:
    """The probability of every claim whose draws all come from rows of this fit (its
    specification's columns, or those its adapter routes rows to); None for one whose rows
    are there but whose draws are not."""
    from inference.claims import claim_probability, load_claims

    probabilities: dict[str, float | None] = {}
    places = set(zip(tidy["table"], tidy["column"], tidy["term"], strict=True))
    for claim in load_claims(study_name):
        refs = [ref.split("/", 2) for ref in claim.draws.values()]
        if not refs or any(tuple(ref) not in places for ref in refs):
            continue
        draws = {name: _row_draws(estimate, tidy, ref) for name, ref in claim.draws.items()}
        missing = [name for name, values in draws.items() if values is None]
        probabilities[claim.id] = None if missing else claim_probability(claim, draws)
    return probabilities


# A family's posterior variable that holds the key term under another name: the IV model's
# slope of the endogenous regressor is ``beta``.
KEY_VARIABLES = {"iv": "beta"}


def _quantities(idata, terms: list[str], kind: str = "",
                means: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Draws of ``terms`` in ``idata``; a term with a results row (its posterior mean in
    ``means``) only from draws with that mean, so that no quantity is another's under its
    name."""
    found, means = {}, means or {}
    for index, term in enumerate(dict.fromkeys(terms)):
        values = fit_draws(idata, term, means.get(term))
        if values is None and index == 0 and kind in KEY_VARIABLES:
            values = fit_draws(idata, KEY_VARIABLES[kind], means.get(term))
        if values is not None and len(found) < MAX_QUANTITIES:
            found[term] = values
    return found


def _quantity_view(idata, quantities: dict[str, np.ndarray]):
    """An InferenceData whose posterior is ``quantities`` (under their results names) beside
    the fit's ``log_prior`` and ``log_likelihood``: their sensitivities are then found by
    name, whatever variable and coordinate a family stores them under."""
    import arviz as az
    import xarray as xr

    posterior = idata.posterior
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    view = az.InferenceData(posterior=xr.Dataset(
        {name: (("chain", "draw"), values.reshape(chains, draws))
         for name, values in quantities.items()},
        coords={"chain": posterior["chain"].values, "draw": posterior["draw"].values}))
    for group in ("log_prior", "log_likelihood"):
        if group in idata.groups():
            view.add_groups({group: idata[group]})
    return view


def _psens(view, component: str, names: list[str]) -> dict[str, float]:
    """Power-scaling sensitivity (:func:`models.bayes.sensitivity.psens`, ArviZ's ``psens``)
    of each scalar quantity of ``view``."""
    from models.bayes.sensitivity import psens

    if not names:
        return {}
    values = psens(view, component, names)
    return {name: float(values[name]) for name in names}


def power_scaling_summary(idata, terms: list[str], kind: str = "",
                          means: dict[str, float] | None = None) -> dict[str, list[dict]]:
    """The power-scaling sequence (:func:`models.bayes.power_scaling.power_scaling_sequence`)
    and diagnosis of ``terms`` (the first one the key term of a model of ``kind``; ``means``
    the results rows' posterior means, see :func:`_quantities`), as JSON records."""
    from models.bayes.power_scaling import diagnosis_words, power_scaling_sequence

    quantities = _quantities(idata, terms, kind, means)
    sequence = power_scaling_sequence(idata, quantities)
    try:
        view = _quantity_view(idata, quantities)
        sensitivity = {component: _psens(view, component, list(quantities))
                       for component in ("prior", "likelihood")}
    except (ValueError, KeyError, TypeError, FloatingPointError):
        sensitivity = {"prior": {}, "likelihood": {}}
    diagnosis = []
    for name in quantities:
        prior_s = sensitivity["prior"].get(name, np.nan)
        like_s = sensitivity["likelihood"].get(name, np.nan)
        rows = sequence[sequence["quantity"] == name]
        prior_k = float(rows.loc[rows["component"] == "prior", "pareto_k"].max())
        like_k = float(rows.loc[rows["component"] == "likelihood", "pareto_k"].max())
        threshold = float(rows["k_threshold"].iloc[0])
        diagnosis.append({
            "quantity": name, "prior_sensitivity": prior_s, "likelihood_sensitivity": like_s,
            "max_pareto_k_prior": prior_k, "max_pareto_k_likelihood": like_k,
            "k_threshold": threshold,
            "diagnosis": diagnosis_words(prior_s, like_s, prior_k, like_k, threshold)})
    return {"sequence": sequence.to_dict("records"), "diagnosis": diagnosis}


def fit_spec(study: str, spec_ref: str, data: str | None = None, encoding: str | None = None,
             priors: dict[str, str] | None = None, options: dict[str, Any] | None = None,
             sampling: dict[str, Any] | None = None, seed: int = 20250401,
             quick: bool = False):
    """The Bayesian adapter's :class:`~inference.estimators.base.Estimate` of ``spec_ref``
    (``TABLE/COLUMN``) of ``study`` with ``priors`` (``{role[.term]: prior}`` on top of the
    defaults) and the spec ``options`` changed; returns (estimate, study, spec, dataset)."""
    import warnings

    from inference.estimators import BAYESIAN, Settings
    from inference.runner import sampling_settings
    from inference.samples import prepare_sample

    # The workers sample with numba; PyTensor's C-backend BLAS notice does not apply.
    warnings.filterwarnings("ignore", message=".*could not link to a BLAS", category=UserWarning)
    study_obj, dataset = load_inputs(study, data, encoding)
    spec = find_spec(study_obj, spec_ref)
    if options:
        spec = dataclasses.replace(spec, options={**spec.options, **options})
    adapter = BAYESIAN.get(spec.kind)
    if adapter is None:
        raise ValueError(f"{spec.key}: no Bayesian counterpart for kind {spec.kind!r}")
    sample = prepare_sample(dataset.frame, spec)
    with tempfile.TemporaryDirectory(prefix="sensitivity-") as scratch:
        settings = Settings(seed=seed, unit=study_obj.unit, time=study_obj.time, quick=quick,
                            sampling=dict(sampling or sampling_settings(quick)),
                            priors=dict(priors or {}) or None, out_dir=Path(scratch),
                            synthetic=dataset.synthetic)
        estimate = adapter(sample, spec, settings)
    return estimate, study_obj, spec, dataset


def refit(study: str, spec_ref: str, data: str | None = None, encoding: str | None = None,
          priors: dict[str, str] | None = None, options: dict[str, Any] | None = None,
          sampling: dict[str, Any] | None = None, seed: int = 20250401, quick: bool = False,
          key_term: str | None = None, power_scaling: bool = False) -> dict[str, Any]:
    """Fit the Bayesian adapter of ``spec_ref`` (``TABLE/COLUMN``) of ``study`` with
    ``priors`` (``{role[.term]: prior}`` on top of the defaults) and the spec ``options``
    changed (:func:`fit_spec`); returns the JSON summary of the module docstring."""
    estimate, study_obj, spec, dataset = fit_spec(study, spec_ref, data, encoding, priors,
                                                  options, sampling, seed, quick)
    tidy = _placed(estimate.tidy, spec)
    if spec.kind == "event_study" and "" not in estimate.fits and "negbin" in estimate.fits:
        # The count likelihood alone (a grid's likelihood alternative): its rows under the
        # normal model's names, so that the key term and the claims read the same quantity.
        tidy["term"] = tidy["term"].str.removeprefix("negbin_")
    fit = estimate.fits.get("") or next(iter(estimate.fits.values()))
    idata = fit.idata
    problems = [p for f in estimate.fits.values() for p in f.convergence_problems()]
    rows = _summary(tidy)
    result: dict[str, Any] = {
        "spec": spec_ref, "kind": spec.kind, "rows": rows, "problems": problems,
        "priors": prior_record(fit), "claims": _claims(study_obj.name, estimate, tidy),
        "data_label": dataset.label, "synthetic": dataset.synthetic,
        "draws": int(idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"])}
    if power_scaling:
        places = set(zip(tidy["table"], tidy["column"], tidy["term"], strict=True))
        terms = [key_term] if key_term else []
        terms += [ref.split("/", 2)[2] for refs in claim_refs(study_obj.name).values()
                  for ref in refs if tuple(ref.split("/", 2)) in places]
        terms += [row["term"] for row in rows]
        try:
            means: dict[str, float] = {}
            for row in rows:
                means.setdefault(row["term"], row["estimate"])
            result["power_scaling"] = power_scaling_summary(idata, [t for t in terms if t],
                                                            spec.kind, means)
        except ValueError as exc:
            result["power_scaling"] = {"sequence": [], "diagnosis": [], "error": str(exc)}
    return result

"""Dynamic panels by difference or system GMM, one- or two-step, Windmeijer errors
(frequentist)."""

from __future__ import annotations

import re

import pandas as pd
from scipy import stats

from inference.estimators.base import Estimate, Settings
from inference.registry import Spec
from models.gmm.estimate import fit_dynamic_gmm

KIND = "system_gmm"

_OPTIONS = {"lagged", "lags", "outcome_lags", "gmm", "iv", "collapse", "time_dummies",
            "long_run", "rename", "level", "steps", "small", "exogenous_regressors",
            "iv_diff", "h"}
# Options a spec of any kind may carry beside its own.
_GENERIC_OPTIONS = {"note", "target_accept"}


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """y_it = sum_l rho_l y_i,t-l + sum_j sum_l b_jl x_j,i,t-l + d_t + a_i + e_it by GMM.

    ``spec.regressors`` are x_j. Options: ``outcome_lags`` (int p or list; default 1),
    ``lags`` (``{name = [0, 1, 2]}``) or ``lagged`` (regressors that also enter at lag one),
    ``gmm`` (``{name = [a, b]}`` GMM-style lag ranges, b "max" for all; default the outcome
    with lags 2-4), ``iv`` (extra IV-style variables, ``"L1.w"`` for a lag), ``iv_diff``
    (IV-style for the differenced equations only), ``h`` (xtabond2's one-step weight, 3),
    ``exogenous_regressors`` (default true: regressors not GMM-style instrument themselves),
    ``level`` (default true: system GMM; false: difference GMM), ``steps`` (1 or 2, default
    2), ``small``, ``collapse`` (default true), ``time_dummies`` (default true), ``long_run``
    (regressors whose long-run effect sum b / (1 - sum rho) is reported), ``rename`` (term ->
    printed name). Lags are reported as ``lag_<name>`` (``lag2_<name>`` for lag two); then
    ``ar1``, ``ar2`` (Arellano-Bond z), ``hansen_j`` and ``sargan`` (chi2) and
    ``n_instruments``.
    """
    options = spec.options
    unknown = sorted(set(options) - _OPTIONS - _GENERIC_OPTIONS)
    if unknown:
        raise ValueError(f"{spec.key}: unknown system_gmm option(s) {unknown}; "
                         f"known: {sorted(_OPTIONS)}")
    gmm = {name: _lag_range(spec, name, lags)
           for name, lags in options.get("gmm", {spec.outcome: [2, 4]}).items()}
    steps = int(options.get("steps", 2))
    fit = fit_dynamic_gmm(
        sample, spec.outcome, list(spec.regressors),
        outcome_lags=options.get("outcome_lags", 1),
        lags={k: list(v) for k, v in options.get("lags", {}).items()} or None,
        lagged=list(options.get("lagged", [])), gmm=gmm,
        iv=list(options.get("iv", [])) or None,
        iv_diff=list(options.get("iv_diff", [])) or None, unit=settings.unit, time=settings.time,
        level=bool(options.get("level", True)),
        time_dummies=bool(options.get("time_dummies", True)),
        collapse=bool(options.get("collapse", True)), steps=steps,
        exogenous_regressors=bool(options.get("exogenous_regressors", True)),
        small=bool(options.get("small", False)), h=int(options.get("h", 3)),
    )
    tidy = fit.tidy()
    for regressor in options.get("long_run", []):
        value, error = fit.long_run(regressor)
        tidy = pd.concat([tidy, pd.DataFrame({
            "term": [f"long_run_{regressor}"], "estimate": [value], "std_error": [error],
            "ci_low": [value - 1.959964 * error], "ci_high": [value + 1.959964 * error],
            "stat": [value / error], "p_value": [2 * stats.norm.sf(abs(value / error))],
            "n_obs": [fit.n_obs]})], ignore_index=True)
    residuals = "two-step" if steps == 2 else "one-step"
    notes = {
        "ar1": f"Arellano-Bond z, differenced {residuals} residuals",
        "ar2": f"Arellano-Bond z, differenced {residuals} residuals",
        "hansen_j": f"chi2({fit.hansen[1]}) over-identifying restrictions",
        "sargan": f"chi2({fit.sargan[1]}) over-identifying restrictions, one-step, not robust",
        "n_instruments": "collapsed" if options.get("collapse", True) else "uncollapsed",
    }
    tidy["note"] = tidy["term"].map(notes).fillna("")
    tidy["term"] = tidy["term"].map(_printed_lag)
    tidy["term"] = tidy["term"].replace(options.get("rename", {}))
    return Estimate(tidy)


def _lag_range(spec: Spec, name: str, lags) -> tuple[int, int | None]:
    if not isinstance(lags, list | tuple) or not 1 <= len(lags) <= 2:
        raise ValueError(f"{spec.key}: gmm lags of '{name}' must be [a] or [a, b], not {lags}")
    high = None if len(lags) < 2 or lags[1] in (None, "max") else int(lags[1])
    return int(lags[0]), high


def _printed_lag(term: str) -> str:
    match = re.match(r"^L(\d+)\.(.+)$", term)
    if not match:
        return term
    lag, name = int(match.group(1)), match.group(2)
    return f"lag_{name}" if lag == 1 else f"lag{lag}_{name}"

"""Blundell-Bond two-step system GMM with Windmeijer errors (frequentist)."""

from __future__ import annotations

import re

import pandas as pd
from scipy import stats

from inference.estimators.base import Estimate, Settings
from inference.registry import Spec
from models.system_gmm import fit_system_gmm

KIND = "system_gmm"


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """y_it = rho y_i,t-1 + x_it' b + x_i,t-1' b1 + d_t + a_i + e_it by system GMM.

    ``spec.regressors`` are x_it. Options: ``lagged`` (regressors that also enter at lag one),
    ``gmm`` (``{name = [a, b]}`` GMM-style lag ranges; default the outcome with lags 2-4),
    ``iv`` (extra IV-style variables), ``collapse`` (default true), ``time_dummies`` (default
    true), ``long_run`` (regressors whose long-run effect (b + b1) / (1 - rho) is reported),
    ``rename`` (term -> printed name). Lags are reported as ``lag_<name>``; then ``ar1``,
    ``ar2`` (Arellano-Bond z), ``hansen_j`` (chi2) and ``n_instruments``.
    """
    options = spec.options
    gmm = {name: (int(lags[0]), None if len(lags) < 2 or lags[1] in (None, "max")
                  else int(lags[1]))
           for name, lags in options.get("gmm", {spec.outcome: [2, 4]}).items()}
    fit = fit_system_gmm(
        sample, spec.outcome, list(spec.regressors), lagged=list(options.get("lagged", [])),
        gmm=gmm, iv=list(options.get("iv", [])) or None, unit=settings.unit,
        time=settings.time, time_dummies=bool(options.get("time_dummies", True)),
        collapse=bool(options.get("collapse", True)),
    )
    tidy = fit.tidy()
    for regressor in options.get("long_run", []):
        value, error = fit.long_run(regressor)
        tidy = pd.concat([tidy, pd.DataFrame({
            "term": [f"long_run_{regressor}"], "estimate": [value], "std_error": [error],
            "ci_low": [value - 1.959964 * error], "ci_high": [value + 1.959964 * error],
            "stat": [value / error], "p_value": [2 * stats.norm.sf(abs(value / error))],
            "n_obs": [fit.n_obs_level]})], ignore_index=True)
    notes = {
        "ar1": "Arellano-Bond z, differenced residuals",
        "ar2": "Arellano-Bond z, differenced residuals",
        "hansen_j": f"chi2({fit.hansen[1]}) over-identifying restrictions",
        "n_instruments": "collapsed" if options.get("collapse", True) else "uncollapsed",
    }
    tidy["note"] = tidy["term"].map(notes).fillna("")
    tidy["term"] = tidy["term"].map(lambda t: re.sub(r"^L1\.", "lag_", t))
    tidy["term"] = tidy["term"].replace(options.get("rename", {}))
    return Estimate(tidy)

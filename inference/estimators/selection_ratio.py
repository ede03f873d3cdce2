"""Altonji-Elder-Taber selection ratio and Oster (2019) delta (frequentist)."""

from __future__ import annotations

import pandas as pd

from inference.estimators.base import Estimate, Settings
from inference.registry import Spec
from models.selection_ratio import fit_selection_ratio

KIND = "selection_ratio"


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """Full model ``outcome ~ regressors + effects`` against the model without controls.

    The treatment is option ``treatment`` (default: the first regressor); the other regressors
    are the controls. Rows: the full model's table (the paper's column repeats the baseline),
    ``selection_ratio`` = beta_full / (beta_restricted - beta_full), ``beta_restricted``,
    ``oster_delta`` (delta for beta = 0), ``oster_beta_star`` (beta* for delta = 1) and
    ``oster_r_max`` (option ``r_max_factor``, default 1.3, capped at 1).
    """
    treatment = str(spec.options.get("treatment", spec.regressors[0]))
    if treatment not in spec.regressors:
        raise ValueError(f"{spec.key}: treatment '{treatment}' not among the regressors "
                         f"{list(spec.regressors)}")
    controls = [r for r in spec.regressors if r != treatment]
    fit = fit_selection_ratio(sample, spec.outcome, treatment, controls, list(spec.effects),
                              vcov=spec.vcov,
                              r_max_factor=float(spec.options.get("r_max_factor", 1.3)))
    return Estimate(fit.tidy())

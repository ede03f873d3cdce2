"""Three-step mediation with fixed effects (frequentist): Sobel test and cluster bootstrap."""

from __future__ import annotations

import pandas as pd

from inference.estimators.base import Estimate, Settings
from inference.registry import Spec
from models.mediation.three_step import fit_mediation

KIND = "mediation"

QUICK_BOOTSTRAP = 200


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """Total effect, then per mediator the a path (mediator on treatment) and the b path
    (outcome on treatment and mediator), all with the controls and ``spec.effects``.

    Options: ``treatment`` (default the first regressor), ``mediators`` (list),
    ``mediator_columns`` (``{Va = ["2", "3"], ...}``: columns of the a and b paths; default
    consecutive columns after ``spec.column``), ``n_boot`` (default 1000; 200 with --quick).
    The total effect goes to ``spec.column``; ``indirect_<m>`` (a b with Sobel se, z, p and
    the bootstrap percentile interval in ci_low/ci_high), ``sobel_z_<m>``, ``sobel_p_<m>``
    and ``proportion_mediated_<m>`` go to the b-path column.
    """
    options = spec.options
    treatment = str(options.get("treatment", spec.regressors[0]))
    controls = [r for r in spec.regressors if r != treatment]
    mediators = options.get("mediators")
    if not mediators:
        raise ValueError(f"{spec.key}: kind 'mediation' needs the option 'mediators'")
    mediators = [mediators] if isinstance(mediators, str) else list(mediators)
    columns = options.get("mediator_columns") or _default_columns(spec.column, mediators)
    n_boot = QUICK_BOOTSTRAP if settings.quick else int(options.get("n_boot", 1000))
    parts = []
    for index, mediator in enumerate(mediators):
        if mediator not in columns:
            raise ValueError(f"{spec.key}: no entry for mediator '{mediator}' in "
                             f"mediator_columns {columns}")
        a_column, b_column = (str(c) for c in columns[mediator])
        fit = fit_mediation(sample, spec.outcome, treatment, mediator, controls,
                            list(spec.effects), vcov=spec.vcov, n_boot=n_boot,
                            seed=settings.seed + index)
        if index == 0:
            parts.append(fit.total.tidy().assign(column=spec.column))
        parts.append(fit.a_path.tidy().assign(column=a_column))
        parts.append(fit.b_path.tidy().assign(column=b_column))
        parts.append(fit.effects_table().assign(column=b_column))
    out = pd.concat(parts, ignore_index=True)
    out["table"] = spec.table
    return Estimate(out)


def _default_columns(first: str, mediators: list[str]) -> dict[str, list[str]]:
    start = int(first)
    return {m: [str(start + 2 * i + 1), str(start + 2 * i + 2)] for i, m in enumerate(mediators)}

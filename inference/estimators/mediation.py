"""Mediation with fixed effects: the three steps with Sobel test and cluster bootstrap
(frequentist) and the joint mediator and outcome model with its confounding sensitivity
(Bayesian, :mod:`models.mediation.bayes`).

Options of a ``mediation`` spec: ``treatment`` (default the first regressor; the other
regressors are the controls of every equation), ``mediators`` (list), ``mediator_columns``
(``{Va = ["2", "3"], ...}``: columns of each mediator's a and b paths, as the paper prints
them; default consecutive columns after ``spec.column``), ``separate`` (default true: one
mediator at a time, as printed), ``joint_column`` (also fit every mediator in one model, rows
to that column with terms ``total``, ``direct``, ``a_<m>``, ``b_<m>``, ``indirect_<m>``,
``share_mediated_<m>``), ``n_boot`` (default 1000; 200 with --quick), ``target_accept``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from inference.estimators.base import Estimate, Settings, convergence_note
from inference.registry import Spec
from models.mediation.three_step import fit_mediation, sobel_test
from models.panel.fe import fit_twfe

KIND = "mediation"

QUICK_BOOTSTRAP = 200


def _parts(spec: Spec) -> tuple[str, list[str], list[str]]:
    options = spec.options
    treatment = str(options.get("treatment", spec.regressors[0]))
    controls = [r for r in spec.regressors if r != treatment]
    mediators = options.get("mediators")
    if not mediators:
        raise ValueError(f"{spec.key}: kind 'mediation' needs the option 'mediators'")
    mediators = [mediators] if isinstance(mediators, str) else [str(m) for m in mediators]
    return treatment, controls, mediators


def _separate(spec: Spec) -> bool:
    return bool(spec.options.get("separate", True))


def _columns(spec: Spec, mediators: list[str]) -> dict[str, tuple[str, str]]:
    columns = spec.options.get("mediator_columns") or _default_columns(spec.column, mediators)
    out = {}
    for mediator in mediators:
        if mediator not in columns:
            raise ValueError(f"{spec.key}: no entry for mediator '{mediator}' in "
                             f"mediator_columns {columns}")
        a_column, b_column = (str(c) for c in columns[mediator])
        out[mediator] = (a_column, b_column)
    return out


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """Total effect, then per mediator the a path (mediator on treatment) and the b path
    (outcome on treatment and mediator), all with the controls and ``spec.effects``.

    The total effect goes to ``spec.column``; ``indirect_<m>`` (a b with Sobel se, z, p and
    the bootstrap percentile interval in ci_low/ci_high), ``sobel_z_<m>``, ``sobel_p_<m>``
    and ``share_mediated_<m>`` (a b / total) go to the b-path column. With ``joint_column``: the
    parallel-mediator regressions (every a path, one b path with all mediators) in that
    column, indirect effects with Sobel errors and normal 95% intervals.
    """
    treatment, controls, mediators = _parts(spec)
    n_boot = QUICK_BOOTSTRAP if settings.quick else int(spec.options.get("n_boot", 1000))
    parts = []
    if _separate(spec):
        columns = _columns(spec, mediators)
        for index, mediator in enumerate(mediators):
            a_column, b_column = columns[mediator]
            fit = fit_mediation(sample, spec.outcome, treatment, mediator, controls,
                                list(spec.effects), vcov=spec.vcov, n_boot=n_boot,
                                seed=settings.seed + index)
            if index == 0:
                parts.append(fit.total.tidy().assign(column=spec.column))
            parts.append(fit.a_path.tidy().assign(column=a_column))
            parts.append(fit.b_path.tidy().assign(column=b_column))
            parts.append(fit.effects_table().assign(column=b_column))
    joint = spec.options.get("joint_column")
    if joint:
        parts.append(_joint_frequentist(sample, spec, treatment, controls, mediators)
                     .assign(column=str(joint)))
    out = pd.concat(parts, ignore_index=True)
    out["table"] = spec.table
    return Estimate(out)


def _joint_frequentist(sample: pd.DataFrame, spec: Spec, treatment: str, controls: list[str],
                       mediators: list[str]) -> pd.DataFrame:
    """Within regressions of the parallel-mediator system under the joint model's term names."""
    effects = list(spec.effects)
    total = fit_twfe(sample, spec.outcome, [treatment, *controls], effects, vcov=spec.vcov)
    outcome = fit_twfe(sample, spec.outcome, [treatment, *mediators, *controls], effects,
                       vcov=spec.vcov)
    total_row = total.tidy().set_index("term").loc[treatment]
    b_rows = outcome.tidy().set_index("term")
    z95 = stats.norm.ppf(0.975)
    rows = [dict(total_row, term="total"), dict(b_rows.loc[treatment], term="direct")]
    for mediator in mediators:
        a_row = fit_twfe(sample, mediator, [treatment, *controls], effects,
                         vcov=spec.vcov).tidy().set_index("term").loc[treatment]
        b_row = b_rows.loc[mediator]
        a, b = float(a_row["estimate"]), float(b_row["estimate"])
        se, z, p = sobel_test(a, float(a_row["std_error"]), b, float(b_row["std_error"]))
        rows += [dict(a_row, term=f"a_{mediator}"), dict(b_row, term=f"b_{mediator}"),
                 {"term": f"indirect_{mediator}", "estimate": a * b, "std_error": se,
                  "ci_low": a * b - z95 * se, "ci_high": a * b + z95 * se, "stat": z,
                  "p_value": p, "n_obs": total.n_obs},
                 {"term": f"share_mediated_{mediator}",
                  "estimate": a * b / float(total_row["estimate"]), "n_obs": total.n_obs}]
    frame = pd.DataFrame(rows)
    keep = ["term", "estimate", "std_error", "ci_low", "ci_high", "stat", "p_value", "n_obs"]
    return frame[[c for c in keep if c in frame]]


def _default_columns(first: str, mediators: list[str]) -> dict[str, list[str]]:
    start = int(first)
    return {m: [str(start + 2 * i + 1), str(start + 2 * i + 2)] for i, m in enumerate(mediators)}


def bayesian(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """The joint model of :func:`models.mediation.bayes.fit_bayes_mediation`: one fit per
    mediator into the printed columns (the total effect in ``spec.column``, the a path in the
    a column; direct effect, b path, indirect effect, ``share_mediated_<m>`` (the share
    mediated) and ``rho_at_zero_<m>`` in the b column), and with ``joint_column`` one fit of
    all mediators together there. Each fit's confounding-sensitivity curve is a figure, its
    numbers a CSV of the same name."""
    from models.mediation.bayes import fit_bayes_mediation

    treatment, controls, mediators = _parts(spec)
    effects = list(spec.effects)
    if not effects or effects[0] != settings.unit or len(effects) > 2 or (
            len(effects) == 2 and "^" in effects[1]):
        raise ValueError(f"{spec.key}: the Bayesian mediation model needs effects "
                         f"[{settings.unit!r}] or [{settings.unit!r}, <time>], not {effects}")
    extra = {}
    if "target_accept" in spec.options:
        extra["target_accept"] = float(spec.options["target_accept"])

    def fit(which: list[str]):
        return fit_bayes_mediation(
            sample, spec.outcome, treatment, which, controls, unit=effects[0],
            time=effects[1] if len(effects) == 2 else None,
            priors=settings.priors_for("mediation"), seed=settings.seed, **settings.sampling,
            **extra)

    parts, fits, figures = [], {}, []
    if _separate(spec):
        columns = _columns(spec, mediators)
        for index, mediator in enumerate(mediators):
            result = fits[mediator] = fit([mediator])
            rows = _rows(result, spec)
            a_column, b_column = columns[mediator]
            names = {"total": (spec.column, treatment), f"a_{mediator}": (a_column, treatment),
                     "direct": (b_column, treatment), f"b_{mediator}": (b_column, mediator),
                     f"indirect_{mediator}": (b_column, f"indirect_{mediator}"),
                     f"share_mediated_{mediator}": (b_column, f"share_mediated_{mediator}"),
                     f"rho_at_zero_{mediator}": (b_column, f"rho_at_zero_{mediator}"),
                     f"rho_{mediator}": (b_column, f"rho_{mediator}")}
            if index > 0:
                names.pop("total")
            rows = rows[rows["term"].isin(names)].copy()
            rows["column"] = [names[t][0] for t in rows["term"]]
            rows["term"] = [names[t][1] for t in rows["term"]]
            parts.append(rows)
            figures.append(_figure(result, spec, settings, mediator))
    joint = spec.options.get("joint_column")
    if joint:
        result = fits["joint"] = fit(mediators)
        parts.append(_rows(result, spec).assign(column=str(joint)))
        figures.append(_figure(result, spec, settings, "joint"))
    out = pd.concat(parts, ignore_index=True)
    out["table"] = spec.table
    return Estimate(out, fits=fits, figures=figures)


def _rows(result, spec: Spec) -> pd.DataFrame:
    """The fit's main terms and one ``rho_at_zero_<m>`` row per mediator, with notes."""
    tidy = result.tidy(auxiliary=False).drop(columns=["divergences"])
    problems = result.convergence_problems()
    tidy["note"] = [convergence_note(term, problems) for term in tidy["term"]]
    extra = []
    for mediator in result.mediators:
        curve = result.sensitivity(mediator)
        note = curve.describe()
        if problems:
            note += "; " + convergence_note(f"indirect_{mediator}", problems)
        extra.append({"term": f"rho_at_zero_{mediator}", "estimate": curve.rho_at_zero,
                      "std_error": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                      "prob_positive": np.nan, "r_hat": np.nan, "ess_bulk": np.nan,
                      "n_obs": result.spec["n_obs"], "note": note})
    return pd.concat([tidy, pd.DataFrame(extra)], ignore_index=True)


def _figure(result, spec: Spec, settings: Settings, name: str):
    from models.mediation.sensitivity import plot_sensitivity

    curves = [result.sensitivity(m) for m in result.mediators]
    path = settings.out_dir / f"mediation_sensitivity_table{spec.table}_col{spec.column}_{name}.png"
    title = (f"{spec.study} table {spec.table}: indirect effect of {result.spec['treatment']} "
             f"vs mediator-outcome error correlation rho ({name}){settings.figure_suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # The curve's numbers beside its picture, for readers who re-plot or tabulate it.
    pd.concat([c.table.assign(mediator=c.mediator) for c in curves], ignore_index=True).to_csv(
        path.with_suffix(".csv"), index=False, float_format="%.6g")
    return plot_sensitivity(curves, path, title)

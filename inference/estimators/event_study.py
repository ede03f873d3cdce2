"""Event study of a policy year: Treat x year TWFE with a pre-trend test (frequentist) and its
Bayesian counterpart with a prior on the event-time path."""

from __future__ import annotations

import pandas as pd

from inference.estimators.base import Estimate, Settings
from inference.registry import Spec
from models.event_study.twfe import fit_event_study, plot_event_study

KIND = "event_study"
DEFAULT_MBARS = (0.0, 0.5, 1.0, 2.0)


def _frequentist_fit(sample: pd.DataFrame, spec: Spec, settings: Settings):
    options = spec.options
    return fit_event_study(
        sample, spec.outcome, options.get("treat", "sec_share_2015"),
        controls=list(spec.regressors), unit=settings.unit, time=settings.time,
        reference=int(options.get("reference", 2015)), vcov=spec.vcov,
        transform=options.get("transform", "log1p"),
    )


def _figure_path(spec: Spec, settings: Settings):
    return settings.out_dir / f"event_study_table{spec.table}_col{spec.column}.png"


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """y_it = sum_{k != ref} b_k Treat_i 1[t = k] + x_it' g + a_i + l_t + e_it.

    ``spec.outcome`` is the raw count (modelled as ln(1 + count); rows <= -1 dropped),
    ``spec.regressors`` the controls x_it, ``spec.vcov`` the standard errors. Options:
    ``treat`` (unit-level column, above-median units treated; default ``sec_share_2015``),
    ``reference`` (omitted year, default 2015), ``transform`` (``log1p`` or ``none``),
    ``rename`` (term -> printed name), ``mbar`` (relative-magnitude bounds, default
    0, 0.5, 1, 2), ``honest_m`` (smoothness bounds, default 0, 0.01, 0.02, 0.05 on the
    outcome's scale per year squared). Rows: ``Treat_x_<year>``, ``pretrend_wald`` (F test of
    every pre-reference coefficient = 0), ``R2``, and the honest 95% confidence sets of the
    average post effect (Rambachan & Roth 2023): ``rm_Mbar_<m>`` (relative magnitudes,
    conditional-least-favourable hybrid) and ``sd_M_<m>`` (smoothness, fixed-length
    interval); one coefficient plot.
    """
    from inference.estimators.event_study_rows import DEFAULT_SD_MS, frequentist_honest_rows

    options = spec.options
    reference = int(options.get("reference", 2015))
    fit = _frequentist_fit(sample, spec, settings)
    tidy = fit.tidy()
    q, dfd = fit.pretrend_df
    notes = {"pretrend_wald": f"F({q}, {dfd}): Treat x year = 0 for every year before "
                              f"{reference}"}
    if fit.n_dropped:
        notes["R2"] = f"{fit.n_dropped} rows with {spec.outcome} <= -1 dropped (no log)"
    own = tidy["term"].map(notes).fillna("")
    # The estimator's own warnings (a treatment in few clusters) stay beside the adapter's.
    tidy["note"] = [f"{a}; {b}" if a and b else a or b
                    for a, b in zip(own, tidy["note"].fillna(""), strict=True)]
    if fit.transform == "log1p":
        honest = frequentist_honest_rows(fit, options.get("mbar", DEFAULT_MBARS),
                                         options.get("honest_m", DEFAULT_SD_MS))
        tidy = pd.concat([tidy, honest], ignore_index=True)
    tidy["term"] = tidy["term"].replace(options.get("rename", {}))
    what = spec.label or spec.outcome
    title = (f"Table {spec.table} column {spec.column}: {what}\nTreat x year, 95% CI, "
             f"{reference} = 0, SE {spec.vcov}{settings.figure_suffix}")
    return Estimate(tidy, figures=[plot_event_study(fit, _figure_path(spec, settings), title)])


def path_prior_choice(spec: Spec, settings: Settings):
    """The event-path prior: the command line's ``event_path`` entry, else the spec's
    ``path_prior`` option, else the default (``independent``)."""
    from models.event_study.path_priors import EventPathPrior

    user = settings.priors_for("event_study")
    if isinstance(user, dict) and "event_path" in user:
        return EventPathPrior.parse(user["event_path"], source="user")
    if "path_prior" in spec.options:
        return EventPathPrior.parse(spec.options["path_prior"], source=f"spec {spec.key}")
    return EventPathPrior()


def _likelihoods(sample: pd.DataFrame, spec: Spec) -> tuple[list[str], str]:
    """Normal always; negbin too when the outcome is a non-negative integer count (the
    ``likelihoods`` option overrides). Returns the list and why negbin was left out."""
    asked = spec.options.get("likelihoods")
    values = sample[spec.outcome].dropna()
    is_count = bool(((values >= 0) & (values == values.round())).all())
    if asked is not None:
        asked = list(asked)
        if "negbin" in asked and not is_count:
            raise ValueError(f"{spec.key}: likelihood 'negbin' needs non-negative integer "
                             f"counts in '{spec.outcome}' [rule: counts]")
        return asked, ""
    if is_count:
        return ["normal", "negbin"], ""
    return ["normal"], f"no count likelihood: '{spec.outcome}' has negative values"


def bayesian(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """The Bayesian event study (:func:`models.event_study.bayes.fit_bayes_event_study`):
    normal on ln(1 + count) (rows under the published term names), and for count outcomes
    negative binomial on the raw counts (terms ``negbin_Treat_x_<year>``, log rate ratios,
    and ``negbin_rate_ratio_Treat_x_<year>``). Each fit adds ``pretrend_probability``
    (option ``pretrend_band``, default 0.05), ``post_average``, ``post_cumulative``,
    ``peak_effect``, ``peak_year`` and ``rm_Mbar_<m>`` rows. The event-path prior comes from
    :func:`path_prior_choice`; the panel roles from the user's priors. The ``transform``
    option (``log1p`` by default, ``none``: the outcome as given) applies to the normal fit.
    """
    from inference.estimators.event_study_rows import (
        bayesian_path,
        bayesian_rows,
        published_path,
    )
    from models.event_study.bayes import fit_bayes_event_study
    from models.event_study.plot import plot_event_paths
    from models.event_study.summaries import DEFAULT_PRETREND_BAND

    options = spec.options
    reference = int(options.get("reference", 2015))
    band = float(options.get("pretrend_band", DEFAULT_PRETREND_BAND))
    mbars = options.get("mbar", DEFAULT_MBARS)
    path_prior = path_prior_choice(spec, settings)
    user = settings.priors_for("event_study")
    panel = ({k: v for k, v in user.items() if k != "event_path"} or None
             if isinstance(user, dict) else user)
    likelihoods, why_not = _likelihoods(sample, spec)
    fits, parts = {}, []
    for likelihood in likelihoods:
        fit = fit_bayes_event_study(
            sample, spec.outcome, options.get("treat", "sec_share_2015"),
            controls=list(spec.regressors), unit=settings.unit, time=settings.time,
            reference=reference, likelihood=likelihood, path_prior=path_prior, priors=panel,
            transform=options.get("transform") if likelihood == "normal" else None,
            seed=settings.seed, **settings.sampling)
        fits["" if likelihood == "normal" else likelihood] = fit
        prefix = "" if likelihood == "normal" else f"{likelihood}_"
        parts.append(bayesian_rows(fit, band, mbars, prefix))
    tidy = pd.concat(parts, ignore_index=True)
    if why_not:
        tidy.loc[tidy["term"] == "post_average", "note"] += f" ({why_not})"
    tidy["term"] = tidy["term"].replace(options.get("rename", {}))

    paths = {}
    published = published_path(spec.study, spec.table, spec.column)
    if len(published):
        published_label = "published, 95% CI"
        paths[published_label] = published
    frequentist_fit = _frequentist_fit(sample, spec, settings)
    paths["frequentist, 95% CI"] = frequentist_fit.path()
    if "" in fits:  # the ``likelihoods`` option may ask for the count likelihood alone
        paths[f"Bayesian normal ({path_prior.kind}), 94% HDI"] = bayesian_path(fits[""])
    if "negbin" in fits:
        paths["Bayesian negbin, log rate ratio, 94% HDI"] = bayesian_path(fits["negbin"])
    what = spec.label or spec.outcome
    title = (f"Table {spec.table} column {spec.column}: {what}\nTreat x year, {reference} = 0"
             f"{settings.figure_suffix}")
    figure = plot_event_paths(paths, reference, _figure_path(spec, settings), title,
                              f"ln(1 + {spec.outcome}); log rate ratio")
    return Estimate(tidy, fits=fits, figures=[figure])

"""Linear panel regression with absorbed fixed effects, and its hierarchical Bayesian twin."""

from __future__ import annotations

import pandas as pd

from inference.estimators.base import Estimate, Settings, convergence_note
from inference.registry import Spec
from models.panel.fe import fit_twfe

KIND = "twfe"


def frequentist(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """y = x'b + fixed effects (``spec.effects``, pyfixest syntax) + e, errors ``spec.vcov``."""
    fit = fit_twfe(sample, spec.outcome, list(spec.regressors), list(spec.effects),
                   vcov=spec.vcov)
    return Estimate(_renamed(fit.tidy(), spec))


def bayesian(sample: pd.DataFrame, spec: Spec, settings: Settings) -> Estimate:
    """Hierarchical counterpart (:func:`models.panel.bayes.fit_bayes_twfe`): unit effects by
    correlated random effects; the second absorbed effect (year, or an interaction such as
    ``province^year``) as sum-to-zero effects of its cells.
    """
    from models.panel.bayes import fit_bayes_twfe

    unit, second = _effects(spec, settings)
    frame = sample
    if second is not None and "^" in second:
        parts = second.split("^")
        frame = sample.assign(**{second: sample[parts].astype(str).agg("|".join, axis=1)})
    fit = fit_bayes_twfe(
        frame, spec.outcome, list(spec.regressors), unit=unit, time=second,
        priors=settings.priors_for("panel"), likelihood=spec.options.get("likelihood", "normal"),
        seed=settings.seed, **settings.sampling,
    )
    tidy = fit.tidy(auxiliary=False)
    problems = fit.convergence_problems()
    tidy["note"] = [convergence_note(term, problems) for term in tidy["term"]]
    tidy = _renamed(tidy.drop(columns=["divergences"], errors="ignore"), spec)
    return Estimate(tidy, fits={"": fit})


def _renamed(tidy: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Terms as the paper prints them (the spec's ``rename`` option: column -> printed name)."""
    tidy["term"] = tidy["term"].replace(spec.options.get("rename", {}))
    return tidy


def _effects(spec: Spec, settings: Settings) -> tuple[str, str | None]:
    """The unit effect and the (optional) second effect of a spec with one or two effects."""
    effects = list(spec.effects)
    if not effects or effects[0] != settings.unit or len(effects) > 2:
        raise ValueError(
            f"{spec.key}: the Bayesian model needs effects [{settings.unit!r}] or "
            f"[{settings.unit!r}, <second>], not {effects}")
    return settings.unit, (effects[1] if len(effects) == 2 else None)

"""Priors of the slopes and sigma of the Bayesian threshold model.

Defaults come from :mod:`models.bayes.panel_priors` scaled to the data: slope ~ normal(0, 2.5
sd(y) / sd(transformed regressor)) for every term, sigma as the project's default. The log
densities are available as PyTensor expressions (inside the PyMC model) and as numpy functions
(the ``log_prior`` group written after sampling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from models.bayes.panel_priors import DataScales, PanelPriors
from models.threshold.data import ThresholdData


def resolve_slope_priors(priors, stats: ThresholdData, k: int) -> PanelPriors:
    """Merge user priors with the data-scaled defaults of :mod:`models.bayes.panel_priors`.

    Roles used: ``slope`` (per term, e.g. ``slope.CF_regime1``) and ``sigma``. The default
    slope prior is normal(0, 2.5 sd(y) / sd(transformed regressor)); the regime slopes use the
    sd of the transformed, unsplit regime regressor.
    """
    terms = stats.term_names(k)
    priors = PanelPriors.coerce(priors)
    column_sd = stats.base.std(axis=0, ddof=1)
    fixed_sd = column_sd[:stats.n_fixed]
    regime_sd = column_sd[stats.n_fixed:]
    within_sd = list(fixed_sd) + [regime_sd[j % stats.n_regime]
                                  for j in range((k + 1) * stats.n_regime)]
    # Per-term slope priors may name terms of a model with more regimes than this one.
    known = set(terms)
    kept = tuple((t, p) for t, p in priors.slope_terms if t in known)
    priors = PanelPriors(**{**{role: getattr(priors, role) for role in (
        "intercept", "slope", "between", "sigma", "unit_sd", "year_sd", "nu", "alpha")},
        "slope_terms": kept, "between_terms": (), "sources": priors.sources})
    scales = DataScales(regressors=tuple(terms), y_mean=0.0, y_sd=stats.y_raw_sd,
                        within_sd=tuple(float(v) for v in within_sd),
                        between_sd=tuple(1.0 for _ in terms))
    return priors.resolve(scales)



def slope_prior_tensor(priors: PanelPriors, terms: Sequence[str], slope):
    """sum_j log p_j(slope_j), the slope priors as one PyTensor expression.

    Terms sharing a prior family get one vectorised log density (fewer graph nodes).
    """
    import pytensor.tensor as pt

    by_family: dict[str, list[int]] = {}
    term_priors = [priors.term_prior("slope", term) for term in terms]
    for j, prior in enumerate(term_priors):
        by_family.setdefault(prior.family, []).append(j)
    total = 0.0
    for family, members in by_family.items():
        names = [name for name, _ in term_priors[members[0]].params]
        params = {name: np.array([term_priors[j].kwargs[name] for j in members])
                  for name in names}
        logp = _prior_logp_vector(family, params, slope[np.array(members)])
        total = total + pt.sum(logp)
    return total


def _prior_logp_vector(family: str, params: dict[str, np.ndarray], value):
    """Elementwise log density of one PyMC family with array parameters at ``value``."""
    import pymc as pm

    from models.bayes.priors import FAMILIES

    dist = getattr(pm, FAMILIES[family].pymc_name).dist(**params)
    return pm.logp(dist, value)


def prior_logp_numpy(prior, values: np.ndarray) -> np.ndarray:
    """log p(values) under ``prior`` (a resolved :mod:`models.bayes.priors` prior), elementwise.

    numpy / scipy.stats twin of the PyMC densities, for the ``log_prior`` group.

    Raises
    ------
    ValueError
        A prior family without a numpy density here.
    """
    from scipy import stats as st

    p = prior.kwargs
    x = np.asarray(values, dtype=float)
    family = prior.family
    if family == "normal":
        return st.norm.logpdf(x, p["mu"], p["sigma"])
    if family == "studentt":
        return st.t.logpdf(x, p["nu"], p["mu"], p["sigma"])
    if family == "cauchy":
        return st.cauchy.logpdf(x, p["alpha"], p["beta"])
    if family == "uniform":
        return st.uniform.logpdf(x, p["lower"], p["upper"] - p["lower"])
    if family in ("flat", "halfflat"):
        return np.where((x >= 0) | (family == "flat"), 0.0, -np.inf)
    if family == "halfnormal":
        return st.halfnorm.logpdf(x, scale=p["sigma"])
    if family == "halfstudentt":
        return np.where(x >= 0, math.log(2.0) + st.t.logpdf(x, p["nu"], 0.0, p["sigma"]),
                        -np.inf)
    if family == "halfcauchy":
        return st.halfcauchy.logpdf(x, scale=p["beta"])
    if family == "exponential":
        return st.expon.logpdf(x, scale=1.0 / p["lam"])
    if family == "gamma":
        return st.gamma.logpdf(x, p["alpha"], scale=1.0 / p["beta"])
    if family == "inversegamma":
        return st.invgamma.logpdf(x, p["alpha"], scale=p["beta"])
    if family == "lognormal":
        return st.lognorm.logpdf(x, p["sigma"], scale=math.exp(p["mu"]))
    raise ValueError(f"no numpy log density for prior family {family!r}")

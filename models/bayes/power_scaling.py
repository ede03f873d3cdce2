"""The power-scaling sequence (Kallioinen et al. 2024) and priors raised to a power.

Scaling a component of the posterior, p(theta | y) ∝ p(theta)^a p(y | theta) (prior) or
p(theta) p(y | theta)^a (likelihood), by importance weighting the existing draws: log weights
(a - 1) log p(theta) or (a - 1) log p(y | theta), Pareto-smoothed (ArviZ's PSIS, compiled in
:mod:`models.bayes.psis`), give the posterior mean and sd at each a in [0.8, 1.25] without
refitting (as R's priorsense ``powerscale_sequence`` / ``powerscale_plot_quantities``). Where
the Pareto k of the weights exceeds the sample-size dependent threshold
min(1 - 1 / log10(S), 0.7) the weighted values cannot be trusted; there the prior can be
raised to the power a in closed form (:func:`power_scaled_prior`) and the model refitted.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.bayes.priors import Prior, PriorSpecError

# priorsense's default range: lower 0.8, upper 1 / 0.8, log-spaced.
DEFAULT_ALPHAS = tuple(float(a) for a in np.exp(np.linspace(np.log(0.8), np.log(1.25), 9)))
COMPONENTS = ("prior", "likelihood")


def pareto_k_threshold(n_draws: int) -> float:
    """The largest Pareto k at which PSIS estimates are reliable for ``n_draws`` draws:
    min(1 - 1 / log10(S), 0.7) (Vehtari et al. 2024)."""
    if n_draws < 11:
        return 0.0
    return float(min(1.0 - 1.0 / math.log10(n_draws), 0.7))


def component_log_density(idata, component: str) -> np.ndarray:
    """Per-draw total log density of ``component`` (``prior``: the ``log_prior`` group summed
    over its variables; ``likelihood``: ``log_likelihood`` summed over observations), shape
    (chain * draw,)."""
    if component not in COMPONENTS:
        raise ValueError(f"component must be one of {COMPONENTS}; got {component!r}")
    group = "log_prior" if component == "prior" else "log_likelihood"
    if group not in idata.groups():
        raise ValueError(f"power-scaling the {component} needs the {group} group")
    data = idata[group]
    total = None
    for variable in data.data_vars.values():
        extra = [d for d in variable.dims if d not in ("chain", "draw")]
        values = np.asarray(variable.transpose("chain", "draw", *extra).values, dtype=float)
        # numpy's plain sum: xarray's default skips NaN (8x slower on a (4, 1000, 3252)
        # log likelihood) and would hide a failed term that NaN here makes visible.
        values = values.reshape(values.shape[0] * values.shape[1], -1).sum(axis=1)
        total = values if total is None else total + values
    if total is None:
        raise ValueError(f"the {group} group holds no variables")
    return total


def weighted_moments(values: np.ndarray, log_weights: np.ndarray) -> tuple[float, float]:
    """Mean and sd of ``values`` under normalised log weights."""
    weights = np.exp(log_weights - np.max(log_weights))
    weights = weights / weights.sum()
    mean = float(np.sum(weights * values))
    return mean, float(np.sqrt(max(np.sum(weights * (values - mean) ** 2), 0.0)))


def power_scaled_weights(log_density: np.ndarray, alpha: float,
                         reff: float = 1.0) -> tuple[np.ndarray, float]:
    """PSIS-smoothed normalised log weights (alpha - 1) * log_density, and their Pareto k."""
    from models.bayes.psis import psislw

    raw = (float(alpha) - 1.0) * np.asarray(log_density, dtype=float)
    if alpha == 1.0 or np.ptp(raw) == 0.0:
        return np.full(raw.shape, -np.log(raw.size)), 0.0
    smoothed, k = psislw((raw - raw.max())[None, :], reff=reff)
    return smoothed[0], float(k[0])


def power_scaling_sequence(idata, quantities: dict[str, np.ndarray],
                           alphas=DEFAULT_ALPHAS) -> pd.DataFrame:
    """The posterior mean and sd of each quantity as the prior and the likelihood are scaled by
    each alpha, by Pareto-smoothed importance weighting.

    ``quantities`` maps a name to its draws (chains stacked in the order of ``idata``). Rows:
    ``component, alpha, quantity, mean, sd, pareto_k, k_threshold, reliable`` (k at most the
    threshold of :func:`pareto_k_threshold`; alpha = 1 is the posterior itself).
    """
    rows = []
    for component in COMPONENTS:
        log_density = component_log_density(idata, component)
        threshold = pareto_k_threshold(log_density.size)
        for alpha in alphas:
            log_weights, k = power_scaled_weights(log_density, alpha)
            for name, draws in quantities.items():
                draws = np.asarray(draws, dtype=float).reshape(-1)
                if draws.size != log_density.size:
                    raise ValueError(f"quantity {name!r} has {draws.size} draws; the "
                                     f"{component} has {log_density.size}")
                mean, sd = weighted_moments(draws, log_weights)
                rows.append({"component": component, "alpha": float(alpha), "quantity": name,
                             "mean": mean, "sd": sd, "pareto_k": k, "k_threshold": threshold,
                             "reliable": bool(k <= threshold)})
    return pd.DataFrame(rows)


def diagnosis_words(prior_sensitivity: float, likelihood_sensitivity: float,
                    prior_k: float, likelihood_k: float, threshold: float,
                    threshold_value: float = 0.05) -> str:
    """The power-scaling verdict of one quantity in words (sensitivity >= ``threshold_value``
    counts, as in Kallioinen et al.), with a warning for each component whose largest Pareto k
    over the alphas (``prior_k``, ``likelihood_k``) exceeds ``threshold``: there the
    importance-weighted sequence cannot be trusted."""
    if not (np.isfinite(prior_sensitivity) and np.isfinite(likelihood_sensitivity)):
        text = "not computed"
    elif prior_sensitivity >= threshold_value and likelihood_sensitivity >= threshold_value:
        text = ("prior-data conflict: the posterior moves both when the prior and when the "
                "likelihood is scaled")
    elif prior_sensitivity >= threshold_value:
        text = ("strong prior, weak likelihood: the prior dominates and the data say little "
                "about this quantity")
    elif likelihood_sensitivity >= threshold_value:
        text = "data-driven: the likelihood, not the prior, determines it"
    else:
        text = "insensitive to either (data-driven)"
    if np.isfinite(prior_k) and prior_k > threshold:
        text += (f"; prior-scaling weights unreliable at the far alphas (Pareto k {prior_k:.2f}"
                 f" > {threshold:.2f}): read the refit at the scaled prior instead")
    if np.isfinite(likelihood_k) and likelihood_k > threshold:
        text += (f"; likelihood-scaling weights unreliable at the far alphas (Pareto k "
                 f"{likelihood_k:.2f} > {threshold:.2f}): those points of the sequence are not "
                 "to be read")
    return text


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not (np.isfinite(alpha) and alpha > 0):
        raise PriorSpecError(f"power-scaling alpha must be a positive number; got {alpha}")
    return alpha


def power_scaled_prior(prior: Prior, alpha: float) -> Prior:
    """The prior whose density is proportional to ``prior``'s density raised to ``alpha``.

    Closed forms: normal(mu, s) and halfnormal(s) -> scale s / sqrt(alpha); lognormal(mu, s)
    -> lognormal(mu + (1 - alpha) s^2 / alpha, s / sqrt(alpha)); studentt(nu, mu, s) ->
    studentt(nu', mu, s sqrt(nu / nu')) with nu' = alpha (nu + 1) - 1 (cauchy: nu = 1; the
    half versions alike); exponential(lam) -> exponential(alpha lam); gamma(a, b) ->
    gamma(alpha (a - 1) + 1, alpha b); inversegamma(a, b) -> inversegamma(alpha (a + 1) - 1,
    alpha b); uniform, flat and halfflat are unchanged.

    Raises
    ------
    PriorSpecError
        When the power leaves the family's parameter space (e.g. a t with nu' <= 0).
    """
    alpha = _check_alpha(alpha)
    p = prior.kwargs
    family = prior.family
    root = math.sqrt(alpha)
    if family == "normal":
        return Prior.of("normal", p["mu"], p["sigma"] / root)
    if family == "halfnormal":
        return Prior.of("halfnormal", p["sigma"] / root)
    if family == "lognormal":
        return Prior.of("lognormal", p["mu"] + (1 - alpha) * p["sigma"] ** 2 / alpha,
                        p["sigma"] / root)
    if family in ("studentt", "halfstudentt", "cauchy", "halfcauchy"):
        nu = p.get("nu", 1.0)
        scale = p.get("sigma", p.get("beta"))
        new_nu = alpha * (nu + 1.0) - 1.0
        if new_nu <= 0:
            raise PriorSpecError(f"{prior} raised to the power {alpha:g} has no proper "
                                 f"Student-t form (nu' = {new_nu:g} <= 0)")
        new_scale = scale * math.sqrt(nu / new_nu)
        if family in ("studentt", "cauchy"):
            return Prior.of("studentt", new_nu, p.get("mu", p.get("alpha", 0.0)), new_scale)
        return Prior.of("halfstudentt", new_nu, new_scale)
    if family == "exponential":
        return Prior.of("exponential", alpha * p["lam"])
    if family == "gamma":
        return Prior.of("gamma", alpha * (p["alpha"] - 1.0) + 1.0, alpha * p["beta"])
    if family == "inversegamma":
        return Prior.of("inversegamma", alpha * (p["alpha"] + 1.0) - 1.0, alpha * p["beta"])
    if family in ("uniform", "flat", "halfflat"):
        return prior
    raise PriorSpecError(f"no closed form for the prior {prior} raised to a power")


def power_scaled_lkj(eta: float, alpha: float) -> float:
    """The eta of a 2 x 2 LKJ(eta) prior raised to ``alpha``: the density (1 - rho^2)^(eta - 1)
    becomes (1 - rho^2)^(alpha (eta - 1)), an LKJ(alpha (eta - 1) + 1)."""
    alpha = _check_alpha(alpha)
    new = alpha * (float(eta) - 1.0) + 1.0
    if new <= 0:
        raise PriorSpecError(f"lkj({eta:g}) raised to the power {alpha:g} is not an LKJ prior")
    return new

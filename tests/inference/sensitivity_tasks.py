"""A stand-in for the sensitivity fit that workers import by name: a normal model of one slope
whose posterior is known in closed form from the slope's prior sd, so that the orchestration
(refits at the scaled prior, resume) is checked against exact numbers without sampling."""

from __future__ import annotations

import math

from models.bayes.priors import parse_prior

DEFAULT = {"slope.AI": "normal(0, 2)", "unit_sd": "halfnormal(1.5)"}
ESTIMATE, SE = 0.3, 0.1


def posterior(prior_sd: float) -> tuple[float, float]:
    """Posterior mean and sd of the slope: a N(ESTIMATE, SE) likelihood, a N(0, prior_sd)
    prior."""
    precision = 1 / SE**2 + 1 / prior_sd**2
    return ESTIMATE / SE**2 / precision, 1 / math.sqrt(precision)


def fake_refit(spec_ref: str, priors: dict | None = None, power_scaling: bool = False,
               **_ignored) -> dict:
    """The summary :func:`inference.sensitivity.tasks.refit` returns, for the model above."""
    if "unit_sd" in (priors or {}) and "slope.AI" not in priors:
        raise ValueError("simulated failure of a unit_sd refit")
    used = {**DEFAULT, **(priors or {})}
    mean, sd = posterior(parse_prior(used["slope.AI"]).kwargs["sigma"])
    result = {"spec": spec_ref, "kind": "twfe", "problems": [], "priors": used,
              "claims": {"ai_raises_innovation": 0.99},
              "rows": [{"term": "AI", "estimate": mean, "std_error": sd, "ci_low": mean - sd,
                        "ci_high": mean + sd, "prob_positive": 0.99, "r_hat": 1.0,
                        "ess_bulk": 1000.0}]}
    if power_scaling:
        sequence = [{"component": c, "alpha": a, "quantity": "AI", "mean": mean, "sd": sd,
                     "pareto_k": 0.9 if (c, a) == ("prior", 0.8) else 0.1, "k_threshold": 0.7,
                     "reliable": (c, a) != ("prior", 0.8)}
                    for c in ("prior", "likelihood") for a in (0.8, 1.0, 1.25)]
        result["power_scaling"] = {"sequence": sequence, "diagnosis": [{
            "quantity": "AI", "prior_sensitivity": 0.01, "likelihood_sensitivity": 0.2,
            "max_pareto_k_prior": 0.9, "max_pareto_k_likelihood": 0.1, "k_threshold": 0.7,
            "diagnosis": ""}]}
    return result

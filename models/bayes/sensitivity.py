"""Power-scaling prior and likelihood sensitivity (Kallioinen et al. 2023, *Detecting and
diagnosing prior and likelihood sensitivity with power-scaling*, Statistics and Computing 34).

The posterior p(theta | y) ∝ p(theta)^a p(y | theta)^b is perturbed around a = b = 1 by importance
weighting the existing draws (no refit); the diagnostic is the derivative of the cumulative
Jensen-Shannon distance between the perturbed and the original marginal posterior of each
parameter (``arviz.psens``). Following the paper, a value of at least 0.05 counts as sensitive:

* prior sensitive and likelihood sensitive: prior-data conflict;
* prior sensitive only: the prior dominates a weak likelihood (the data say little);
* neither, or likelihood only: the data drive the posterior, as they should.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SENSITIVITY_THRESHOLD = 0.05
# Per-unit latent variables are not what a reader's conclusions rest on.
MAX_ELEMENTS = 64


def _diagnosis(prior: float, likelihood: float) -> str:
    if not (np.isfinite(prior) and np.isfinite(likelihood)):
        return "not computed"
    prior_sensitive = prior >= SENSITIVITY_THRESHOLD
    likelihood_sensitive = likelihood >= SENSITIVITY_THRESHOLD
    if prior_sensitive and likelihood_sensitive:
        return "prior-data conflict"
    if prior_sensitive:
        return "prior dominates a weak likelihood"
    return "data-driven"


def power_scaling_table(idata, var_names: list[str] | None = None) -> pd.DataFrame:
    """Prior and likelihood sensitivity of each posterior quantity, with a diagnosis in words.

    Needs the ``log_prior`` and ``log_likelihood`` groups. ``var_names`` defaults to every
    posterior variable with at most :data:`MAX_ELEMENTS` elements per draw. Rows: ``parameter``
    (``slope[AI]`` style), ``prior_sensitivity``, ``likelihood_sensitivity``, ``diagnosis``.
    """
    import arviz as az

    missing = [g for g in ("log_prior", "log_likelihood") if g not in idata.groups()]
    if missing:
        raise ValueError(f"power-scaling needs the {missing} group(s) of the InferenceData")
    post = idata.posterior
    if var_names is None:
        # Names with "__" are the sampler's unconstrained copies of other variables.
        var_names = [name for name, v in post.data_vars.items() if "__" not in name
                     and int(np.prod([v.sizes[d] for d in v.dims if d not in ("chain", "draw")]))
                     <= MAX_ELEMENTS]
    prior = az.psens(idata, component="prior", var_names=var_names)
    likelihood = az.psens(idata, component="likelihood", var_names=var_names)
    rows = []
    for name in var_names:
        p_values, l_values = prior[name], likelihood[name]
        extra_dims = list(p_values.dims)
        flat_p = np.atleast_1d(p_values.values).ravel()
        flat_l = np.atleast_1d(l_values.values).ravel()
        if extra_dims:
            labels = [",".join(str(c) for c in combo) for combo in
                      np.array(np.meshgrid(*[p_values[d].values for d in extra_dims],
                                           indexing="ij")).reshape(len(extra_dims), -1).T]
            names = [f"{name}[{label}]" for label in labels]
        else:
            names = [name]
        for parameter, ps, ls in zip(names, flat_p, flat_l, strict=True):
            rows.append({"parameter": parameter, "prior_sensitivity": float(ps),
                         "likelihood_sensitivity": float(ls),
                         "diagnosis": _diagnosis(float(ps), float(ls))})
    return pd.DataFrame(rows)

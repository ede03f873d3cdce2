"""Power-scaling prior and likelihood sensitivity (Kallioinen et al. 2023, *Detecting and
diagnosing prior and likelihood sensitivity with power-scaling*, Statistics and Computing 34).

The posterior p(theta | y) ∝ p(theta)^a p(y | theta)^b is perturbed around a = b = 1 by importance
weighting the existing draws (no refit); the diagnostic is the derivative of the cumulative
Jensen-Shannon distance between the perturbed and the original marginal posterior of each
parameter (:func:`psens`, ``arviz.psens``'s computation on arrays: ArviZ's stacks every
pointwise log likelihood through xarray, 9 s of a zhao2025 run). Following the paper, a value
of at least 0.05 counts as sensitive:

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


def _cjs_distance(sorted_draws, sorted_weights):
    """Cumulative Jensen-Shannon distance between the draws' ECDF and their weighted ECDF,
    per row of (parameters x draws) arrays sorted by draw (ArviZ's ``_cjs_dist``)."""
    n = sorted_draws.shape[1]
    binwidth = np.diff(sorted_draws, axis=1)
    cdf_p = np.linspace(1 / n, 1 - 1 / n, n - 1)[None, :]
    cdf_q = np.cumsum(sorted_weights / sorted_weights.sum(axis=1, keepdims=True),
                      axis=1)[:, :-1]
    cdf_p_int = (cdf_p * binwidth).sum(axis=1)
    cdf_q_int = (cdf_q * binwidth).sum(axis=1)

    def log2(values):
        return np.log2(values, out=np.zeros_like(values), where=values != 0)

    denom = log2(0.5 * (cdf_p + cdf_q))
    cjs_pq = ((binwidth * (cdf_p * (log2(np.broadcast_to(cdf_p, cdf_q.shape)) - denom))).sum(1)
              + 0.5 / np.log(2) * (cdf_q_int - cdf_p_int))
    cjs_qp = ((binwidth * (cdf_q * (log2(cdf_q) - denom))).sum(1)
              + 0.5 / np.log(2) * (cdf_p_int - cdf_q_int))
    return np.sqrt((np.maximum(cjs_pq, 0) + np.maximum(cjs_qp, 0)) / (cdf_p_int + cdf_q_int))


def psens(idata, component: str, var_names: list[str], delta: float = 0.01) -> dict:
    """Power-scaling sensitivity of each posterior variable in ``var_names`` to the
    ``component`` (``prior`` or ``likelihood``), as ``arviz.psens``: the finite-difference
    derivative of the CJS distance at power 1/(1+delta) and 1+delta, the larger of the
    distances of the draws and of their negatives. Returns name -> DataArray over the
    variable's non-sample dimensions."""
    from models.bayes.power_scaling import component_log_density, power_scaled_weights

    log_density = component_log_density(idata, component)
    weights = []
    for alpha in (1 / (1 + delta), 1 + delta):
        w = np.exp(power_scaled_weights(log_density, alpha)[0])
        weights.append(w / w.sum())
    result = {}
    post = idata.posterior
    for name in var_names:
        variable = post[name]
        extra = [d for d in variable.dims if d not in ("chain", "draw")]
        draws = np.asarray(variable.transpose("chain", "draw", *extra).values, dtype=float)
        draws = draws.reshape(draws.shape[0] * draws.shape[1], -1).T
        order = np.argsort(draws, axis=1)
        sorted_draws = np.take_along_axis(draws, order, axis=1)
        total = 0.0
        for w in weights:
            sorted_w = w[order]
            # The negated draws sort in reverse.
            total = total + np.maximum(_cjs_distance(sorted_draws, sorted_w),
                                       _cjs_distance(-sorted_draws[:, ::-1], sorted_w[:, ::-1]))
        template = variable.isel(chain=0, draw=0, drop=True)
        result[name] = template.copy(data=(total / (2 * np.log2(1 + delta))).reshape(
            template.shape))
    return result


def power_scaling_table(idata, var_names: list[str] | None = None) -> pd.DataFrame:
    """Prior and likelihood sensitivity of each posterior quantity, with a diagnosis in words.

    Needs the ``log_prior`` and ``log_likelihood`` groups. ``var_names`` defaults to every
    posterior variable with at most :data:`MAX_ELEMENTS` elements per draw. Rows: ``parameter``
    (``slope[AI]`` style), ``prior_sensitivity``, ``likelihood_sensitivity``, ``diagnosis``.
    """
    missing = [g for g in ("log_prior", "log_likelihood") if g not in idata.groups()]
    if missing:
        raise ValueError(f"power-scaling needs the {missing} group(s) of the InferenceData")
    post = idata.posterior
    if var_names is None:
        # Names with "__" are the sampler's unconstrained copies of other variables.
        var_names = [name for name, v in post.data_vars.items() if "__" not in name
                     and int(np.prod([v.sizes[d] for d in v.dims if d not in ("chain", "draw")]))
                     <= MAX_ELEMENTS]
    prior = psens(idata, "prior", var_names)
    likelihood = psens(idata, "likelihood", var_names)
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

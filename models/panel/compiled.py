"""Compile once, sample many: the collapsed or marginalised Bayesian TWFE for every design of
one shape.

Compiling the model of :func:`models.panel.model.build_twfe_model` takes 10-30 s in a fresh
process with empty caches, sampling it well under a second. A study fits the same model (same
number of regressors, same periods, same prior families) on many samples, so the model is built
once with every data-dependent number in ``pm.Data`` containers
(:func:`models.panel.model.marginal_model_data`), compiled once through
:func:`models.bayes.nutpie_compile.compile_model` (its numba code cached on disk, so the next
process loads it instead of compiling), and re-used with ``with_data`` for each new design. The
log prior is likewise one compiled function per shape, evaluated on all draws at once.

The cache key is the model's structure: which terms are integrated out (``collapsed`` or
``marginalised``), the number of regressors, whether there are period effects and how many, and
the prior family of every role and term. The number of units and of observations may differ
between designs.

In the collapsed model the intercept, Mundlak terms and year effects are not sampled: each
draw gets one exact draw of them (:func:`models.panel.collapsed.add_linear_terms`), counted in
the sampling time, and their normal log prior densities join ``log_prior``.
"""

from __future__ import annotations

import json
import time as _time
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.bayes.panel_priors import PanelPriors
from models.bayes.sampler import run_nutpie

# The configurable priors recorded in ``log_prior`` (what power-scaling perturbs).
PRIOR_VARIABLES = ("intercept", "slope", "between", "sigma", "unit_sd", "year_sd")


@dataclass
class _CompiledModel:
    model: Any
    sampler_model: Any
    log_prior_fn: Any
    prior_variables: tuple[str, ...]


_CACHE: dict[str, _CompiledModel] = {}


def reusable(design, priors: PanelPriors) -> bool:
    """Whether the data-container model can express these priors: each per-regressor role
    must use one family for all regressors (its parameters then form one vector)."""
    return all(len({priors.term_prior(role, t).family for t in design.regressors}) == 1
               for role in ("slope", "between"))


def structure_key(design, priors: PanelPriors, mode: str) -> str:
    """What a compiled model depends on besides the values in its data containers."""
    families = {role: getattr(priors, role).family for role in
                ("intercept", "sigma", "unit_sd", "year_sd")}
    for role in ("slope", "between"):
        families[role] = [priors.term_prior(role, t).family for t in design.regressors]
    n_years = len(design.time_labels) if design.time_idx is not None else None
    return json.dumps({"mode": mode, "k": len(design.regressors), "n_years": n_years,
                       "families": families}, sort_keys=True)


def _compile(design, priors: PanelPriors, mode: str) -> _CompiledModel:
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    from models.bayes.nutpie_compile import compile_model
    from models.panel.model import build_twfe_model

    model = build_twfe_model(design, priors, "normal", "mundlak", mode, data_containers=True)
    sampler_model = compile_model(model)
    names = tuple(v.name for v in model.free_RVs if v.name in PRIOR_VARIABLES)
    # One placeholder per variable with a leading draws axis; the logp broadcasts over it.
    placeholders = [pt.tensor(f"{n}_draws", shape=(None,) * (model[n].ndim + 1))
                    for n in names]
    densities = [pm.logp(model[n], value) for n, value in zip(names, placeholders, strict=True)]
    # Evaluated once per fit on all draws at once: compile cheaply, numpy does the work.
    log_prior_fn = pytensor.function(placeholders, densities, mode="FAST_COMPILE",
                                     on_unused_input="ignore")
    return _CompiledModel(model, sampler_model, log_prior_fn, names)


def sample_compiled(
    design,
    priors: PanelPriors,
    mode: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    progressbar: bool = False,
    target_accept: float | None = None,
) -> tuple[Any, dict[str, float]]:
    """Sample the ``collapsed`` or ``marginalised`` normal TWFE posterior of ``design``;
    reuse a compiled model.

    Returns the InferenceData (posterior and sample_stats, coordinates labelled for this
    design, ``log_prior`` added) and the wall times.
    """
    from models.panel.collapsed import add_linear_terms, linear_terms_log_prior
    from models.panel.model import collapsed_stats, marginal_model_data

    key = structure_key(design, priors, mode)
    times: dict[str, float] = {"compile_s": 0.0}
    entry = _CACHE.get(key)
    if entry is None:
        start = _time.perf_counter()
        entry = _CACHE[key] = _compile(design, priors, mode)
        times["compile_s"] = _time.perf_counter() - start
    values = marginal_model_data(design, priors, mode)
    # nutpie draws the initial points from the PyMC model's own data containers, not from
    # ``with_data``'s copy: left at the previous fit's values, they made a fit's draws depend
    # on which fits this process ran before.
    for name, value in values.items():
        entry.model[name].set_value(value)
    compiled = entry.sampler_model.with_data(**values)
    idata, times["sampling_s"] = run_nutpie(compiled, draws, tune, chains, seed, progressbar,
                                            target_accept)
    coords = {"coef": list(design.regressors)}
    if design.time_idx is not None:
        coords["year"] = list(design.time_labels)
    idata.posterior = idata.posterior.assign_coords(
        {k: v for k, v in coords.items() if k in idata.posterior.dims})
    extra_log_prior = {}
    if mode == "collapsed":
        stats = collapsed_stats(design, priors)
        start = _time.perf_counter()
        add_linear_terms(idata, design, stats, seed)
        times["sampling_s"] += _time.perf_counter() - start
        extra_log_prior = linear_terms_log_prior(
            idata.posterior, priors.intercept,
            [priors.term_prior("between", t) for t in design.regressors])
    _add_log_prior(idata, entry, values, extra_log_prior)
    return idata, times


def _add_log_prior(idata, entry: _CompiledModel, values: dict[str, np.ndarray],
                   extra: dict[str, tuple]) -> None:
    import xarray as xr

    for name, value in values.items():
        entry.model[name].set_value(value)
    post = idata.posterior
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    inputs = [post[n].values.reshape((n_chain * n_draw,) + post[n].shape[2:])
              for n in entry.prior_variables]
    densities = entry.log_prior_fn(*inputs)
    data = {}
    for name, density in zip(entry.prior_variables, densities, strict=True):
        shape = (n_chain, n_draw) + post[name].shape[2:]
        data[name] = (post[name].dims, np.asarray(density).reshape(shape))
    data.update(extra)
    log_prior = xr.Dataset(data, coords={k: post[k] for k in post.coords
                                         if k in {d for n in data for d in data[n][0]}})
    if "log_prior" in idata.groups():
        del idata.log_prior
    idata.add_groups({"log_prior": log_prior})

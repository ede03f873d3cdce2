"""Bayesian panel mediation: mediator and outcome equations fitted jointly.

The model (:mod:`models.mediation.model`)::

    m~_k = a_k x~ + w~' delta_k + e_k,          k = 1..K (one or two parallel mediators)
    y~   = c x~ + sum_k b_k m~_k + w~' gamma + u,
    e ~ N(0, Sigma_M) (residual covariance of the mediators),  u ~ N(0, s_y^2),  Cov(e, u) = 0,

``~`` the two-way demeaned variables: every equation's unit and year effects are integrated out
exactly under flat priors, so the paths use within variation only and stay unbiased when x
correlates with the unit effects. Posterior quantities per mediator m: ``a_<m>``, ``b_<m>``,
``indirect_<m>`` (a b per draw), ``share_mediated_<m>`` (a b / total), and ``direct``,
``total``; the sensitivity of each indirect effect to mediator-outcome confounding rho
(:mod:`models.mediation.sensitivity`), and rho as a parameter with a prior on request
(``confounding_rho``, :mod:`models.mediation.priors`).
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from models.bayes.fit import PosteriorFit
from models.bayes.log_prior import compute_log_prior
from models.bayes.sampler import _blas_controller, run_nutpie, sample_model
from models.bayes.storage import matrix_dataset, stored_matrix
from models.bayes.summary import summary_row
from models.mediation.design import MediationDesign, prepare_mediation
from models.mediation.model import (
    build_mediation_model,
    check_mediator_count,
    model_data,
    pointwise_log_likelihood,
    structure_key,
)
from models.mediation.predictive import add_mediation_predictive
from models.mediation.priors import MediationPriors, resolve_priors
from models.mediation.sensitivity import SensitivityCurve, sensitivity_curve


@dataclass(frozen=True, eq=False)
class BayesMediationFit(PosteriorFit):
    """A fitted Bayesian mediation model; the interface and provenance of
    :class:`models.bayes.fit.PosteriorFit`. ``tidy`` terms: ``a_<m>``, ``b_<m>``,
    ``indirect_<m>``, ``share_mediated_<m>``, ``direct``, ``total`` (and ``rho_<m>`` when rho is
    a parameter); ``auxiliary`` adds the controls' slopes, residual sds and correlation."""

    model_name: ClassVar[str] = "bayes_mediation"

    def recomputed_on_load(self) -> dict[str, tuple[str, ...]]:
        """The pointwise log-likelihood, recomputed from the stored demeaned system."""
        return {"log_likelihood": ()} if "constant_data" in self.idata.groups() else {}

    @classmethod
    def restore(cls, idata) -> None:
        spec = json.loads(idata.posterior.attrs["spec"])
        _add_log_likelihood(idata, _StoredSystem(
            stored_matrix(idata.constant_data, "system"), spec["outcome"],
            tuple(spec["mediators"]), tuple(spec["controls"])))

    @property
    def mediators(self) -> list[str]:
        return list(self.spec["mediators"])

    def draws(self, name: str, mediator: str | None = None) -> np.ndarray:
        """(chain, draw) posterior draws of one quantity (of one mediator)."""
        values = self.idata.posterior[name]
        return (values.sel(mediator=mediator) if mediator is not None else values).values

    def _build_tidy(self, auxiliary: bool) -> pd.DataFrame:
        n_obs, div = self.spec["n_obs"], self.divergences
        post = self.idata.posterior
        entries: list[tuple[str, np.ndarray]] = []
        for m in self.mediators:
            for name in ("a", "b", "indirect", "share_mediated"):
                entries.append((f"{name}_{m}", self.draws(name, m)))
            if "rho" in post:
                entries.append((f"rho_{m}", self.draws("rho", m)))
        entries += [("direct", post["direct"].values), ("total", post["total"].values)]
        if auxiliary:
            for c in self.spec["controls"]:
                for m in self.mediators:
                    entries.append((f"{c}[{m}]", post["control_mediator"].sel(
                        mediator_control=f"{m}:{c}").values))
                entries.append((f"{c}[{self.spec['outcome']}]",
                                post["control_outcome"].sel(control=c).values))
            entries.append(("sigma_outcome", post["sigma_outcome"].values))
            for m in self.mediators:
                entries.append((f"sigma_mediator_{m}", self.draws("sigma_mediator", m)))
            if "mediator_corr" in post:
                entries.append(("mediator_corr", post["mediator_corr"].values))
        return pd.DataFrame([summary_row(term, values, n_obs, div) for term, values in entries])

    def sensitivity(self, mediator: str) -> SensitivityCurve:
        """The Imai-Keele-Yamamoto curve of ``mediator`` (:mod:`models.mediation.sensitivity`)
        from the identified parameters' draws."""
        key = f"sensitivity:{mediator}"
        if key not in self._cache:
            post = self.idata.posterior
            suffix = "_ignorable" if "b_ignorable" in post else ""
            flat = {"a": self.draws("a", mediator).ravel(),
                    "b0": self.draws("b" + suffix, mediator).ravel(),
                    "sigma_y": post["sigma_outcome"].values.ravel()}
            sigma_m = post["sigma_mediator"].values.reshape(-1, len(self.mediators))
            k = self.mediators.index(mediator)
            if "mediator_corr" in post:
                corr = post["mediator_corr"].values.ravel()
                precision_kk = 1.0 / (sigma_m[:, k] ** 2 * (1.0 - corr**2))
            else:
                precision_kk = 1.0 / sigma_m[:, k] ** 2
            self._cache[key] = sensitivity_curve(mediator, flat["a"], flat["b0"],
                                                 flat["sigma_y"], sigma_m[:, k], precision_kk)
        return self._cache[key]


@dataclass
class _Compiled:
    model: Any
    sampler_model: Any
    log_prior_fn: Any
    names: tuple[str, ...]


# Compiling the model takes 10-30 s and sampling it under a second: one compiled model per
# structure (number of mediators and controls, prior families), its numbers in data containers.
_CACHE: dict[str, _Compiled] = {}


def _compile(design: MediationDesign, resolved: dict[str, Any]) -> _Compiled:
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    from models.bayes.nutpie_compile import compile_model

    model = build_mediation_model(design, resolved, data_containers=True)
    sampler_model = compile_model(model)
    names = tuple(v.name for v in model.free_RVs)
    placeholders = [pt.tensor(f"{n}_draws", shape=(None,) * (model[n].ndim + 1))
                    for n in names]
    densities = [pm.logp(model[n], value) for n, value in zip(names, placeholders, strict=True)]
    # Evaluated once per fit on all draws at once: compile cheaply, numpy does the work.
    function = pytensor.function(placeholders, densities, mode="FAST_COMPILE",
                                 on_unused_input="ignore")
    return _Compiled(model, sampler_model, function, names)


def _sample_cached(key: str, design: MediationDesign, resolved: dict[str, Any], draws: int,
                   tune: int, chains: int, seed: int, progressbar: bool,
                   target_accept: float | None):
    """Sample with the compiled model of this structure (compiled on first use); returns the
    InferenceData labelled for ``design``, the wall times and the log-prior builder."""
    import xarray as xr

    times = {"compile_s": 0.0}
    entry = _CACHE.get(key)
    if entry is None:
        start = _time.perf_counter()
        entry = _CACHE[key] = _compile(design, resolved)
        times["compile_s"] = _time.perf_counter() - start
    values = model_data(design, resolved)
    # nutpie draws the initial points from the PyMC model's own data containers, not from
    # ``with_data``'s copy: they must hold this fit's values, or its draws depend on the fits
    # this process ran before.
    for name, value in values.items():
        entry.model[name].set_value(value)
    compiled = entry.sampler_model.with_data(**values)
    idata, times["sampling_s"] = run_nutpie(compiled, draws, tune, chains, seed, progressbar,
                                            target_accept)
    coords = {"mediator": list(design.mediators)}
    if design.controls:
        coords["control"] = list(design.controls)
        coords["mediator_control"] = [f"{k}:{c}" for k in design.mediators
                                      for c in design.controls]
    idata.posterior = idata.posterior.assign_coords(
        {k: v for k, v in coords.items() if k in idata.posterior.dims})

    def log_prior(post):
        for name, value in values.items():
            entry.model[name].set_value(value)
        n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
        inputs = [post[n].values.reshape((n_chain * n_draw,) + post[n].shape[2:])
                  for n in entry.names]
        densities = entry.log_prior_fn(*inputs)
        data = {name: (post[name].dims, np.asarray(density).reshape(post[name].shape))
                for name, density in zip(entry.names, densities, strict=True)}
        return xr.Dataset(data, coords={k: post[k] for k in post.coords
                                        if k in {d for n in data for d in data[n][0]}})

    return idata, times, log_prior


@dataclass(frozen=True)
class _StoredSystem:
    """What the pointwise log-likelihood reads of a :class:`MediationDesign`, as a saved
    posterior stores it (the demeaned columns [y, m.., x, w..] and their names)."""

    data: np.ndarray
    outcome: str
    mediators: tuple[str, ...]
    controls: tuple[str, ...]

    @property
    def n_obs(self) -> int:
        return int(self.data.shape[0])


def _add_log_likelihood(idata, design: MediationDesign | _StoredSystem) -> None:
    import xarray as xr

    # Thin matrix products (p ~ 10 columns): a multi-threaded BLAS spends 20x longer
    # synchronising than computing (measured on 2 busy cores).
    with _blas_controller().limit(limits=1):
        values = pointwise_log_likelihood(design, idata.posterior)
    post = idata.posterior
    obs = np.arange(design.n_obs)
    if "log_likelihood" in idata.groups():
        del idata.log_likelihood
    idata.add_groups({"log_likelihood": xr.Dataset(
        {design.outcome: (("chain", "draw", "obs"), values)},
        coords={"chain": post.chain, "draw": post.draw, "obs": obs})})


def fit_bayes_mediation(
    df: pd.DataFrame,
    outcome: str,
    treatment: str,
    mediators: Sequence[str],
    controls: Sequence[str] = (),
    unit: str = "unit",
    time: str | None = None,
    priors: Any = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    sampler: str = "nutpie",
    progressbar: bool = False,
    target_accept: float | None = None,
) -> BayesMediationFit:
    """Fit the joint mediator and outcome equations of the module docstring.

    Model::

        m~_k = a_k x~ + w~' delta_k + e_k,   y~ = c x~ + sum_k b_k m~_k + w~' gamma + u,
        e ~ N(0, Sigma_M),  u ~ N(0, s_y^2)  (Cov(e, u) = 0 unless ``confounding_rho`` is set)

    on two-way demeaned data (effects integrated out exactly); indirect_k = a_k b_k,
    total = c + sum_k a_k b_k.

    Parameters
    ----------
    df : DataFrame
        One row per unit and year.
    outcome, treatment : str
    mediators : sequence of str
        One or two mediators, fitted in one model with their residual correlation.
    controls : sequence of str
        In every equation.
    unit, time : str
        Panel keys (``time=None``: unit effects only).
    priors : MediationPriors, PanelPriors, mapping or ``ROLE=DIST`` strings, optional
        Roles of :mod:`models.mediation.priors`.
    draws, tune, chains, seed, sampler, progressbar, target_accept
        As in :func:`models.panel.bayes.fit_bayes_twfe`.

    Returns
    -------
    BayesMediationFit
        With ``log_likelihood`` (pointwise joint density, under the outcome's name) and
        ``log_prior`` groups, and ``posterior_predictive`` replicates of the outcome and every
        mediator in levels, effects included (:mod:`models.mediation.predictive`), beside
        them in ``observed_data``.
    """

    start_total = _time.perf_counter()
    mediators = [mediators] if isinstance(mediators, str) else list(mediators)
    controls = [controls] if isinstance(controls, str) else list(controls)
    check_mediator_count(mediators)
    design = prepare_mediation(df, outcome, treatment, mediators, controls, unit, time)
    resolved, record = resolve_priors(MediationPriors.parse(priors), design)
    key = structure_key(design, resolved) if sampler == "nutpie" else None
    if key is not None:
        idata, times, log_prior = _sample_cached(key, design, resolved, draws, tune, chains,
                                                 seed, progressbar, target_accept)
    else:
        model = build_mediation_model(design, resolved)
        idata, times = sample_model(model, sampler, draws, tune, chains, seed, progressbar,
                                    target_accept)
        log_prior = None
    start_post = _time.perf_counter()
    _add_log_likelihood(idata, design)
    idata.add_groups({"constant_data": matrix_dataset(
        "system", design.data, [outcome, *mediators, treatment, *controls])})
    add_mediation_predictive(idata, design, seed)
    if "log_prior" in idata.groups():
        del idata.log_prior
    if log_prior is not None:
        idata.add_groups({"log_prior": log_prior(idata.posterior)})
    else:
        compute_log_prior(idata, model, [v.name for v in model.free_RVs])
    times["postprocess_s"] = _time.perf_counter() - start_post
    times["total_s"] = _time.perf_counter() - start_total
    spec = {
        "model": "mediation",
        "outcome": outcome,
        "treatment": treatment,
        "mediators": list(mediators),
        "controls": list(controls),
        "unit": unit,
        "time": time,
        "effects": "two-way demeaned" if time is not None else "unit demeaned",
        "likelihood": "multivariate normal (mediators and outcome)",
        "confounding_rho": record["confounding_rho"]["prior"],
        "sampler": sampler,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "n_obs": design.n_obs,
        "n_effective": design.n_effective,
        "n_units": design.n_units,
        "n_years": design.n_years,
    }
    return BayesMediationFit.record(idata, spec=spec, priors=record,
                                    data_hash=design.data_hash, seed=seed, times=times)

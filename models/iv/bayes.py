"""Bayesian instrumental variables for panels: first stage and outcome equation jointly.

Model
-----
For unit i and year t, with endogenous regressor x, instruments z, controls w,

    x_it = z_it' pi   + w_it' delta + a_i + d_t + v_it        (first stage)
    y_it = beta x_it  + w_it' gamma + b_i + c_t + u_it        (outcome equation)
    (u_it, v_it) ~ N(0, Sigma),  Sigma = [[s_u^2, rho s_u s_v], [rho s_u s_v, s_v^2]],

iid over (i, t). rho != 0 is the endogeneity: x moves with u through v. The unit and year
effects of both equations are removed by two-way demeaning every variable (the within
transformation, as the frequentist 2SLS with absorbed effects does):

    x~ = z~' pi + w~' delta + v~,      y~ = beta x~ + w~' gamma + u~.

Why demeaning is exact here
~~~~~~~~~~~~~~~~~~~~~~~~~~~
Let M project off the unit and year indicators D (rank r) and Q = [Q1, Q2] be an orthonormal
basis with Q1 spanning the range of M and Q2 that of D. Both equations' errors have
covariance Sigma (x) I_n, and rotating each equation by Q keeps that covariance. The Q2 part
of each equation contains the effects (a, d) or (b, c) with free coefficients, so with flat
priors on the effects integrating them out leaves a constant (the Jacobian |Q2'D|^2, free of
every other parameter). What remains is the likelihood of the Q1-rotated, i.e. the demeaned,
system with n - r observations: the effects do not touch the identification of beta, pi,
gamma, delta, Sigma. We therefore use

    log p = -(n - r)/2 log|Sigma| - tr(Sigma^-1 E'E) / 2 - (n - r) log(2 pi),

with E = [u~, v~] the within residuals, whose 2 x 2 cross-product is a quadratic form in the
coefficients and the cross-product matrix of the demeaned data, so a gradient costs
O(p^2) for p variables, independent of n. With one instrument the model is exactly identified
and the maximum-likelihood beta is the IV (2SLS) estimate; with several it is LIML.

The pointwise log-likelihood (``log_likelihood`` group, for LOO) is the bivariate normal
density of each observation's within residuals (u~_it, v~_it), one value per observation under
the outcome's name; it counts n rather than n - r observations in the log-determinant.

Priors
------
rho: (rho + 1) / 2 ~ Beta(eta, eta), which is exactly the LKJ(eta) distribution of a 2 x 2
correlation matrix (default eta = 2: mild preference for |rho| < 1; eta = 1 is uniform on
(-1, 1)). Slopes follow the data-scaled rule of :mod:`models.bayes.panel_priors` on the within
scale: beta ~ N(0, 2.5 s_y / s_w(x)), gamma_c ~ N(0, 2.5 s_y / s_w(w_c)), pi_j ~ N(0, 2.5 s_x /
s_w(z_j)), delta_c ~ N(0, 2.5 s_x / s_w(w_c)), s_u ~ halfnormal(s_y), s_v ~ halfnormal(s_x),
with s_y, s_x the sds of y and x. Roles for overrides (``ROLE=DIST`` strings or a mapping):
``slope`` / ``slope.<name>`` (outcome equation: beta and gamma), ``first_stage`` /
``first_stage.<name>`` (pi and delta), ``sigma`` (s_u), ``first_stage_sigma`` (s_v),
``rho=lkj(eta)``. Roles of the TWFE model without a counterpart here (intercept, between,
unit_sd, year_sd) are ignored.
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from models.bayes.fit import PosteriorFit
from models.bayes.log_prior import compute_log_prior
from models.bayes.panel_priors import DEFAULT_SCALE_MULTIPLIER, PanelPriors
from models.bayes.priors import (
    Prior,
    PriorSpecError,
    parse_lkj,
    prior_from_value,
    prior_items,
    stacked_prior,
)
from models.bayes.sampler import sample_model
from models.bayes.storage import matrix_dataset, stored_matrix
from models.bayes.summary import summary_row
from models.iv.predictive import add_iv_predictive
from models.panel.design import demeaned_system, prepare_panel

IV_ROLES = ("slope", "first_stage", "sigma", "first_stage_sigma", "rho")


# --------------------------------------------------------------------------------------------
# Priors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IVPriors:
    """User priors of the IV model; unset entries take the data-scaled defaults."""

    slope: Prior | None = None
    slope_terms: tuple[tuple[str, Prior], ...] = ()
    first_stage: Prior | None = None
    first_stage_terms: tuple[tuple[str, Prior], ...] = ()
    sigma: Prior | None = None
    first_stage_sigma: Prior | None = None
    rho_eta: float | None = None

    @classmethod
    def parse(cls, priors: Any) -> IVPriors:
        """From None, :class:`PanelPriors` (its ``slope`` and ``sigma``), a mapping or
        ``ROLE=DIST`` strings (roles :data:`IV_ROLES`; other TWFE roles are ignored)."""
        if isinstance(priors, IVPriors):
            return priors
        if priors is None:
            return cls()
        if isinstance(priors, PanelPriors):
            return cls(slope=priors.slope, slope_terms=priors.slope_terms, sigma=priors.sigma)
        items = prior_items(priors)
        fields: dict[str, Any] = {}
        terms: dict[str, dict[str, Prior]] = {"slope": {}, "first_stage": {}}
        for key, value in items:
            role, _, term = key.partition(".")
            if role not in IV_ROLES:
                continue
            if role == "rho":
                fields["rho_eta"] = parse_lkj(value, "rho")
                continue
            prior = value if isinstance(value, Prior) else prior_from_value(value, f"prior {key!r}")
            if role in ("sigma", "first_stage_sigma") and prior.support != "positive":
                raise PriorSpecError(f"Prior {key} = {prior} must be on the positive half-line.")
            if term and role in terms:
                terms[role][term] = prior
            elif term:
                raise PriorSpecError(f"Prior {role!r} cannot be set per term ({key!r}).")
            else:
                fields[role] = prior
        return cls(slope_terms=tuple(terms["slope"].items()),
                   first_stage_terms=tuple(terms["first_stage"].items()), **fields)


# --------------------------------------------------------------------------------------------
# Design
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IVDesign:
    """Two-way demeaned variables of the IV system and their cross-products.

    ``data`` columns are [y, x, z_1..z_m, w_1..w_c] after demeaning; ``gram`` = data'data;
    ``raw`` the same columns before demeaning, with the unit and year codes of every row.
    """

    outcome: str
    endogenous: str
    instruments: tuple[str, ...]
    controls: tuple[str, ...]
    data: np.ndarray
    gram: np.ndarray
    raw_sd: dict[str, float]
    within_sd: dict[str, float]
    n_obs: int
    fe_rank: int
    data_hash: str
    n_units: int
    n_years: int
    raw: np.ndarray = field(repr=False)
    unit_idx: np.ndarray = field(repr=False)
    time_idx: np.ndarray | None = field(repr=False)

    @property
    def n_effective(self) -> int:
        return self.n_obs - self.fe_rank


def prepare_iv(
    df: pd.DataFrame,
    outcome: str,
    endogenous: str,
    instruments: Sequence[str],
    controls: Sequence[str],
    unit: str,
    time: str | None = None,
) -> IVDesign:
    """Validate and two-way demean the IV system.

    Raises
    ------
    ValueError
        Naming the column: missing or non-numeric columns, missing values, no instrument, a
        variable without within variation, collinear instruments and controls, or the
        endogenous regressor listed as instrument or control.
    """
    instruments = [instruments] if isinstance(instruments, str) else list(instruments)
    controls = [controls] if isinstance(controls, str) else list(controls)
    if not instruments:
        raise ValueError("An IV model needs at least one instrument.")
    if endogenous in instruments or endogenous in controls:
        raise ValueError(f"The endogenous regressor {endogenous!r} is also listed as an "
                         "instrument or control.")
    overlap = sorted(set(instruments) & set(controls))
    if overlap:
        raise ValueError(f"Column(s) {overlap} are both instruments and controls.")
    panel = prepare_panel(df, outcome, [endogenous, *instruments, *controls], unit, time)
    return IVDesign(outcome=outcome, endogenous=endogenous, instruments=tuple(instruments),
                    controls=tuple(controls), **demeaned_system(
                        panel, [outcome, endogenous, *instruments, *controls]))


def _resolve(priors: IVPriors, design: IVDesign) -> tuple[dict[str, Any], dict]:
    """Every prior of the model (data-scaled defaults where unset) and their record."""
    m = DEFAULT_SCALE_MULTIPLIER

    def scale(name: str) -> float:
        value = design.raw_sd[name]
        return value if np.isfinite(value) and value > 0 else 1.0

    s_y, s_x = scale(design.outcome), scale(design.endogenous)
    record: dict[str, dict[str, str]] = {}
    slope_terms, first_terms = dict(priors.slope_terms), dict(priors.first_stage_terms)

    def pick(role: str, term: str, explicit: dict, role_prior: Prior | None, outcome_sd: float):
        if term in explicit:
            prior, source = explicit[term], "user"
        elif role_prior is not None:
            prior, source = role_prior, "user"
        else:
            within = design.within_sd[term]
            prior = Prior.of("normal", 0.0, m * outcome_sd / (within if within > 0 else 1.0))
            source = "default"
        record[f"{role}.{term}"] = {"prior": str(prior), "source": source}
        return prior

    unknown = [t for t in slope_terms if t not in (design.endogenous, *design.controls)]
    unknown += [t for t in first_terms if t not in (*design.instruments, *design.controls)]
    if unknown:
        raise PriorSpecError(f"Prior(s) for {unknown} name variables not in the IV model.")
    resolved = {
        "beta": pick("slope", design.endogenous, slope_terms, priors.slope, s_y),
        "gamma": [pick("slope", c, slope_terms, priors.slope, s_y) for c in design.controls],
        "pi": [pick("first_stage", z, first_terms, priors.first_stage, s_x)
               for z in design.instruments],
        "delta": [pick("first_stage", c, first_terms, priors.first_stage, s_x)
                  for c in design.controls],
    }
    for key, role, given, sd in (("sigma_outcome", "sigma", priors.sigma, s_y),
                                 ("sigma_first", "first_stage_sigma",
                                  priors.first_stage_sigma, s_x)):
        resolved[key] = given if given is not None else Prior.of("halfnormal", sd)
        record[role] = {"prior": str(resolved[key]),
                        "source": "user" if given is not None else "default"}
    eta = priors.rho_eta if priors.rho_eta is not None else 2.0
    resolved["rho_eta"] = eta
    record["rho"] = {"prior": f"lkj({eta:g}): (rho + 1) / 2 ~ beta({eta:g}, {eta:g})",
                     "source": "user" if priors.rho_eta is not None else "default"}
    return resolved, record


def iv_model_data(design: IVDesign) -> dict[str, np.ndarray]:
    """Values of the data containers of :func:`build_iv_model` for ``design``."""
    return {"gram": design.gram, "n_effective": np.array(float(design.n_effective))}


def build_iv_model(design: IVDesign, resolved: dict[str, Any], data_containers: bool = False):
    """The PyMC model of the module docstring.

    Free variables: ``beta``, ``first_stage`` (pi, dims ``instrument``), ``control_outcome``
    (gamma) and ``control_first`` (delta) (dims ``control``), ``sigma_outcome`` (s_u),
    ``sigma_first`` (s_v), ``rho_unit`` ((rho + 1) / 2); Deterministic ``rho``.

    ``data_containers=True`` holds the cross-products and the effective number of
    observations in ``pm.Data`` (:func:`iv_model_data`), so that one compiled model serves
    every data set of the same variables and priors.
    """
    import pymc as pm
    import pytensor.tensor as pt

    coords: dict[str, Any] = {"instrument": list(design.instruments)}
    if design.controls:
        coords["control"] = list(design.controls)
    n_z, n_w = len(design.instruments), len(design.controls)
    with pm.Model(coords=coords) as model:
        beta = resolved["beta"].to_pymc("beta")
        pi = stacked_prior(resolved["pi"], "first_stage", "instrument")
        if n_w:
            gamma = stacked_prior(resolved["gamma"], "control_outcome", "control")
            delta = stacked_prior(resolved["delta"], "control_first", "control")
        else:
            gamma = delta = pt.zeros(0)
        sigma_u = resolved["sigma_outcome"].to_pymc("sigma_outcome")
        sigma_v = resolved["sigma_first"].to_pymc("sigma_first")
        eta = resolved["rho_eta"]
        rho_unit = pm.Beta("rho_unit", eta, eta)
        rho = pm.Deterministic("rho", 2.0 * rho_unit - 1.0)
        # Residuals as linear maps of the demeaned data [y, x, z, w]: u = D a_u, v = D a_v.
        a_u = pt.concatenate([pt.ones(1), -pt.reshape(beta, (1,)), pt.zeros(n_z), -gamma])
        a_v = pt.concatenate([pt.zeros(1), pt.ones(1), -pi, -delta])
        values = iv_model_data(design)
        gram = (pm.Data("gram", values["gram"]) if data_containers
                else pt.as_tensor_variable(values["gram"]))
        s_uu = pt.dot(a_u, pt.dot(gram, a_u))
        s_uv = pt.dot(a_u, pt.dot(gram, a_v))
        s_vv = pt.dot(a_v, pt.dot(gram, a_v))
        one_minus = 1.0 - rho**2
        quadratic = (s_uu / sigma_u**2 - 2.0 * rho * s_uv / (sigma_u * sigma_v)
                     + s_vv / sigma_v**2) / one_minus
        n_eff = (pm.Data("n_effective", values["n_effective"]) if data_containers
                 else float(design.n_effective))
        log_det = 2.0 * pt.log(sigma_u) + 2.0 * pt.log(sigma_v) + pt.log(one_minus)
        pm.Potential(f"{design.outcome}_{design.endogenous}_joint",
                     -0.5 * n_eff * log_det - 0.5 * quadratic - n_eff * np.log(2.0 * np.pi))
    return model


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BayesIVFit(PosteriorFit):
    """A fitted Bayesian IV model; the interface and provenance of
    :class:`models.bayes.fit.PosteriorFit`. ``tidy`` has a ``stage`` column
    (``first``, ``second``, ``errors``)."""

    model_name: ClassVar[str] = "bayes_iv"

    def recomputed_on_load(self) -> dict[str, tuple[str, ...]]:
        """The pointwise log-likelihood, recomputed from the stored demeaned system."""
        return {"log_likelihood": ()} if "constant_data" in self.idata.groups() else {}

    @classmethod
    def restore(cls, idata) -> None:
        spec = json.loads(idata.posterior.attrs["spec"])
        _add_iv_loglik(idata, stored_matrix(idata.constant_data, "system"),
                       len(spec["instruments"]), spec["outcome"])

    def _build_tidy(self, auxiliary: bool) -> pd.DataFrame:

        post = self.idata.posterior
        spec = self.spec
        entries: list[tuple[str, str, np.ndarray]] = []
        for z in spec["instruments"]:
            entries.append(("first", z, post["first_stage"].sel(instrument=z).values))
        entries.append(("second", spec["endogenous"], post["beta"].values))
        entries.append(("errors", "rho", post["rho"].values))
        if auxiliary:
            for c in spec["controls"]:
                entries.append(("first", c, post["control_first"].sel(control=c).values))
                entries.append(("second", c, post["control_outcome"].sel(control=c).values))
            entries.append(("errors", "sigma_outcome", post["sigma_outcome"].values))
            entries.append(("errors", "sigma_first", post["sigma_first"].values))
        return pd.DataFrame([{"stage": stage, **summary_row(term, draws, spec["n_obs"],
                                                             self.divergences)}
                             for stage, term, draws in entries])

    def convergence_rows(self):
        """Every term; a control, which has a slope in both equations, is named
        ``<control>[first]`` or ``<control>[second]``."""
        table = self.tidy(auxiliary=True)
        controls = set(self.spec["controls"])
        terms = [f"{t}[{stage}]" if t in controls else t
                 for t, stage in zip(table["term"], table["stage"], strict=True)]
        return zip(terms, table["r_hat"], table["ess_bulk"], strict=True)



def _add_iv_loglik(idata, data: np.ndarray, n_z: int, outcome: str) -> None:
    """Pointwise bivariate normal log density of (u~_it, v~_it) for every draw; ``data`` the
    demeaned columns [y, x, z_1..z_{n_z}, w..] (:class:`IVDesign`)."""
    import xarray as xr

    post = idata.posterior
    y, x = data[:, 0], data[:, 1]
    z = data[:, 2:2 + n_z]
    w = data[:, 2 + n_z:]
    beta = post["beta"].values
    pi = post["first_stage"].values
    sigma_u = post["sigma_outcome"].values
    sigma_v = post["sigma_first"].values
    rho = post["rho"].values
    loglik = np.empty(beta.shape + (data.shape[0],))
    for chain in range(beta.shape[0]):
        u = y - beta[chain][:, None] * x
        v = x - pi[chain] @ z.T
        if w.shape[1]:
            u = u - post["control_outcome"].values[chain] @ w.T
            v = v - post["control_first"].values[chain] @ w.T
        su, sv, r = (a[chain][:, None] for a in (sigma_u, sigma_v, rho))
        one_minus = 1.0 - r**2
        quadratic = ((u / su) ** 2 - 2.0 * r * u * v / (su * sv) + (v / sv) ** 2) / one_minus
        loglik[chain] = (-np.log(2.0 * np.pi) - np.log(su) - np.log(sv)
                         - 0.5 * np.log(one_minus) - 0.5 * quadratic)
    dataset = xr.Dataset(
        {outcome: (("chain", "draw", "obs"), loglik)},
        coords={"chain": post.chain, "draw": post.draw, "obs": np.arange(data.shape[0])},
    )
    if "log_likelihood" in idata.groups():
        del idata.log_likelihood
    idata.add_groups({"log_likelihood": dataset})


# --------------------------------------------------------------------------------------------
# Public fitting function
# --------------------------------------------------------------------------------------------


def fit_bayes_iv(
    df: pd.DataFrame,
    outcome: str,
    endogenous: str,
    instruments: Sequence[str],
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
) -> BayesIVFit:
    """Fit the joint first-stage / outcome model of the module docstring.

    Model::

        x~ = z~' pi + w~' delta + v~,   y~ = beta x~ + w~' gamma + u~,
        (u, v) ~ N(0, [[s_u^2, rho s_u s_v], [rho s_u s_v, s_v^2]]),  (rho + 1)/2 ~ Beta(eta, eta)

    with ``~`` the two-way (unit and year) demeaned variables.

    Parameters
    ----------
    df : DataFrame
        One row per unit and year.
    outcome, endogenous : str
    instruments, controls : sequence of str
    unit, time : str
        Panel keys (``time=None``: unit effects only).
    priors : IVPriors, PanelPriors, mapping or ``ROLE=DIST`` strings, optional
        See the module docstring.
    draws, tune, chains, seed, sampler, progressbar, target_accept
        As in :func:`models.panel.bayes.fit_bayes_twfe`.

    Returns
    -------
    BayesIVFit
        Posterior of beta, pi, gamma, delta, rho, s_u, s_v; ``log_likelihood`` (pointwise
        joint density) and ``log_prior`` groups; ``posterior_predictive`` replicates of the
        outcome and the endogenous regressor in levels, effects included
        (:mod:`models.iv.predictive`), beside them in ``observed_data``.
    """

    start_total = _time.perf_counter()
    controls = [controls] if isinstance(controls, str) else list(controls)
    instruments = [instruments] if isinstance(instruments, str) else list(instruments)
    design = prepare_iv(df, outcome, endogenous, instruments, controls, unit, time)
    resolved, record = _resolve(IVPriors.parse(priors), design)
    model = build_iv_model(design, resolved)
    idata, times = sample_model(model, sampler, draws, tune, chains, seed, progressbar,
                                target_accept)
    start_post = _time.perf_counter()
    _add_iv_loglik(idata, design.data, len(design.instruments), design.outcome)
    idata.add_groups({"constant_data": matrix_dataset(
        "system", design.data, [outcome, endogenous, *instruments, *controls])})
    add_iv_predictive(idata, design, seed)
    compute_log_prior(idata, model, [v.name for v in model.free_RVs])
    times["postprocess_s"] = _time.perf_counter() - start_post
    times["total_s"] = _time.perf_counter() - start_total
    spec = {
        "model": "iv",
        "outcome": outcome,
        "endogenous": endogenous,
        "instruments": list(instruments),
        "controls": list(controls),
        "regressors": [endogenous, *controls],
        "unit": unit,
        "time": time,
        "effects": "two-way demeaned" if time is not None else "unit demeaned",
        "likelihood": "bivariate normal",
        "sampler": sampler,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "n_obs": design.n_obs,
        "n_effective": design.n_effective,
        "n_units": design.n_units,
        "n_years": design.n_years,
    }
    return BayesIVFit.record(idata, spec=spec, priors=record, data_hash=design.data_hash,
                             seed=seed, times=times)

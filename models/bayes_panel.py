"""Bayesian two-way fixed-effects (TWFE) panel regression with hierarchical unit and year effects.

Model
-----
For unit i and year t,

    y_it = alpha + x_it' beta + u_i + tau_t + e_it,

with sum-to-zero year effects tau ~ ZeroSumNormal(year_sd) and hierarchical unit effects.
A plain random intercept u_i ~ N(0, unit_sd) biases beta whenever x is correlated with u_i: the
posterior mixes within- and between-unit variation. We therefore use a correlated-random-effects
(Mundlak 1978; Wooldridge 2021) parametrisation with an *orthogonal* within/between split:

    x_it = x~_it + (x_it - x~_it),     x~ = two-way demeaned x (unit and year means removed),
    y_it = alpha + x~_it' beta + u_i + tau_t + e_it,
    u_i  = (xbar_i - xbar)' lambda + unit_sd * z_i,     z_i ~ N(0, 1)   (non-centred).

Why this choice
~~~~~~~~~~~~~~~
* ``x~`` is orthogonal to every unit and every year indicator (x_it - x~_it lies in their span;
  for unbalanced panels x~ is computed by alternating projections). In the Gaussian likelihood
  the cross-products between beta and (alpha, u, tau) vanish, so the likelihood of beta is
  exactly that of the within regression whatever the unit and year effects do: under flat
  priors the marginal posterior of beta is multivariate t centred at the TWFE estimate
  (what ``pyfixest.feols("y ~ x | unit + year")`` reports), with scale s^2 (X~'X~)^-1.
  Shrinking the unit effects cannot leak between-unit variation into beta.
* The between part is absorbed by the Mundlak term lambda (the contextual effect
  ``between - within``), so the unit effects stay a hierarchical model that shrinks toward a
  regression on the unit means rather than toward zero.
* The posterior is nearly block-diagonal (beta ⟂ rest), which a diagonal mass matrix handles:
  NUTS needs short trajectories. Unit effects are non-centred (offsets z_i); year effects, each
  identified by a whole cross-section, are centred.
* For the normal likelihood the offsets z_i are integrated out exactly (``unit_effects=
  "marginalised"``): the hierarchical model is unchanged, the sampler sees ~28 dimensions
  instead of ~300, and after sampling each draw gets one exact draw of u_i from its normal
  conditional posterior, so ``unit_effect`` / ``unit_offset`` are in the posterior as for the
  other likelihoods, where they are sampled (non-centred).
* With normal priors on the intercept and the Mundlak terms (the defaults), those and the year
  effects are integrated out too (``unit_effects="collapsed"``, :mod:`models.twfe_collapsed`,
  the ``auto`` choice): NUTS samples beta and the scales sigma, unit_sd, year_sd (k + 3
  dimensions, all close to Gaussian), and every other term is drawn exactly afterwards. Same
  model, same posterior; tested against the Gaussian identity on the full covariance.

``parametrisation="naive"`` (raw regressors, centred random intercepts, no Mundlak term) and
``"mundlak_raw"`` (raw regressors plus their unit means, centred unit effects: the textbook
Mundlak device) exist for the bias test and the benchmark only.

Likelihoods: ``normal``, ``student_t`` (scale sigma, degrees of freedom nu) and
``negbin`` (negative binomial, log link, Var = mu + mu^2/alpha, for counts). For the non-Gaussian
likelihoods the orthogonal split still identifies beta from within variation, but equality with
a linear TWFE estimate is no longer exact.

Sampler choice
~~~~~~~~~~~~~~
Measured with ``benchmarks/bench_bayes_twfe.py`` on a simulated 271 x 12 panel shaped like
zhao2025 Table 2 column 6 (six regressors), 4 chains x 1,000 draws after 1,000 tuning steps,
on a shared 2-core machine (timings vary by up to 2x with load). Bulk ESS per second of the AI
slope while sampling, and the one-off compile time:

=====================================================================  =========  ==========
sampler, parametrisation                                               ESS/s      compile
=====================================================================  =========  ==========
PyMC default NUTS, raw x + city means, centred city effects            31         14 s
nutpie, raw x + city means, centred city effects                       290        17 s
PyMC default NUTS, orthogonal split, unit effects integrated out       250        (cached C)
nutpie, orthogonal split, non-centred unit effects sampled             ~2,000     17 s
nutpie, orthogonal split, unit effects integrated out, graph          ~12,000    11-19 s
nutpie, as above, likelihood as one fused Op                           ~21,000    27 s
nutpie, collapsed (k + 3 dimensions), target acceptance 0.8            ~29,000    11-25 s
nutpie, collapsed, target acceptance 0.65 (default)                    ~53,000    11-25 s
exact conjugate draws (flat priors, numpy; 290,000-540,000 measured)  ~430,000   none
=====================================================================  =========  ==========

Three things made the collapsed default fast, each measured on the benchmark panel:

* Fewer, better-conditioned dimensions: 9 instead of 27, ~5 leapfrog steps per draw instead
  of ~7 at the same acceptance target. The fused kernel (:mod:`models.twfe_collapsed_op`)
  factors only the (1 + k) x (1 + k) block when the year coordinates are decoupled, as in any
  balanced panel: 1.4 microseconds per gradient.
* One data container instead of ~20: nutpie looks each container up on every gradient, 8 of
  19 microseconds per step with separate containers.
* Converting nutpie's trace directly (:mod:`models.nutpie_trace`): 7 ms instead of ~100 ms.

The target acceptance of 0.65 (:data:`COLLAPSED_TARGET_ACCEPT`) takes ~3 steps per draw and
raises the AI slope's bulk ESS from ~5,200 to ~7,000 of 4,000 draws (six seeds each on the
benchmark panel and the zhao2025 panel, no divergences). With few periods year_sd's posterior
is skewed and 0.65 diverges (zhao2025 before 2016, five years: 1-8 divergences in each of six
seeds; none at 0.8); such a run is repeated once at 0.9 and the spec says so
(``divergences_before_retry``). What remains is nutpie's own work per draw: ~0.1 s for
4 x 2,000 draws even on a standard normal of the same size.

With the unit offsets sampled, NUTS needs ~15 leapfrog steps per draw (about 290 dimensions)
and the intercept and Mundlak terms mix slowly (bulk ESS ~400-500 of 4,000 draws); integrating
them out leaves ~28 dimensions, ~7 steps per draw, and ESS above the number of draws for every
parameter. numba compilation (10-25 s, once per model shape) then dominates a fit. numpyro was
not installed and not measured. PyTensor's C backend is slow here (no BLAS found), which also
slows PyMC's own sampler.

The default is nutpie (numba backend). Every fit stores the pointwise log-likelihood under the
outcome's name (conditional on the unit effects; computed in numpy for the integrated-out case,
with ``pm.compute_log_likelihood`` otherwise) and a ``log_prior`` group holding the
configurable priors (intercept, slopes, Mundlak terms and scale parameters; not the
hierarchical unit and year effects; normal densities in numpy for the terms the collapsed
model draws afterwards), so LOO and power-scaling sensitivity work on every fit.
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from models.convergence import ConvergenceChecked
from models.nuts_sampler import SAMPLERS, sample_model
from models.panel_design import MODEL_NAMES, PanelDesign, prepare_panel
from models.posterior_record import package_versions, provenance_attributes, save_with_attributes
from models.posterior_summary import HDI_PROB, summary_row
from models.priors import PanelPriors, vector_prior
from models.twfe_collapsed import (
    CollapsedStats,
    add_linear_terms,
    linear_terms_log_prior,
    pack_stats,
)
from models.twfe_collapsed_op import collapsed_normal_logp_fused
from models.twfe_marginal import (
    MODEL_FIELDS,
    SufficientStats,
    add_observed_data,
    draw_unit_effects,
)
from models.twfe_marginal_op import marginal_normal_logp_fused

__all__ = [
    "HDI_PROB", "LIKELIHOODS", "MODEL_NAMES", "PARAMETRISATIONS", "SAMPLERS", "BayesPanelFit",
    "PanelDesign", "build_twfe_model", "conjugate_twfe_draws", "fit_bayes_twfe",
    "marginal_model_data", "prepare_panel", "resolve_priors",
]

LIKELIHOODS = ("normal", "student_t", "negbin")
PARAMETRISATIONS = ("mundlak", "naive", "mundlak_raw")

_LIKELIHOOD_ALIASES = {
    "gaussian": "normal",
    "studentt": "student_t",
    "t": "student_t",
    "negative_binomial": "negbin",
    "negativebinomial": "negbin",
    "nb": "negbin",
}


# --------------------------------------------------------------------------------------------
# PyMC model
# --------------------------------------------------------------------------------------------


def _canonical_likelihood(likelihood: str) -> str:
    key = likelihood.strip().lower()
    key = _LIKELIHOOD_ALIASES.get(key, key)
    if key not in LIKELIHOODS:
        raise ValueError(f"Unknown likelihood {likelihood!r}; use one of {LIKELIHOODS}.")
    return key


def _prior_roles(likelihood: str, parametrisation: str, has_time: bool) -> list[str]:
    roles = ["intercept", "slope", "unit_sd"]
    if parametrisation != "naive":
        roles.append("between")
    if has_time:
        roles.append("year_sd")
    if likelihood in ("normal", "student_t"):
        roles.append("sigma")
    if likelihood == "student_t":
        roles.append("nu")
    if likelihood == "negbin":
        roles.append("alpha")
    return roles


UNIT_EFFECT_MODES = ("auto", "collapsed", "marginalised", "sampled")

# The collapsed posterior is Gaussian in the slopes given the three scales, and the scales
# (log-transformed, each informed by hundreds of rows or units) are close to Gaussian too: the
# setting in which 0.651 is the optimal acceptance rate of HMC (Beskos et al. 2013,
# Bernoulli 19(5A)). Measured on the benchmark panel (4 x 1,000 draws, 4 seeds): 3.0 leapfrog
# steps per draw and bulk ESS 6,400-7,700 for the AI slope, against 4.9 steps and
# 4,900-5,600 at 0.8, no divergences at either. Few periods leave year_sd skewed (the
# zhao2025 before-2016 subsample, 5 years, diverged twice): a run with any divergence is
# repeated at RETRY_TARGET_ACCEPT, and the spec records it.
COLLAPSED_TARGET_ACCEPT = 0.65
RETRY_TARGET_ACCEPT = 0.9
# Unbalanced panels (and cell effects such as province x year) leave the year coordinates
# coupled to the intercept and Mundlak terms; past this size the dense factorisation costs
# more per gradient than sampling those terms (zhao2025 Table 3 column 5, 360 province-year
# cells: 337 s collapsed), and ``auto`` takes the marginalised model instead.
MAX_COLLAPSED_DENSE_BLOCK = 32


def _linear_priors_normal(priors: PanelPriors | None, regressors: Sequence[str]) -> bool:
    if priors is None:
        return False
    return priors.intercept.family == "normal" and all(
        priors.term_prior("between", term).family == "normal" for term in regressors)


def _unit_effects_mode(likelihood: str, parametrisation: str, unit_effects: str,
                       priors: PanelPriors | None = None,
                       design: PanelDesign | None = None) -> str:
    if unit_effects not in UNIT_EFFECT_MODES:
        raise ValueError(
            f"Unknown unit_effects {unit_effects!r}; use one of {UNIT_EFFECT_MODES}."
        )
    exact = likelihood == "normal" and parametrisation == "mundlak"
    regressors = () if design is None else design.regressors
    if unit_effects == "auto":
        if not exact:
            return "sampled"
        if design is None or not _linear_priors_normal(priors, regressors):
            return "marginalised"
        # A gradient of the collapsed density factors its dense block: O(size^3).
        small = collapsed_stats(design, priors).dense_size <= MAX_COLLAPSED_DENSE_BLOCK
        return "collapsed" if small else "marginalised"
    if unit_effects in ("collapsed", "marginalised") and not exact:
        raise ValueError(
            f"unit_effects={unit_effects!r} integrates terms out exactly, which needs the "
            "normal likelihood with the 'mundlak' parametrisation."
        )
    if unit_effects == "collapsed" and not _linear_priors_normal(priors, regressors):
        raise ValueError(
            "unit_effects='collapsed' needs normal priors on the intercept and on every "
            "Mundlak term ('between'); use 'marginalised' for other families."
        )
    return unit_effects


def collapsed_stats(design: PanelDesign, priors: PanelPriors) -> CollapsedStats:
    """The statistics of the collapsed model (:mod:`models.twfe_collapsed`) for these priors."""
    return CollapsedStats.from_design(
        design, priors.intercept, [priors.term_prior("between", t) for t in design.regressors])


def _sampled_prior_parameters(design: PanelDesign, priors: PanelPriors
                              ) -> tuple[np.ndarray, dict[tuple[str, str], int | slice]]:
    """The prior parameters of the collapsed model's sampled variables as one vector, and
    where each (role, parameter) sits in it (a slice for the per-regressor slopes)."""
    values: list[float] = []
    index: dict[tuple[str, str], int | slice] = {}
    term_priors = [priors.term_prior("slope", term) for term in design.regressors]
    if len({p.family for p in term_priors}) != 1:
        raise ValueError("data containers need one prior family for every slope")
    for key, _ in term_priors[0].params:
        index[("slope", key)] = slice(len(values), len(values) + len(term_priors))
        values.extend(p.kwargs[key] for p in term_priors)
    for role in ["unit_sd", "sigma"] + (["year_sd"] if design.time_idx is not None else []):
        for key, value in getattr(priors, role).params:
            index[(role, key)] = len(values)
            values.append(value)
    return np.asarray(values, dtype=float), index


def marginal_model_data(design: PanelDesign, priors: PanelPriors,
                        mode: str = "marginalised") -> dict[str, np.ndarray]:
    """Every data-dependent number of the marginalised or collapsed model, by container name.

    Marginalised: ``stat_<field>`` are the sufficient statistics, ``<variable>__<parameter>``
    the resolved prior parameters (vectors for the per-regressor roles, which must share one
    family). Collapsed: ``collapsed_stats`` (:func:`models.twfe_collapsed.pack_stats`, with
    the intercept and Mundlak priors) and ``prior_params``, the prior parameters of the
    sampled variables, each packed into one vector.
    """
    if mode == "collapsed":
        return {"collapsed_stats": pack_stats(collapsed_stats(design, priors)),
                "prior_params": _sampled_prior_parameters(design, priors)[0]}
    values: dict[str, np.ndarray] = {}
    stats = SufficientStats.from_design(design)
    for key in MODEL_FIELDS:
        value = getattr(stats, key)
        if value is not None:
            values[f"stat_{key}"] = np.asarray(value, dtype=float)
    roles = ["intercept", "unit_sd", "sigma"] + (["year_sd"] if design.time_idx is not None
                                                 else [])
    for role in roles:
        for key, value in getattr(priors, role).params:
            values[f"{role}__{key}"] = np.asarray(value, dtype=float)
    for role in ("slope", "between"):
        term_priors = [priors.term_prior(role, term) for term in design.regressors]
        if len({p.family for p in term_priors}) != 1:
            raise ValueError(f"data containers need one prior family for every {role}")
        for key, _ in term_priors[0].params:
            values[f"{role}__{key}"] = np.array([dict(p.params)[key] for p in term_priors])
    return values


def build_twfe_model(
    design: PanelDesign,
    priors: PanelPriors,
    likelihood: str = "normal",
    parametrisation: str = "mundlak",
    unit_effects: str = "auto",
    data_containers: bool = False,
):
    """The PyMC model of :func:`fit_bayes_twfe` for a prepared design and resolved priors.

    eta_it = alpha + x~_it' beta + u_i + tau_t, u_i = (xbar_i - xbar)' lambda + unit_sd z_i
    (``mundlak``); y_it ~ Normal(eta, sigma), StudentT(nu, eta, sigma) or
    NegativeBinomial(exp(eta), alpha). See the module docstring for the other parametrisations.

    With ``unit_effects="marginalised"`` the z_i are integrated out exactly: for unit i with
    T_i rows and residual r_i = y_i - alpha - X~_i beta - tau - (xbar_i - xbar)' lambda,
    y_i ~ N(., sigma^2 I + unit_sd^2 11'), whose log density splits into the within-unit sum
    of squares of r_i (scale sigma^2) and its unit mean (scale sigma^2 / T_i + unit_sd^2). The
    within part is written with sufficient statistics, so one gradient costs
    O(k^2 + N k + T^2) instead of O(n k).

    With ``unit_effects="collapsed"`` (the default for the normal likelihood when the
    intercept and Mundlak priors are normal) alpha, lambda and tau are integrated out as well
    (:mod:`models.twfe_collapsed`): the model's free variables are beta, sigma, unit_sd and
    year_sd, and the other terms are drawn exactly after sampling.

    ``data_containers=True`` (marginalised and collapsed modes) holds every number that
    depends on the data (sufficient statistics and prior parameters) in ``pm.Data``
    containers named as in :func:`marginal_model_data`, so one compiled model serves every
    design of the same shape.
    """
    import pymc as pm

    likelihood = _canonical_likelihood(likelihood)
    if parametrisation not in PARAMETRISATIONS:
        raise ValueError(
            f"Unknown parametrisation {parametrisation!r}; use one of {PARAMETRISATIONS}."
        )
    mode = _unit_effects_mode(likelihood, parametrisation, unit_effects, priors, design)
    coords: dict[str, Any] = {
        "coef": list(design.regressors),
        "unit": list(design.unit_labels),
        "obs": np.arange(design.n_obs),
    }
    if design.time_idx is not None:
        coords["year"] = list(design.time_labels)
    x = design.x_within if parametrisation == "mundlak" else design.x_raw - design.x_mean
    if data_containers and mode not in ("collapsed", "marginalised"):
        raise ValueError("data containers are implemented for the marginalised and collapsed "
                         "models only")
    values = marginal_model_data(design, priors, mode) if data_containers else None
    packed: dict[str, Any] = {}

    def const(name: str, value):
        return pm.Data(name, value) if values is not None else value

    def parameter(role: str, key: str, value):
        if values is None:
            return value
        if mode != "collapsed":
            return pm.Data(f"{role}__{key}", value)
        if not packed:
            packed["container"] = pm.Data("prior_params", values["prior_params"])
            packed["index"] = _sampled_prior_parameters(design, priors)[1]
        return packed["container"][packed["index"][(role, key)]]

    def prior(role: str, name: str, **kwargs):
        spec = getattr(priors, role)
        params = {key: parameter(role, key, value) for key, value in spec.params}
        return spec.to_pymc(name, **params, **kwargs)

    def vector(role: str, name: str):
        if values is None:
            return vector_prior(priors, role, design.regressors, name, "coef")
        term_priors = [priors.term_prior(role, term) for term in design.regressors]
        params = {key: parameter(role, key, np.array([dict(p.params)[key] for p in term_priors]))
                  for key, _ in term_priors[0].params}
        return term_priors[0].to_pymc(name, dims="coef", **params)

    with pm.Model(coords=coords) as model:
        if mode == "collapsed":
            slope = vector("slope", "slope")
            unit_sd = prior("unit_sd", "unit_sd")
            sigma = prior("sigma", "sigma")
            year_sd = prior("year_sd", "year_sd") if design.time_idx is not None else None
            stats = (pack_stats(collapsed_stats(design, priors)) if values is None
                     else pm.Data("collapsed_stats", values["collapsed_stats"]))
            pm.Potential(f"{design.outcome}_marginal",
                         collapsed_normal_logp_fused(stats, slope, sigma, unit_sd, year_sd))
            return model
        intercept = prior("intercept", "intercept")
        slope = vector("slope", "slope")
        unit_sd = prior("unit_sd", "unit_sd")
        between = None if parametrisation == "naive" else vector("between", "between")
        year_effect = None
        if design.time_idx is not None:
            year_sd = prior("year_sd", "year_sd")
            year_effect = pm.ZeroSumNormal("year_effect", sigma=year_sd, dims="year")
        if mode == "marginalised":
            sigma = prior("sigma", "sigma")
            stats = SufficientStats.from_design(design)
            if values is not None:
                stats = SufficientStats(**{
                    key: const(f"stat_{key}", values[f"stat_{key}"])
                    if key in MODEL_FIELDS and getattr(stats, key) is not None
                    else getattr(stats, key) for key in SufficientStats.__dataclass_fields__})
            pm.Potential(
                f"{design.outcome}_marginal",
                marginal_normal_logp_fused(stats, intercept, slope, between, year_effect,
                                           sigma, unit_sd),
            )
            return model
        unit_mean = 0.0 if between is None else pm.math.dot(design.unit_means, between)
        if parametrisation == "mundlak":
            unit_offset = pm.Normal("unit_offset", 0.0, 1.0, dims="unit")
            unit_effect = pm.Deterministic(
                "unit_effect", unit_mean + unit_sd * unit_offset, dims="unit"
            )
        else:
            unit_effect = pm.Normal("unit_effect", unit_mean, unit_sd, dims="unit")
        eta = intercept + pm.math.dot(x, slope) + unit_effect[design.unit_idx]
        if year_effect is not None:
            eta = eta + year_effect[design.time_idx]
        if likelihood == "normal":
            sigma = priors.sigma.to_pymc("sigma")
            pm.Normal(design.outcome, eta, sigma, observed=design.y, dims="obs")
        elif likelihood == "student_t":
            sigma = priors.sigma.to_pymc("sigma")
            nu = priors.nu.to_pymc("nu")
            pm.StudentT(design.outcome, nu=nu, mu=eta, sigma=sigma, observed=design.y, dims="obs")
        else:
            alpha = priors.alpha.to_pymc("alpha")
            pm.NegativeBinomial(
                design.outcome, mu=pm.math.exp(eta), alpha=alpha, observed=design.y, dims="obs"
            )
    return model


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BayesPanelFit(ConvergenceChecked):
    """A fitted Bayesian TWFE model: posterior, specification and provenance.

    Attributes
    ----------
    idata : arviz.InferenceData
        Groups ``posterior``, ``sample_stats`` (with ``diverging``), ``log_likelihood``
        (variable named after the outcome, one value per observation), ``log_prior`` and
        ``observed_data``.
    spec : dict
        Outcome, regressors, unit, time, likelihood, parametrisation, sampler, draws, tune,
        chains, n_obs, n_units, n_years.
    priors : dict
        :meth:`PanelPriors.describe` of the priors used.
    data_hash : str
        sha256 of the model data (:meth:`PanelDesign.data_hash`).
    seed : int
    versions : dict
        Package versions.
    wall_times : dict
        ``compile_s``, ``sampling_s``, ``postprocess_s``, ``total_s``.
    """

    idata: Any
    spec: dict[str, Any]
    priors: dict[str, dict[str, str]]
    data_hash: str
    seed: int
    versions: dict[str, str]
    wall_times: dict[str, float]
    model_name: ClassVar[str] = "bayes_twfe"
    _tidy_cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    @property
    def regressors(self) -> list[str]:
        return list(self.spec["regressors"])

    @property
    def divergences(self) -> int:
        stats = self.idata.sample_stats
        return int(stats["diverging"].sum()) if "diverging" in stats else 0

    def tidy(self, auxiliary: bool = True) -> pd.DataFrame:
        """One row per term: the slopes (named as the regressors), then, with ``auxiliary``,
        ``intercept``, ``sigma``, ``unit_sd``, ``year_sd``, ``nu``/``alpha`` and the Mundlak
        coefficients ``mundlak_<regressor>``.

        Columns: term, estimate (posterior mean), std_error (posterior sd), ci_low, ci_high
        (94% HDI), prob_positive, r_hat, ess_bulk, n_obs, divergences.
        """
        key = f"aux={auxiliary}"
        if key not in self._tidy_cache:
            self._tidy_cache[key] = self._build_tidy(auxiliary)
        return self._tidy_cache[key].copy()

    def _build_tidy(self, auxiliary: bool) -> pd.DataFrame:

        posterior = self.idata.posterior
        entries: list[tuple[str, np.ndarray]] = []
        slope = posterior["slope"]
        for name in self.regressors:
            entries.append((name, slope.sel(coef=name).values))
        if auxiliary:
            for name in ("intercept", "sigma", "unit_sd", "year_sd", "nu", "alpha"):
                if name in posterior:
                    entries.append((name, posterior[name].values))
            if "between" in posterior:
                for name in self.regressors:
                    entries.append((f"mundlak_{name}", posterior["between"].sel(coef=name).values))
        return pd.DataFrame([summary_row(term, draws, self.spec["n_obs"], self.divergences)
                             for term, draws in entries])

    def attributes(self) -> dict[str, str]:
        """Provenance as netCDF-safe attributes (JSON strings)."""
        return provenance_attributes(self.model_name, self.spec, self.priors, self.data_hash,
                                     self.seed, self.versions, self.wall_times)

    def save_netcdf(self, path: str | Path) -> Path:
        """Write the InferenceData with spec, priors, data hash, seed and versions attached.

        The attributes are set on the file (every group), not on ``self.idata``.
        """
        return save_with_attributes(self.idata, path, self.attributes())


# --------------------------------------------------------------------------------------------
# Public fitting function
# --------------------------------------------------------------------------------------------


def resolve_priors(
    priors: PanelPriors | dict[str, Any] | Sequence[str] | None, design: PanelDesign, link: str
) -> PanelPriors:
    """Merge user priors (object, mapping or ``name=family(...)`` strings) with the defaults."""
    return PanelPriors.coerce(priors).resolve(design.scales(link))


def fit_bayes_twfe(
    df: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    unit: str,
    time: str | None = None,
    priors: PanelPriors | dict[str, Any] | Sequence[str] | None = None,
    likelihood: str = "normal",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    sampler: str = "nutpie",
    progressbar: bool = False,
    parametrisation: str = "mundlak",
    target_accept: float | None = None,
    unit_effects: str = "auto",
    reuse_compiled: bool = True,
) -> BayesPanelFit:
    """Fit the hierarchical Bayesian counterpart of a TWFE regression.

    Model (``parametrisation="mundlak"``)::

        y_it  = alpha + x~_it' beta + u_i + tau_t + e_it
        x~_it = x_it with unit and year means removed (two-way demeaned)
        u_i   = (xbar_i - xbar)' lambda + unit_sd * z_i,   z_i ~ N(0, 1)
        tau   ~ ZeroSumNormal(year_sd)
        e_it  ~ N(0, sigma)  |  StudentT(nu, 0, sigma)  |  y ~ NegBin(exp(eta), alpha)

    Under weak priors the posterior mean of beta equals the TWFE (within) estimate.

    Parameters
    ----------
    df : DataFrame
        One row per unit and year.
    outcome, regressors, unit, time : str
        Column names; ``time=None`` gives unit effects only.
    priors : PanelPriors, dict or sequence of str, optional
        Overrides of the data-scaled defaults (:mod:`models.priors`).
    likelihood : {"normal", "student_t", "negbin"}
    draws, tune, chains, seed : int
    sampler : {"nutpie", "pymc", "numpyro"}
    progressbar : bool
    parametrisation : {"mundlak", "naive", "mundlak_raw"}
        ``naive`` and ``mundlak_raw`` are for comparisons only (see the module docstring).
    target_accept : float, optional
        The sampler's target acceptance rate. Default: the sampler's own (0.8) except for the
        collapsed model, which uses :data:`COLLAPSED_TARGET_ACCEPT`.
    unit_effects : {"auto", "collapsed", "marginalised", "sampled"}
        ``marginalised`` integrates the unit offsets out exactly (normal likelihood only; they
        are then drawn from their exact conditional posterior after sampling); ``collapsed``
        also integrates out the intercept, Mundlak terms and year effects (normal priors on
        them needed); ``sampled`` samples the offsets (non-centred). ``auto`` takes the first
        of collapsed, marginalised, sampled that the likelihood and priors allow.
    reuse_compiled : bool
        For the collapsed and marginalised models with nutpie, compile once per model shape
        and re-use the compiled model for later designs of the same shape
        (:mod:`models.bayes_panel_compiled`); same model, same posterior, no 10-25 s compile.

    Returns
    -------
    BayesPanelFit
    """
    import pymc as pm

    start_total = _time.perf_counter()
    likelihood = _canonical_likelihood(likelihood)
    if sampler not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler!r}; use one of {SAMPLERS}.")
    design = prepare_panel(df, outcome, regressors, unit, time)
    if likelihood == "negbin":
        y = design.y
        bad = np.flatnonzero((y < 0) | (y != np.round(y)))
        if bad.size:
            raise ValueError(
                f"Negative binomial needs non-negative integer counts in {outcome!r}; row(s) "
                f"{list(df.index[bad[:5]])} break this."
            )
    link = "log" if likelihood == "negbin" else "identity"
    resolved = resolve_priors(priors, design, link)
    mode = _unit_effects_mode(likelihood, parametrisation, unit_effects, resolved, design)
    roles = _prior_roles(likelihood, parametrisation, time is not None)
    retry = target_accept is None and mode == "collapsed"
    if retry:
        target_accept = COLLAPSED_TARGET_ACCEPT
    from models.bayes_panel_compiled import reusable, sample_compiled

    compiled_path = mode in ("collapsed", "marginalised") and sampler == "nutpie" and (
        reuse_compiled and reusable(design, resolved))

    def sample(target: float | None):
        if compiled_path:
            return (*sample_compiled(design, resolved, mode, draws, tune, chains, seed,
                                     progressbar, target), None)
        model = build_twfe_model(design, resolved, likelihood, parametrisation, mode)
        return (*sample_model(model, sampler, draws, tune, chains, seed, progressbar, target),
                model)

    idata, times, model = sample(target_accept)
    divergences_before_retry = None
    first_divergences = int(idata.sample_stats["diverging"].sum())
    if retry and first_divergences > 0:
        divergences_before_retry = first_divergences
        target_accept = RETRY_TARGET_ACCEPT
        idata, retry_times, model = sample(target_accept)
        times = {key: times.get(key, 0.0) + value for key, value in retry_times.items()}
    fields = {"unit_effects": mode, "outcome": outcome, "unit": unit, "time": time,
              "likelihood": likelihood, "parametrisation": parametrisation, "sampler": sampler,
              "draws": draws, "tune": tune, "chains": chains, "target_accept": target_accept,
              "divergences_before_retry": divergences_before_retry,
              "compiled_model_reused": bool(compiled_path)}
    if compiled_path:
        start_post = _time.perf_counter()
        draw_unit_effects(idata, design, seed)
        add_observed_data(idata, design)
        return _finish_fit(idata, times, start_post, start_total, design, resolved, roles, seed,
                           fields)
    start_post = _time.perf_counter()
    if mode == "collapsed":
        add_linear_terms(idata, design, collapsed_stats(design, resolved), seed)
    if mode in ("collapsed", "marginalised"):
        draw_unit_effects(idata, design, seed)
    elif "log_likelihood" not in idata.groups():
        pm.compute_log_likelihood(
            idata,
            model=model,
            var_names=[outcome],
            progressbar=False,
            compile_kwargs={"mode": "NUMBA"},
        )
    # log_prior holds the configurable priors (what power-scaling perturbs), not the
    # hierarchical unit and year effects.
    prior_vars = [
        v.name
        for v in model.free_RVs
        if v.name in roles or v.name.startswith(("slope_", "between_"))
    ]
    if "log_prior" in idata.groups():
        del idata.log_prior
    pm.compute_log_prior(
        idata,
        model=model,
        var_names=prior_vars,
        progressbar=False,
        compile_kwargs={"mode": "NUMBA"},
    )
    if mode == "collapsed":
        idata.log_prior = idata.log_prior.assign(linear_terms_log_prior(
            idata.posterior, resolved.intercept,
            [resolved.term_prior("between", t) for t in design.regressors]))
    add_observed_data(idata, design)
    return _finish_fit(idata, times, start_post, start_total, design, resolved, roles, seed,
                       fields)


def _finish_fit(idata, times, start_post, start_total, design, resolved, roles, seed, fields):
    times["postprocess_s"] = _time.perf_counter() - start_post
    times["total_s"] = _time.perf_counter() - start_total
    spec = {
        **fields,
        "regressors": list(design.regressors),
        "n_obs": design.n_obs,
        "n_units": len(design.unit_labels),
        "n_years": len(design.time_labels),
    }
    fit = BayesPanelFit(
        idata=idata,
        spec=spec,
        priors=resolved.describe(roles),
        data_hash=design.data_hash(),
        seed=seed,
        versions=package_versions(),
        wall_times={k: round(v, 4) for k, v in times.items()},
    )
    idata.posterior.attrs.update(fit.attributes())
    return fit


# --------------------------------------------------------------------------------------------
# Exact conjugate posterior of the flat-prior Gaussian TWFE
# --------------------------------------------------------------------------------------------


def conjugate_twfe_draws(
    df: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    unit: str,
    time: str | None,
    n_draws: int = 4000,
    seed: int = 0,
) -> pd.DataFrame:
    """Exact posterior draws of the TWFE slopes under flat priors and Gaussian errors.

    With p(beta, effects, sigma^2) ∝ 1/sigma^2 the effects integrate out and, for the
    two-way demeaned data (y~, X~),

        sigma^2 | y ~ RSS / chi^2_nu,   beta | sigma^2, y ~ N(b, sigma^2 (X~'X~)^-1),

    with b the within (TWFE) estimate, RSS its residual sum of squares and
    nu = n - k - rank(unit and year indicators); marginally beta is multivariate t_nu(b,
    s^2 (X~'X~)^-1), s^2 = RSS / nu, i.e. the classical TWFE fit with iid standard errors.

    Returns
    -------
    DataFrame
        ``n_draws`` rows; one column per regressor and ``sigma``.
    """
    design = prepare_panel(df, outcome, regressors, unit, time)
    x = design.x_within
    y = design.y_within()
    gram = x.T @ x
    estimate = np.linalg.solve(gram, x.T @ y)
    residual = y - x @ estimate
    dof = design.n_obs - len(design.regressors) - design.fe_rank
    rss = float(residual @ residual)
    rng = np.random.default_rng(seed)
    sigma2 = rss / rng.chisquare(dof, size=n_draws)
    chol = np.linalg.cholesky(np.linalg.inv(gram))
    noise = rng.standard_normal((n_draws, len(design.regressors))) @ chol.T
    draws = estimate + noise * np.sqrt(sigma2)[:, None]
    out = pd.DataFrame(draws, columns=list(design.regressors))
    out["sigma"] = np.sqrt(sigma2)
    return out

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
  effects are integrated out too (``unit_effects="collapsed"``, :mod:`models.panel.collapsed`,
  the ``auto`` choice): NUTS samples beta and the scales sigma, unit_sd, year_sd (k + 3
  dimensions, all close to Gaussian), and every other term is drawn exactly afterwards. Same
  model, same posterior; tested against the Gaussian identity on the full covariance.
* With normal slope priors as well (the defaults) and nutpie, the slopes are integrated out
  too (:mod:`models.panel.scales`): beta | scales, y is normal and depends on sigma only, so
  NUTS samples the three log-scales through numba C callbacks cached on disk, and each draw
  gets exact draws of beta, then of the intercept, Mundlak terms, year and unit effects. The
  tests hold its density to the PyMC model's with beta integrated out.

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
nutpie, collapsed, target acceptance 0.65                              ~53,000    11-25 s
exact conjugate draws (flat priors, numpy; 290,000-540,000 measured)  ~430,000   none
=====================================================================  =========  ==========

The scales-only default (:mod:`models.panel.scales`) was measured later, on the same machine
under a load average of 7-9 (every number slower), against the collapsed model with sampled
slopes and the exact draws in the same run: bulk ESS/s 16,800 (NUTS 0.13 s, exact draws of
every integrated-out term 0.12 s, of which the unit effects 0.10 s; ESS ~4,200 of 4,000 draws)
against 14,600 (0.53 s; ESS ~7,700, NUTS on the slopes being antithetic) and 124,000 for the
exact draws (0.028 s): 7.4x, 4.4x leaving out the unit-effect draws (4x-15x over five runs at
loads of 7-16). NUTS is now mostly nutpie's own work per draw (4 x 2,000 draws of a
3-dimensional model take 60-130 ms at that load whatever the gradient costs; ours is ~1
microsecond). Nothing is compiled per process: the callbacks load from numba's disk cache in
~0.05 s (a machine's first run compiles them once, 8 s at a load of 12).

Three things made the collapsed model with sampled slopes fast, each measured on the benchmark
panel:

* Fewer, better-conditioned dimensions: 9 instead of 27, ~5 leapfrog steps per draw instead
  of ~7 at the same acceptance target. The fused kernel (:mod:`models.panel.collapsed_op`)
  factors only the (1 + k) x (1 + k) block when the year coordinates are decoupled, as in any
  balanced panel: 1.4 microseconds per gradient.
* One data container instead of ~20: nutpie looks each container up on every gradient, 8 of
  19 microseconds per step with separate containers.
* Converting nutpie's trace directly (:mod:`models.bayes.trace`): 7 ms instead of ~100 ms.

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
outcome's name (conditional on the unit effects; computed in numpy for the integrated-out case
and the negative binomial, :mod:`models.panel.negbin`, with ``pm.compute_log_likelihood``
otherwise) and a ``log_prior`` group holding the
configurable priors (intercept, slopes, Mundlak terms and scale parameters; not the
hierarchical unit and year effects; normal densities in numpy for the terms the collapsed
model draws afterwards), so LOO and power-scaling sensitivity work on every fit.
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from models.bayes.fit import PosteriorFit
from models.bayes.log_prior import compute_log_prior
from models.bayes.panel_priors import PanelPriors
from models.bayes.sampler import SAMPLERS, sample_model
from models.bayes.summary import summary_row
from models.panel import scales as scales_model
from models.panel.collapsed import (
    add_linear_terms,
    linear_terms_log_prior,
)
from models.panel.design import PanelDesign, prepare_panel
from models.panel.marginal import (
    add_observed_data,
    draw_unit_effects,
    restore_unit_effects,
)
from models.panel.model import (
    build_twfe_model,
    canonical_likelihood,
    collapsed_stats,
    prior_roles,
    unit_effects_mode,
)
from models.panel.negbin import add_negbin_log_likelihood
from models.panel.predictive import add_posterior_predictive
from models.panel.stored import unit_effects_left_out

__all__ = [
    "COLLAPSED_TARGET_ACCEPT", "RETRY_TARGET_ACCEPT", "SCALES_TARGET_ACCEPT", "BayesPanelFit",
    "conjugate_twfe_draws", "fit_bayes_twfe", "resolve_priors",
]


# --------------------------------------------------------------------------------------------
# PyMC model
# --------------------------------------------------------------------------------------------


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
# With the slopes integrated out NUTS sees three log-scales: 0.8 takes 2.9 leapfrog steps per
# draw against 2.7 at 0.65, and on the benchmark panel 0.65 diverged once where 0.8 did not
# (the five-year zhao2025 subsample diverges at both and is repeated at 0.9).
SCALES_TARGET_ACCEPT = 0.8


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BayesPanelFit(PosteriorFit):
    """A fitted Bayesian TWFE model (:class:`models.bayes.fit.PosteriorFit`).

    ``idata`` has ``posterior``, ``sample_stats`` (with ``diverging``), ``log_likelihood``
    (named after the outcome, one value per observation), ``log_prior``, ``observed_data`` and
    ``posterior_predictive`` (about 100 replicates of the outcome from the fit's likelihood,
    :mod:`models.panel.predictive`; not for the comparison-only parametrisations);
    ``spec`` the outcome, regressors, unit, time, likelihood, parametrisation, sampler, draws,
    tune, chains, n_obs, n_units and n_years; ``priors`` :meth:`PanelPriors.describe` of the
    priors used; ``data_hash`` that of :meth:`PanelDesign.data_hash`.
    """

    model_name: ClassVar[str] = "bayes_twfe"

    @property
    def regressors(self) -> list[str]:
        return list(self.spec["regressors"])

    def recomputed_on_load(self) -> dict[str, tuple[str, ...]]:
        """The unit effects drawn after sampling and the pointwise log-likelihood, when the
        unit effects were integrated out (:mod:`models.panel.stored`)."""
        return unit_effects_left_out(self.idata, self.spec)

    @classmethod
    def restore(cls, idata) -> None:
        restore_unit_effects(idata)

    def tidy(self, auxiliary: bool = True) -> pd.DataFrame:
        """One row per term: the slopes (named as the regressors), then, with ``auxiliary``,
        ``intercept``, ``sigma``, ``unit_sd``, ``year_sd``, ``nu``/``alpha`` and the Mundlak
        coefficients ``mundlak_<regressor>``; columns as :meth:`PosteriorFit.tidy`."""
        return super().tidy(auxiliary)

    def _build_tidy(self, auxiliary: bool) -> pd.DataFrame:
        if not auxiliary:
            # The slopes' rows of the full table, which the convergence checks build anyway:
            # R-hat and ESS are most of a summary's cost.
            full = self.tidy(auxiliary=True)
            return full.iloc[:len(self.regressors)].reset_index(drop=True)
        posterior = self.idata.posterior
        entries: list[tuple[str, np.ndarray]] = []
        slope = posterior["slope"]
        for name in self.regressors:
            entries.append((name, slope.sel(coef=name).values))
        for name in ("intercept", "sigma", "unit_sd", "year_sd", "nu", "alpha"):
            if name in posterior:
                entries.append((name, posterior[name].values))
        if "between" in posterior:
            for name in self.regressors:
                entries.append((f"mundlak_{name}", posterior["between"].sel(coef=name).values))
        return pd.DataFrame([summary_row(term, draws, self.spec["n_obs"], self.divergences)
                             for term, draws in entries])


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
    slope_prior=None,
    mundlak_columns: Sequence[str] | None = None,
    low_rank_mass_matrix: bool = False,
    integrate_slopes: bool = True,
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
        Overrides of the data-scaled defaults (:mod:`models.bayes.panel_priors`).
    likelihood : {"normal", "student_t", "negbin"}
    draws, tune, chains, seed : int
    sampler : {"nutpie", "pymc", "numpyro"}
    progressbar : bool
    parametrisation : {"mundlak", "naive", "mundlak_raw"}
        ``naive`` and ``mundlak_raw`` are for comparisons only (see the module docstring).
    target_accept : float, optional
        The sampler's target acceptance rate. Default: the sampler's own (0.8) except for the
        collapsed model, which uses :data:`SCALES_TARGET_ACCEPT` when it samples the scales
        only and :data:`COLLAPSED_TARGET_ACCEPT` otherwise, and repeats a run with divergent
        transitions at :data:`RETRY_TARGET_ACCEPT`.
    unit_effects : {"auto", "collapsed", "marginalised", "sampled"}
        ``marginalised`` integrates the unit offsets out exactly (normal likelihood only; they
        are then drawn from their exact conditional posterior after sampling); ``collapsed``
        also integrates out the intercept, Mundlak terms and year effects (normal priors on
        them needed); ``sampled`` samples the offsets (non-centred). ``auto`` takes the first
        of collapsed, marginalised, sampled that the likelihood and priors allow.
    reuse_compiled : bool
        For the collapsed and marginalised models with nutpie, compile once per model shape
        and re-use the compiled model for later designs of the same shape
        (:mod:`models.panel.compiled`); same model, same posterior, no 10-25 s compile.
    slope_prior : optional
        A joint prior on the slopes in place of the independent ones: an object with
        ``build(design, priors)`` (creates the Deterministic ``slope`` inside the model),
        ``prior_variables`` (its free variables, recorded in ``log_prior``), ``terms`` (the
        regressors it covers) and ``describe()`` (its record in the fit's priors). The event study
        (:mod:`models.event_study.bayes`) puts its event-time path priors here. Such a
        model is compiled for each fit.
    low_rank_mass_matrix : bool
        nutpie only, models compiled per fit: adapt a low-rank correction to the diagonal
        mass matrix (:func:`models.bayes.sampler.sample_model`), for the linear correlations
        of the sampled unit offsets with the intercept and Mundlak terms.
    mundlak_columns : sequence of str, optional
        Regressors whose unit means enter the Mundlak term (default all; see
        :func:`models.panel.design.prepare_panel`).
    integrate_slopes : bool
        For the collapsed model with nutpie and normal slope priors, integrate the slopes out
        too and sample only the scales (:mod:`models.panel.scales`; same posterior, drawn
        exactly given the scales). False samples the slopes with the scales.

    Returns
    -------
    BayesPanelFit
    """
    start_total = _time.perf_counter()
    likelihood = canonical_likelihood(likelihood)
    if sampler not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler!r}; use one of {SAMPLERS}.")
    design = prepare_panel(df, outcome, regressors, unit, time, mundlak_columns)
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
    mode = unit_effects_mode(likelihood, parametrisation, unit_effects, resolved, design)
    roles = prior_roles(likelihood, parametrisation, time is not None)
    retry = target_accept is None and mode == "collapsed"
    if retry:
        target_accept = COLLAPSED_TARGET_ACCEPT
    from models.panel.compiled import reusable, sample_compiled

    stats = collapsed_stats(design, resolved) if mode == "collapsed" else None
    scales_path = (mode == "collapsed" and sampler == "nutpie" and slope_prior is None
                   and integrate_slopes and scales_model.supports(design, resolved))
    if scales_path and retry:
        target_accept = SCALES_TARGET_ACCEPT
    compiled_path = not scales_path and mode in ("collapsed", "marginalised") and (
        sampler == "nutpie" and reuse_compiled and slope_prior is None
        and reusable(design, resolved))
    builder = None if slope_prior is None else slope_prior.build

    def sample(target: float | None):
        if scales_path:
            return (*scales_model.sample_scales(design, resolved, stats, draws, tune, chains,
                                                seed, progressbar, target), None)
        if compiled_path:
            return (*sample_compiled(design, resolved, mode, draws, tune, chains, seed,
                                     progressbar, target), None)
        model = build_twfe_model(design, resolved, likelihood, parametrisation, mode,
                                 slope_builder=builder)
        return (*sample_model(model, sampler, draws, tune, chains, seed, progressbar, target,
                              low_rank_mass_matrix),
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
              "compiled_model_reused": bool(compiled_path or scales_path),
              "low_rank_mass_matrix": bool(low_rank_mass_matrix and not compiled_path
                                           and not scales_path)}
    if scales_path:
        fields["nuts_parameters"] = list(scales_model.scale_names(design))
        start_post = scales_model.complete_posterior(idata, design, resolved, stats, seed,
                                                     times)
        return _finish_fit(idata, times, start_post, start_total, design, resolved, roles,
                           seed, fields)
    if compiled_path:
        start_post = _time.perf_counter()
        draw_unit_effects(idata, design, seed)
        add_posterior_predictive(idata, design, seed)
        add_observed_data(idata, design)
        return _finish_fit(idata, times, start_post, start_total, design, resolved, roles, seed,
                           fields)
    import pymc as pm

    start_post = _time.perf_counter()
    if mode == "collapsed":
        add_linear_terms(idata, design, stats, seed)
    if mode in ("collapsed", "marginalised"):
        draw_unit_effects(idata, design, seed)
        add_posterior_predictive(idata, design, seed)
    elif likelihood == "negbin":
        # The model holds the negative binomial as one summed Potential, which has no
        # pointwise form for PyMC to evaluate.
        add_negbin_log_likelihood(idata, design, parametrisation)
    elif "log_likelihood" not in idata.groups():
        pm.compute_log_likelihood(
            idata,
            model=model,
            var_names=[outcome],
            progressbar=False,
            compile_kwargs={"mode": "NUMBA"},
        )
    if mode == "sampled" and parametrisation == "mundlak":
        add_posterior_predictive(idata, design, seed, likelihood=likelihood)
    # log_prior holds the configurable priors (what power-scaling perturbs), not the
    # hierarchical unit and year effects.
    extra = () if slope_prior is None else tuple(slope_prior.prior_variables)
    prior_vars = [
        v.name
        for v in model.free_RVs
        if v.name in roles or v.name in extra or v.name.startswith(("slope_", "between_"))
    ]
    compute_log_prior(idata, model, prior_vars)
    if mode == "collapsed":
        idata.log_prior = idata.log_prior.assign(linear_terms_log_prior(
            idata.posterior, resolved.intercept,
            [resolved.term_prior("between", t) for t in design.regressors]))
    add_observed_data(idata, design)
    described = None if slope_prior is None else (tuple(slope_prior.terms),
                                                   slope_prior.describe())
    return _finish_fit(idata, times, start_post, start_total, design, resolved, roles, seed,
                       fields, described)


def _finish_fit(idata, times, start_post, start_total, design, resolved, roles, seed, fields,
                slope_priors=None):
    times["postprocess_s"] = _time.perf_counter() - start_post
    times["total_s"] = _time.perf_counter() - start_total
    spec = {
        **fields,
        "regressors": list(design.regressors),
        "n_obs": design.n_obs,
        "n_units": len(design.unit_labels),
        "n_years": len(design.time_labels),
    }
    priors = resolved.describe(roles)
    if slope_priors is not None:
        # The joint prior replaces the independent slope priors of the terms it covers.
        terms, record = slope_priors
        priors = {k: v for k, v in priors.items()
                  if k.removeprefix("slope.") not in terms}
        priors.update(record)
    return BayesPanelFit.record(idata, spec=spec, priors=priors,
                                data_hash=design.data_hash(), seed=seed, times=times)


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

"""The collapsed Gaussian TWFE with the slopes integrated out too: NUTS on the scales alone.

Model: that of :mod:`models.panel.bayes` (normal likelihood, ``mundlak`` parametrisation),
with normal priors on the slopes, the intercept and the Mundlak terms. Given the scales
(sigma, unit_sd, year_sd) every other term is Gaussian: :mod:`models.panel.collapsed`
integrates out the intercept, Mundlak terms, year and unit effects, and
:mod:`models.panel.scales_op` the slopes as well. So NUTS (nutpie) samples only
theta = (log sigma, log unit_sd[, log year_sd]), 2 or 3 dimensions, through C callbacks that
numba compiles once per machine and caches on disk; afterwards each draw gets one exact draw
of the slopes from N(A^-1 b, A^-1) given its sigma, then of the intercept, Mundlak terms and
year effects given its scales (:func:`models.panel.collapsed.add_linear_terms`). The joint
draws are those of the PyMC model of :func:`models.panel.model.build_twfe_model`: the same
posterior as sampling the slopes, with independent slope draws within each draw of the
scales. The tests hold the callback's density to that model's.

Used by :func:`models.panel.bayes.fit_bayes_twfe` when the collapsed model applies, the slope
priors are normal and each scale prior is one of :data:`models.panel.scales_op.SCALE_FAMILIES`
(every positive family of :mod:`models.bayes.priors`).
"""

from __future__ import annotations

import time as _time
from typing import Any

import numpy as np

from models.bayes.panel_priors import PanelPriors
from models.panel.collapsed import CollapsedStats, add_linear_terms, pack_stats
from models.panel.design import PanelDesign
from models.panel.scales_op import HEADER, SCALE_FAMILIES

SCALE_NAMES = ("sigma", "unit_sd", "year_sd")
# Chains start at the rough moment estimates of the scales times exp(U(-JITTER, JITTER)).
JITTER = 0.5


def scale_names(design: PanelDesign) -> tuple[str, ...]:
    """The sampled scales: sigma, unit_sd and, with period effects, year_sd."""
    return SCALE_NAMES if design.time_idx is not None else SCALE_NAMES[:2]


def supports(design: PanelDesign, priors: PanelPriors) -> bool:
    """Whether the scales-only sampler expresses these priors: normal slopes, scale priors
    of a family the kernels know (the intercept and Mundlak priors are the collapsed
    model's business)."""
    slopes = all(priors.term_prior("slope", t).family == "normal" for t in design.regressors)
    return slopes and all(getattr(priors, name).family in SCALE_FAMILIES
                          for name in scale_names(design))


def spectral_block(gram: np.ndarray, cross: np.ndarray, prior_mean: np.ndarray,
                   prior_sd: np.ndarray) -> tuple[np.ndarray, ...]:
    """A normal block in its prior-whitened eigenbasis, for a likelihood
    exp(c'x / u - x'Gx / (2u)) times the prior N(m, diag(s^2)): with
    diag(s) G diag(s) = U diag(lam) U', p = U'(s * c) and q = U'(m / s), the precision is
    A = diag(1/s) U diag(lam / u + 1) U' diag(1/s) and A^-1 b = diag(s) U (p / u + q) /
    (lam / u + 1). Returns (lam, p, q, U); 1/2 b'A^-1 b - 1/2 log|A diag(s^2)| - 1/2 ||q||^2
    is then a sum over lam (:func:`models.panel.scales_op.gaussian_block`)."""
    whitened = prior_sd[:, None] * gram * prior_sd[None, :]
    lam, basis = np.linalg.eigh(0.5 * (whitened + whitened.T))
    lam = np.maximum(lam, 0.0)  # a positive semi-definite Gram matrix, up to rounding
    return lam, basis.T @ (prior_sd * cross), basis.T @ (prior_mean / prior_sd), basis


def balanced(stats: CollapsedStats) -> bool:
    """Whether the collapsed density has the closed form of the balanced panel: one group of
    units (all with the same number of rows) and year coordinates decoupled from the rest."""
    return stats.group_units.shape[0] == 1 and stats.dense_size == stats.n_fixed


def pack_scales(design: PanelDesign, priors: PanelPriors, stats: CollapsedStats
                ) -> np.ndarray:
    """Everything the callbacks read, as one float vector: the header (its length, the number
    of scales, (family code, two parameters) for sigma, unit_sd, year_sd, k, the form), the
    constant, the slope block of :func:`spectral_block` with the prior sds, then either the
    balanced form's numbers (:func:`balanced`) or :func:`models.panel.collapsed.pack_stats`.
    """
    header = np.zeros(HEADER)
    names = scale_names(design)
    header[1] = len(names)
    for j, name in enumerate(SCALE_NAMES):
        prior = getattr(priors, name)
        if name not in names:
            continue
        values = [value for _, value in prior.params] + [0.0, 0.0]
        header[2 + 3 * j: 5 + 3 * j] = [SCALE_FAMILIES[prior.family], *values[:2]]
    slope_priors = [priors.term_prior("slope", t).kwargs for t in design.regressors]
    slope_sd = np.array([p["sigma"] for p in slope_priors], dtype=float)
    lam, p, q, basis = spectral_block(stats.sxx, stats.sxy,
                                      np.array([p["mu"] for p in slope_priors], dtype=float),
                                      slope_sd)
    header[11] = len(design.regressors)
    constant = -0.5 * float(q @ q)
    if balanced(stats):
        header[12] = 1.0
        fixed = slice(0, stats.n_fixed)
        lam_f, p_f, q_f, _ = spectral_block(stats.group_zz[0][fixed, fixed],
                                            stats.group_zy[0][fixed], stats.prior_mean,
                                            stats.prior_sd)
        constant += -0.5 * float(q_f @ q_f) - 0.5 * design.n_obs * np.log(2.0 * np.pi)
        rest = np.concatenate([
            [stats.group_units[0], stats.group_rows[0], design.n_obs, stats.group_syy[0],
             stats.syy_within, stats.n_fixed, stats.year_cross.size],
            lam_f, p_f, q_f, np.diag(stats.year_gram), stats.year_cross])
    else:
        rest = pack_stats(stats)
    packed = np.concatenate([header, [constant], lam, p, q, slope_sd, basis.ravel(), rest])
    packed[0] = packed.size
    return np.ascontiguousarray(packed, dtype=np.float64)


def moment_scales(design: PanelDesign, stats: CollapsedStats) -> np.ndarray:
    """Rough estimates of the scales, where the chains start: sigma from the within residual
    after slopes and year effects, unit_sd from the spread of the unit means, year_sd from
    the least-squares year effects."""
    k = len(design.regressors)
    n_units = float(stats.group_units.sum())
    residual = stats.syy_within - stats.sxy @ np.linalg.lstsq(stats.sxx, stats.sxy,
                                                              rcond=None)[0]
    eta = np.zeros(0)
    if stats.year_gram.size:
        eta = np.linalg.lstsq(stats.year_gram, stats.year_cross, rcond=None)[0]
        residual -= stats.year_cross @ eta
    dof = max(design.n_obs - n_units - k - eta.size, 1.0)
    sigma = np.sqrt(max(residual, 0.0) / dof)
    floor = 1e-3 * sigma + 1e-12
    # The T-weighted least-squares residual of the unit means on (1, Mundlak regressors)
    # estimates unit_sd^2 + sigma^2 / T.
    fixed = slice(0, stats.n_fixed)
    gram = stats.group_zz[:, fixed, fixed].sum(axis=0)
    cross = stats.group_zy[:, fixed].sum(axis=0)
    between_ss = float(stats.group_syy.sum()) - cross @ np.linalg.lstsq(gram, cross,
                                                                         rcond=None)[0]
    rows = design.n_obs / n_units
    between = between_ss / design.n_obs - sigma**2 / rows
    values = [sigma, np.sqrt(max(between, floor**2))]
    if design.time_idx is not None:
        values.append(np.sqrt(max(float(np.mean(eta**2)), floor**2)))
    return np.log(np.maximum(values, floor))


def compiled_scales_model(design: PanelDesign, priors: PanelPriors, stats: CollapsedStats):
    """The nutpie model of the scales of ``design``: the cached C callbacks of
    :mod:`models.panel.scales_callbacks` (or, unbalanced, of
    :mod:`models.panel.scales_general_callbacks`) bound to this design's packed data
    (:func:`pack_scales`), chains started near :func:`moment_scales`."""
    import pandas as pd
    from nutpie.compile_pymc import CompiledPyMCModel

    from models.panel.scales_callbacks import expand_callback

    if balanced(stats):
        from models.panel.scales_callbacks import logp_callback
    else:
        from models.panel.scales_general_callbacks import logp_callback
    names = list(scale_names(design))
    packed = pack_scales(design, priors, stats)
    start = moment_scales(design, stats)

    def initial_point(seed):
        rng = np.random.default_rng(seed)
        return start + rng.uniform(-JITTER, JITTER, start.size)

    n = len(names)
    return CompiledPyMCModel(
        dims={}, _n_dim=n, _coords={"unconstrained_parameter": pd.Index(
            [f"{name}_log__" for name in names])},
        _shapes={name: () for name in names}, compiled_logp_func=logp_callback,
        compiled_expand_func=expand_callback, initial_point_func=initial_point,
        shared_data={}, user_data=packed, n_expanded=n,
        shape_info=(names, [slice(j, j + 1) for j in range(n)], [() for _ in names]),
        logp_func=None, expand_func=None)


def add_slopes(idata, design: PanelDesign, packed: np.ndarray, seed: int) -> None:
    """One exact draw of the slopes per posterior draw, from beta | sigma, y."""
    from models.panel.scales_op import draw_slopes

    post = idata.posterior
    sigma = post["sigma"].values
    rng = np.random.default_rng([seed, 0x510E])
    noise = rng.standard_normal((sigma.size, len(design.regressors)))
    slopes = draw_slopes(np.ascontiguousarray(sigma, dtype=float).ravel(), packed, noise)
    idata.posterior = post.assign(
        slope=(("chain", "draw", "coef"), slopes.reshape(sigma.shape + (noise.shape[1],)))
    ).assign_coords(coef=list(design.regressors))


def sample_scales(
    design: PanelDesign,
    priors: PanelPriors,
    stats: CollapsedStats,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    progressbar: bool = False,
    target_accept: float | None = None,
) -> tuple[Any, dict[str, float]]:
    """NUTS on the scales, then the exact draws of the slopes, intercept, Mundlak terms and
    year effects (the unit effects follow in :func:`complete_posterior`).

    Returns the InferenceData (posterior and sample_stats) and the wall times ``compile_s``
    (loading the callbacks), ``nuts_s`` (sampling and trace conversion) and
    ``exact_draws_s``.
    """
    import nutpie.compile_pymc  # noqa: F401 - imported before the clock: ArviZ, not numba

    from models.bayes.sampler import run_nutpie

    start = _time.perf_counter()
    # The first call in a process loads the callbacks from numba's cache (or, on a machine
    # that never ran them, compiles them): that is the compile time.
    compiled = compiled_scales_model(design, priors, stats)
    times: dict[str, float] = {"compile_s": _time.perf_counter() - start}
    idata, times["nuts_s"] = run_nutpie(compiled, draws, tune, chains, seed, progressbar,
                                        target_accept)
    start = _time.perf_counter()
    add_slopes(idata, design, compiled.user_data, seed)
    add_linear_terms(idata, design, stats, seed)
    times["exact_draws_s"] = _time.perf_counter() - start
    return idata, times


def scales_log_prior(posterior, design: PanelDesign, priors: PanelPriors,
                     stats: CollapsedStats) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Log prior densities of the slopes and scales at the draws, as (dims, values) pairs for
    a ``log_prior`` group (the kernels' own densities, which the tests hold to PyMC's)."""
    from models.panel.scales_op import scale_log_priors

    names = scale_names(design)
    packed = pack_scales(design, priors, stats)
    shape = posterior["sigma"].shape
    values = np.stack([posterior[n].values.ravel() for n in names], axis=1)
    densities = scale_log_priors(packed, np.ascontiguousarray(values, dtype=float))
    out = {name: (("chain", "draw"), densities[:, j].reshape(shape))
           for j, name in enumerate(names)}
    slope_priors = [priors.term_prior("slope", t).kwargs for t in design.regressors]
    mu = np.array([p["mu"] for p in slope_priors])
    sd = np.array([p["sigma"] for p in slope_priors])
    z = (posterior["slope"].values - mu) / sd
    out["slope"] = (("chain", "draw", "coef"),
                    -0.5 * z * z - np.log(sd) - 0.5 * np.log(2.0 * np.pi))
    return out


def complete_posterior(idata, design: PanelDesign, priors: PanelPriors, stats: CollapsedStats,
                       seed: int, times: dict[str, float]) -> float:
    """The rest of a scales-only fit after :func:`sample_scales`: the unit effects' exact
    draws (``unit_effect_draws_s``, also added to ``exact_draws_s``; ``sampling_s`` is then
    NUTS plus every exact draw),
    the pointwise log-likelihood and the log prior (``log_density_s``), the posterior
    predictive and the observed data. Returns when the post-processing began."""
    import xarray as xr

    from models.panel.collapsed import linear_terms_log_prior
    from models.panel.marginal import add_log_likelihood, add_observed_data, add_unit_effects
    from models.panel.predictive import add_posterior_predictive

    start = _time.perf_counter()
    add_unit_effects(idata, design, seed)
    times["unit_effect_draws_s"] = _time.perf_counter() - start
    times["exact_draws_s"] += times["unit_effect_draws_s"]
    times["sampling_s"] = times["nuts_s"] + times["exact_draws_s"]
    start_post = _time.perf_counter()
    add_log_likelihood(idata, design)
    post = idata.posterior
    densities = scales_log_prior(post, design, priors, stats)
    densities.update(linear_terms_log_prior(
        post, priors.intercept, [priors.term_prior("between", t) for t in design.regressors]))
    if "log_prior" in idata.groups():
        del idata.log_prior
    idata.add_groups({"log_prior": xr.Dataset(densities, coords={
        "chain": post.chain, "draw": post.draw, "coef": list(design.regressors)})})
    times["log_density_s"] = _time.perf_counter() - start_post
    add_posterior_predictive(idata, design, seed)
    add_observed_data(idata, design)
    return start_post

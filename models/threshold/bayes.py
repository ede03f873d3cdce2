"""Bayesian panel threshold regression with the thresholds marginalised exactly over a grid.

Model
-----
For unit i, period t and k = 0, 1, 2 or 3 thresholds g_1 < ... < g_k,

    y_it = mu_i + F_it' beta + sum_{r=1}^{k+1} x_it' delta_r 1[g_{r-1} <= q_it < g_r] + e_it,
    e_it ~ N(0, sigma^2),    g_0 = -inf, g_{k+1} = +inf,

with F the regime-independent regressors (and period dummies, first period dropped, when
``time=True``), x the regressors whose slopes switch, q the threshold variable. The regime
indicator uses the strict inequality q < g of Hansen's program.

Unit effects: the within transformation
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The unit effects mu_i are removed exactly as in the frequentist estimator
(:func:`models.threshold.hansen.fit_panel_threshold`): every unit's column of periods is mapped by
``W0`` (:func:`models.threshold.search.within_matrix`), ``demean="hansen"`` (demean and drop the
last demeaned row, n(T-1) rows, Hansen's program) or ``"all"`` (keep all nT demeaned rows). The
model is the Gaussian likelihood of the m transformed rows with the degrees of freedom of the
within regression,

    log p(y~ | theta, gamma, sigma) = -(n(T-1)/2) log(2 pi sigma^2) - S(theta, gamma) / (2 sigma^2),

S the residual sum of squares over the transformed rows. For ``"all"`` this is the exact
likelihood of the within-transformed data (the flat-prior integrated likelihood of the unit
effects: the demeaned data live in an n(T-1)-dimensional subspace on which their density is
spherical). For ``"hansen"`` it is Hansen's least-squares criterion read as a likelihood (the
kept rows are treated as independent), so the posterior mode of gamma is his estimate. Either
way, at each gamma the maximiser over theta is the frequentist fit and the profile of the
likelihood over gamma is Hansen's likelihood-ratio curve, LR(g) = (S(g) - S(g_hat)) / sigma^2.
Unit effects are not sampled: with a flat prior they integrate out exactly to the above.

Changepoint prior
~~~~~~~~~~~~~~~~~
The thresholds live on the frequentist candidate grid: Hansen's quantile grid of the threshold
variable (:func:`models.threshold.search.hansen_grid`, ``grid_size`` quantile steps, the first
trimming fraction cut from both ends), duplicate values removed (a repeated value is the same
model and would only double its prior weight). The prior over ordered configurations
j_1 < ... < j_k of grid indices is

* ``"uniform"`` (default): uniform over the grid points, i.e. uniform over the quantiles of q,
  on the configurations whose consecutive indices are at least ``min_gap`` grid steps apart
  (default ``round(grid_size * trim[r])``, the neighbourhood Hansen's sequential search
  excludes around a threshold already found);
* ``"uniform_value"``: uniform in the value of q (each grid point weighted by the width of its
  cell), with the same ordering and gap rule;
* an array of non-negative weights, one per grid point (the product over the thresholds, with
  the same ordering and gap rule).

Grid sizes: 400 quantile steps (Hansen's, 393 candidates at 1% trimming) for one and two
thresholds, 60 steps for three (a 60^3/6 = 36,000-configuration triple grid instead of
10 million); ``grid_size`` overrides.

Exact marginalisation and its cost
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Write the regime-split slopes cumulatively, x' delta_{k+1} + sum_r x' d_r 1[q < g_r] with
d_r = delta_r - delta_{r+1}. With B = W[F, x] (every model holds these columns), theta_0 =
(beta, delta_{k+1}) and C(g) = W(x 1[q < g]) the transformed split column,

    S = R_0 - 2 sum_r d_r' a(g_r) + sum_{r,s} d_r' G(g_r, g_s) d_s,
    R_0 = y'y - 2 theta_0' B'y + theta_0' B'B theta_0,   a(g) = C(g)'y - C(g)'B theta_0,

so the likelihood of every configuration follows from the sufficient statistics y'y, B'y,
B'B, C(g)'y, C(g)'B for each candidate g and G(g, h) = C(g)'C(h) for each pair.
C(g)'v = sum_{q_it < g} x_it (W'v)_it is a cumulative sum over the observations sorted by q
(one pass for all candidates, :class:`models.threshold.search.SortedPanel`); the pair Gram is
G(g, h) = sum_{q < min(g, h)} x x' - U(g)'U(h), where W0'W0 = I - V V' (V has rank 1 for
``"all"``, 2 for ``"hansen"``) and U(g)_i = V' x_i 1[q_i < g] is a per-unit projection, so
all pairs cost one (n rank(V) x K) product. Inside the PyMC model the log density is the
log-sum-exp over the admissible configurations of log prior + log likelihood, one custom Op
(``MarginalLogLik``, :mod:`models.threshold.op`) whose numba kernel makes one pass over
the configurations for the value and the gradient in the slopes and sigma together: its cost
does not depend on the number of observations (Hansen's data: 393 configurations for one
threshold, 75,855 for two), and the compiled graph stays a handful of nodes. Terms more than
46 log units below the largest (each < 1e-20 of it) are not exponentiated; with fewer than
10^5 of them they move the sum by less than double-precision rounding.

Sampling and recovery of the thresholds
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The slopes and sigma are sampled by NUTS (nutpie). The slopes are sampled in whitened
coordinates z, theta = theta_hat + L z, with theta_hat and L L' = s^2 (Z'Z)^{-1} from the
least-squares fit at the profile-likelihood configuration (an affine map with a constant
Jacobian, so the model is unchanged; it removes the strong correlations between, e.g.,
Q, Q^2 and Q^3 that a diagonal mass matrix cannot). Their priors are added as a potential.
After sampling, each draw gets one exact draw of the thresholds from their conditional
p(gamma | theta, sigma, y) (a categorical over the configurations), so the joint draws are
draws of the full model; the Rao-Blackwellised posterior of each threshold over the grid, the
average of these conditionals, is stored too (group ``threshold_posterior``). As in the
log-sum-exp of the model, configurations below 1e-20 of the most probable one are not
exponentiated (probability zero; together they hold less than the rounding error of the sums,
``spec["negligible_log_ratio"]``).

Stored for model checking
~~~~~~~~~~~~~~~~~~~~~~~~~
* ``log_likelihood`` (variable named after the outcome, one value per transformed row):
  marginalised over the thresholds for importance-sampling LOO,
  l_i(theta, sigma) = -log sum_gamma p(gamma | theta, sigma, y) / p(y_i | theta, gamma, sigma),
  whose posterior mean of exp(-l_i) is exactly 1 / p(y_i | y_-i), as for the full-parameter
  pointwise likelihood, but with gamma averaged out rather than drawn. The sum runs over the
  configurations holding all but 1e-6 of the conditional mass (at most 32): an approximation
  when more are needed, whose mean retained mass is recorded in ``spec``
  (``pointwise_retained_mass``, with the rule in ``pointwise_rule``; Hansen's double-threshold
  data: about 0.95, the conditional of the pair being spread thinly). Within a unit,
  configurations that put the same observations below each threshold give identical
  residuals and are summed once (exact).
  Each row's normalising constant carries the weight n(T-1)/m so that the rows sum to the
  likelihood above.
* ``log_prior``: the log prior density of every slope (``slope``), of ``sigma`` and of the
  sampled threshold configuration (``thresholds``).
* the log marginal likelihood log p(y~ | k) (:func:`log_marginal_likelihood`) when every slope
  prior is normal: the slopes integrate out in closed form given (gamma, sigma), sigma by
  48-point Gauss-Legendre quadrature in log sigma over +-12 posterior sd, and gamma by the sum
  over the grid (configurations whose profile likelihood is more than 60 log units below the
  best are dropped: their share is below e^-50).

Modules
~~~~~~~
This module is the public entry point; the work is split by job:

* :mod:`models.threshold.data`: transformed panel, candidate statistics, changepoint prior;
* :mod:`models.threshold.likelihood`: log likelihood of every configuration, least
  squares at every configuration (profile fit);
* :mod:`models.threshold.kernels`: numba kernels (sum over configurations, conditional
  draws of the thresholds, pointwise log likelihood), compiled once and cached on disk;
* :mod:`models.threshold.op`: the marginal likelihood as a PyTensor Op;
* :mod:`models.threshold.priors`: slope and sigma priors;
* :mod:`models.threshold.model`: the PyMC model and nutpie sampling;
* :mod:`models.threshold.posterior`: threshold recovery, pointwise log likelihood, log
  marginal likelihood, log prior;
* :mod:`models.threshold.bayes`: :class:`BayesThresholdFit`, :func:`fit_bayes_threshold`
  and :func:`compare_threshold_counts`.
"""

from __future__ import annotations

import time as _time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from models.bayes.fit import PosteriorFit
from models.bayes.panel_priors import PanelPriors
from models.bayes.summary import HDI_PROB
from models.threshold.data import (
    DEFAULT_GRID_SIZE,
    DEFAULT_TRIM,
    MAX_THRESHOLDS,
    ThresholdData,
    admissible_configs,
    prepare_threshold_data,
    threshold_log_prior,
)
from models.threshold.kernels import NEGLIGIBLE
from models.threshold.likelihood import profile_fit
from models.threshold.model import build_threshold_model, sample_nutpie, whitening
from models.threshold.posterior import (
    POINTWISE_MASS,
    POINTWISE_MAX_CONFIGS,
    log_marginal_likelihood,
    log_prior_dataset,
    pointwise_loglik,
    recover_thresholds,
)
from models.threshold.predictive import add_threshold_predictive
from models.threshold.priors import resolve_slope_priors
from models.threshold.stored import THRESHOLD_STREAM, data_dataset, restore_log_likelihood


@dataclass(frozen=True, eq=False)
class BayesThresholdFit(PosteriorFit):
    """A fitted Bayesian panel threshold model.

    Attributes
    ----------
    idata
        ``posterior`` (``slope`` by ``coef``, ``sigma``, ``gamma`` by ``threshold`` and the grid
        index ``gamma_index``), ``sample_stats``, ``log_likelihood`` (marginalised over the
        thresholds), ``log_prior``, ``posterior_predictive`` (replicates of the outcome in
        levels, unit effects drawn back, :mod:`models.threshold.predictive`),
        ``observed_data`` (the outcome in levels) and ``threshold_posterior``
        (Rao-Blackwellised probability of every candidate).
    spec, priors, data_hash, seed, versions, wall_times
        Provenance, saved with the netCDF file.
    log_marginal_likelihood
        log p(y~ | k) (NaN when a slope prior is not normal).
    """

    grid: np.ndarray
    threshold_probability: np.ndarray
    log_marginal_likelihood: float
    model_name: ClassVar[str] = "bayes_threshold"

    @property
    def n_thresholds(self) -> int:
        return int(self.spec["n_thresholds"])

    def tidy(self, auxiliary: bool = True) -> pd.DataFrame:
        """One row per term: slopes (fixed, then ``<x>_regime<j>``), ``gamma_1``.. and, with
        ``auxiliary``, ``sigma``; columns as :meth:`PosteriorFit.tidy` plus ``kind``
        (``slope``, ``time_effect``, ``threshold``, ``auxiliary``)."""
        return super().tidy(auxiliary)

    def _build_tidy(self, auxiliary: bool) -> pd.DataFrame:
        import arviz as az

        posterior = self.idata.posterior
        entries: list[tuple[str, str, np.ndarray]] = []
        n_plain = int(self.spec["n_plain"])
        for j, term in enumerate(self.spec["terms"]):
            kind = "time_effect" if n_plain <= j < int(self.spec["n_fixed"]) else "slope"
            entries.append((term, kind, posterior["slope"].sel(coef=term).values))
        for r in range(self.n_thresholds):
            entries.append((f"gamma_{r + 1}", "threshold",
                            posterior["gamma"].isel(threshold=r).values))
        if auxiliary:
            entries.append(("sigma", "auxiliary", posterior["sigma"].values))
        rows = []
        for term, kind, draws in entries:
            flat = draws.reshape(-1)
            hdi = az.hdi(flat, hdi_prob=HDI_PROB)
            with np.errstate(invalid="ignore", divide="ignore"):
                r_hat = float(az.rhat(draws)) if np.ptp(flat) > 0 else 1.0
                ess = float(az.ess(draws, method="bulk")) if np.ptp(flat) > 0 else float(
                    flat.size)
            rows.append(dict(term=term, kind=kind, estimate=float(flat.mean()),
                             std_error=float(flat.std(ddof=1)), ci_low=float(hdi[0]),
                             ci_high=float(hdi[1]), prob_positive=float((flat > 0).mean()),
                             r_hat=r_hat, ess_bulk=ess, n_obs=int(self.spec["n_obs"]),
                             divergences=self.divergences))
        return pd.DataFrame(rows)

    def loo(self):
        """PSIS-LOO (:func:`models.bayes.psis.loo`, ``arviz.loo``'s pointwise result) of the
        marginalised log likelihood, cached."""
        if "loo" not in self._cache:
            from models.bayes.psis import loo

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self._cache["loo"] = loo(self.idata)
        return self._cache["loo"]

    def threshold_posterior(self) -> pd.DataFrame:
        """Posterior probability of every candidate for each threshold (Rao-Blackwellised):
        columns ``gamma`` and ``gamma_1``, ``gamma_2``, ..."""
        frame = pd.DataFrame({"gamma": self.grid})
        for r in range(self.n_thresholds):
            frame[f"gamma_{r + 1}"] = self.threshold_probability[r]
        return frame

    def convergence_rows(self):
        """The slopes and sigma. The thresholds are exact conditional draws given each draw of
        them, so they inherit their mixing (their ESS is not checked: a threshold pinned to one
        candidate has no variance to measure)."""
        table = self.tidy(auxiliary=True)
        table = table[table["kind"] != "threshold"]
        return zip(table["term"], table["r_hat"], table["ess_bulk"], strict=True)

    def recomputed_on_load(self) -> dict[str, tuple[str, ...]]:
        """The pointwise log-likelihood, recomputed from the stored data
        (:mod:`models.threshold.stored`) unless the candidate prior was given as weights."""
        stored = "constant_data" in self.idata.groups()
        if stored and "log_likelihood" in self.idata.groups() and (
                self.spec["threshold_prior"] != "weights"):
            return {"log_likelihood": ()}
        return {}

    @classmethod
    def restore(cls, idata) -> None:
        restore_log_likelihood(idata)

    def extra_attributes(self) -> dict[str, Any]:
        """The log marginal likelihood, beside the common provenance."""
        return {"log_marginal_likelihood": repr(self.log_marginal_likelihood)}


def fit_bayes_threshold(
    data: pd.DataFrame,
    *,
    y: str,
    regime: str | Sequence[str],
    threshold: str,
    fixed: Sequence[str] = (),
    unit: str,
    period: str,
    n_thresholds: int = 1,
    demean: str = "hansen",
    time: bool = False,
    grid_size: int | None = None,
    trim: Sequence[float] = DEFAULT_TRIM,
    min_gap: Sequence[int] | None = None,
    threshold_prior: str | np.ndarray = "uniform",
    priors: PanelPriors | dict[str, Any] | Sequence[str] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    progressbar: bool = False,
    target_accept: float | None = None,
    pointwise: bool = True,
    marginal_likelihood: bool = True,
    stats: ThresholdData | None = None,
) -> BayesThresholdFit:
    """Fit the Bayesian panel threshold model with the thresholds marginalised over the grid.

    y~_it = F~_it' beta + sum_{r=1}^{k+1} [x 1(g_{r-1} <= q < g_r)]~_it' delta_r + e_it,
    e ~ N(0, sigma^2), ~ the within transformation ``demean``; (g_1 < ... < g_k) ~ the
    changepoint prior on the grid; beta, delta ~ ``priors`` (role ``slope``), sigma ~ ``priors``
    (role ``sigma``). See the module docstring for every choice.

    Parameters
    ----------
    data
        Balanced panel, one row per (unit, period).
    y, regime, threshold, fixed, unit, period, demean, time
        As :func:`models.threshold.hansen.fit_panel_threshold`.
    n_thresholds
        k, 0 to 3 (0: the linear within regression, for model comparison).
    grid_size, trim
        Quantile steps of the candidate grid (default 400 for k <= 2, 60 for k = 3) and the
        trimming fractions (``trim[0]`` cuts the grid's ends).
    min_gap
        Minimum distance in grid steps between consecutive thresholds (one per gap); default
        ``round(grid_size * trim[r])``.
    threshold_prior
        ``"uniform"``, ``"uniform_value"`` or weights per candidate.
    priors
        Slope and sigma priors (:class:`models.bayes.panel_priors.PanelPriors`, a mapping or
        ``role=family(...)`` strings).
    draws, tune, chains, seed, progressbar, target_accept
        nutpie settings (``target_accept`` None: nutpie's default, 0.8).
    pointwise, marginal_likelihood
        Compute the pointwise log likelihood / the log marginal likelihood.
    stats
        Pre-computed :class:`ThresholdData` (same grid) to skip the preparation.

    Returns
    -------
    BayesThresholdFit
    """
    import xarray as xr

    start_total = _time.perf_counter()
    if n_thresholds not in range(0, MAX_THRESHOLDS + 1):
        raise ValueError(f"n_thresholds must be 0, 1, 2 or 3, got {n_thresholds}")
    k = n_thresholds
    if len(trim) < max(k, 1):
        raise ValueError(f"trim needs one fraction per threshold, got {trim}")
    grid_size = int(grid_size or DEFAULT_GRID_SIZE[k])
    if stats is None:
        stats = prepare_threshold_data(data, y=y, regime=regime, threshold=threshold,
                                       fixed=fixed, unit=unit, period=period, demean=demean,
                                       time=time, grid_size=grid_size, trim=trim[0])
    gaps = (list(min_gap) if min_gap is not None
            else [max(int(round(grid_size * t)), 1) for t in trim[1:k]])
    log_prior_cfg = threshold_log_prior(stats.grid, k, threshold_prior, gaps)
    resolved = resolve_slope_priors(priors, stats, k)
    profile = profile_fit(stats, k, log_prior_cfg)
    centre, chol = whitening(profile)
    model = build_threshold_model(stats, k, resolved, log_prior_cfg, centre, chol)
    idata, times, _ = sample_nutpie(model, draws, tune, chains, seed, progressbar,
                                    target_accept=target_accept)

    start_post = _time.perf_counter()
    terms = stats.term_names(k)
    posterior = idata.posterior
    theta = posterior["slope"].values
    sigma = posterior["sigma"].values
    n_chains, n_draws = sigma.shape
    flat_theta = theta.reshape(-1, theta.shape[-1])
    flat_sigma = sigma.reshape(-1)
    rng = np.random.default_rng([seed, THRESHOLD_STREAM])
    recovered = recover_thresholds(flat_theta, flat_sigma, stats, k, log_prior_cfg, rng)
    index = recovered["index"].reshape(n_chains, n_draws, k)
    gamma = stats.grid[index]
    idata.posterior = posterior.drop_vars("slope_white")
    if k:
        idata.posterior = idata.posterior.assign(
            gamma=(("chain", "draw", "threshold"), gamma),
            gamma_index=(("chain", "draw", "threshold"), index),
        ).assign_coords(threshold=[f"gamma_{r + 1}" for r in range(k)])
    retained = 1.0
    if pointwise:
        loglik, retained = pointwise_loglik(flat_theta, flat_sigma, stats, k, recovered)
        idata.add_groups({"log_likelihood": xr.Dataset(
            {y: (("chain", "draw", "obs"), loglik.reshape(n_chains, n_draws, -1))},
            coords={"chain": posterior.chain, "draw": posterior.draw,
                    "obs": np.arange(stats.n_rows)})})
    idata.add_groups({"log_prior": log_prior_dataset(
        resolved, terms, theta, sigma, index, log_prior_cfg, posterior)})
    add_threshold_predictive(idata, stats, seed)
    idata.add_groups({"constant_data": data_dataset(data, dict(
        y=y, regime=list(stats.regime_names), threshold=threshold, fixed=list(fixed),
        unit=unit, period=period, demean=demean, time=bool(time), grid_size=grid_size,
        trim=float(trim[0])))})
    probability_group = xr.Dataset(
        {"probability": (("threshold", "candidate"), recovered["probability"]),
         "grid": ("candidate", stats.grid)},
        coords={"threshold": [f"gamma_{r + 1}" for r in range(k)],
                "candidate": np.arange(stats.n_candidates)})
    if k:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            idata.add_groups({"threshold_posterior": probability_group})
    log_ml = (log_marginal_likelihood(stats, k, resolved, log_prior_cfg, profile)
              if marginal_likelihood else float("nan"))
    times["postprocess_s"] = _time.perf_counter() - start_post
    times["total_s"] = _time.perf_counter() - start_total
    spec = {
        "outcome": y, "regime": list(stats.regime_names), "threshold": threshold,
        "fixed": list(stats.fixed_names), "n_plain": stats.n_plain,
        "n_fixed": stats.n_fixed, "terms": terms, "unit": unit, "period": period,
        "n_thresholds": k, "demean": demean, "time": bool(time), "grid_size": grid_size,
        "n_candidates": stats.n_candidates, "trim": list(trim), "min_gap": gaps,
        "threshold_prior": (threshold_prior if isinstance(threshold_prior, str)
                            else "weights"),
        "n_configurations": int(admissible_configs(log_prior_cfg).shape[0]),
        "sampler": "nutpie", "draws": draws, "tune": tune, "chains": chains,
        "n_obs": stats.n_units * stats.n_periods, "n_rows": stats.n_rows,
        "dof": stats.dof, "n_units": stats.n_units, "n_periods": stats.n_periods,
        "pointwise_retained_mass": retained,
        "pointwise_rule": {"mass": POINTWISE_MASS, "max_configurations": POINTWISE_MAX_CONFIGS},
        "negligible_log_ratio": NEGLIGIBLE,
        "profile_thresholds": [float(stats.grid[j]) for j in profile["configs"][profile["best"]]],
    }
    return BayesThresholdFit.record(
        idata, spec=spec, priors=resolved.describe(["slope", "sigma"]),
        data_hash=stats.data_hash, seed=seed, times=times, grid=stats.grid,
        threshold_probability=recovered["probability"], log_marginal_likelihood=log_ml)




def compare_threshold_counts(fits: dict[int, BayesThresholdFit], frequentist=None
                             ) -> pd.DataFrame:
    """LOO (``arviz.compare``) and log marginal likelihood of models with 0..3 thresholds.

    Parameters
    ----------
    fits
        k -> fit with k thresholds (same data, same transformation).
    frequentist
        Optional :class:`models.threshold.hansen.ThresholdResult` whose F tests (k-1 vs k) are shown
        beside model k.

    Returns
    -------
    pandas.DataFrame
        One row per k: ``n_thresholds, elpd_loo, se, p_loo, rank, weight, elpd_diff, dse,
        log_ml, posterior_prob`` (posterior probability of k under equal prior odds, from the
        marginal likelihoods), ``F``, ``F_p_value`` and ``pareto_k_bad`` (rows with k > 0.7).
    """
    import arviz as az

    loos = {f"k{k}": fit.loo() for k, fit in sorted(fits.items())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = az.compare(loos, ic="loo")
    rows = []
    log_ml = np.array([fits[k].log_marginal_likelihood for k in sorted(fits)])
    prob = (np.exp(log_ml - logsumexp(log_ml)) if np.all(np.isfinite(log_ml))
            else np.full(log_ml.size, np.nan))
    tests = getattr(frequentist, "tests", {}) if frequentist is not None else {}
    test_names = {1: "single", 2: "double", 3: "triple"}
    for j, k in enumerate(sorted(fits)):
        name = f"k{k}"
        entry = table.loc[name]
        test = tests.get(test_names.get(k, ""), None)
        rows.append(dict(
            n_thresholds=k, elpd_loo=float(entry["elpd_loo"]), se=float(entry["se"]),
            p_loo=float(entry["p_loo"]), rank=int(entry["rank"]), weight=float(entry["weight"]),
            elpd_diff=float(entry["elpd_diff"]), dse=float(entry["dse"]),
            log_ml=float(log_ml[j]), posterior_prob=float(prob[j]),
            F=float(test.statistic) if test is not None else np.nan,
            F_p_value=(float(test.p_value) if test is not None and test.draws.size else np.nan),
            pareto_k_bad=int((np.asarray(loos[name].pareto_k) > 0.7).sum()),
        ))
    return pd.DataFrame(rows)

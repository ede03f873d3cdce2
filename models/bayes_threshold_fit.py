"""The fitted Bayesian threshold model and :func:`fit_bayes_threshold`, its entry point.

See :mod:`models.bayes_threshold` for the model. The fit holds the InferenceData (posterior of
the slopes, sigma and the thresholds, pointwise log likelihood, log prior, observed data and the
Rao-Blackwellised threshold posterior), the provenance saved with it
(:mod:`models.posterior_record`) and the log marginal likelihood; it reports in the project's
``tidy`` layout and checks convergence with :mod:`models.convergence`.
"""

from __future__ import annotations

import time as _time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from models.bayes_threshold_data import (
    DEFAULT_GRID_SIZE,
    DEFAULT_TRIM,
    MAX_THRESHOLDS,
    ThresholdData,
    admissible_configs,
    prepare_threshold_data,
    threshold_log_prior,
)
from models.bayes_threshold_kernels import NEGLIGIBLE
from models.bayes_threshold_likelihood import profile_fit
from models.bayes_threshold_model import build_threshold_model, sample_nutpie, whitening
from models.bayes_threshold_posterior import (
    POINTWISE_MASS,
    POINTWISE_MAX_CONFIGS,
    log_marginal_likelihood,
    log_prior_dataset,
    pointwise_loglik,
    recover_thresholds,
)
from models.bayes_threshold_priors import resolve_slope_priors
from models.convergence import ConvergenceChecked
from models.posterior_record import package_versions, provenance_attributes, save_with_attributes
from models.posterior_summary import HDI_PROB
from models.priors import PanelPriors


@dataclass(frozen=True, eq=False)
class BayesThresholdFit(ConvergenceChecked):
    """A fitted Bayesian panel threshold model.

    Attributes
    ----------
    idata
        ``posterior`` (``slope`` by ``coef``, ``sigma``, ``gamma`` by ``threshold`` and the grid
        index ``gamma_index``), ``sample_stats``, ``log_likelihood`` (marginalised over the
        thresholds), ``log_prior``, ``observed_data`` (the transformed outcome) and
        ``threshold_posterior`` (Rao-Blackwellised probability of every candidate).
    spec, priors, data_hash, seed, versions, wall_times
        Provenance, saved with the netCDF file.
    log_marginal_likelihood
        log p(y~ | k) (NaN when a slope prior is not normal).
    """

    idata: Any
    spec: dict[str, Any]
    priors: dict[str, dict[str, str]]
    data_hash: str
    seed: int
    versions: dict[str, str]
    wall_times: dict[str, float]
    grid: np.ndarray
    threshold_probability: np.ndarray
    log_marginal_likelihood: float
    _tidy_cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_thresholds(self) -> int:
        return int(self.spec["n_thresholds"])

    @property
    def divergences(self) -> int:
        stats = self.idata.sample_stats
        return int(stats["diverging"].sum()) if "diverging" in stats else 0

    def tidy(self, auxiliary: bool = True) -> pd.DataFrame:
        """One row per term: slopes (fixed, then ``<x>_regime<j>``), ``gamma_1``.. and, with
        ``auxiliary``, ``sigma``.

        Columns: term, kind (``slope``, ``time_effect``, ``threshold``, ``auxiliary``),
        estimate (posterior mean), std_error (posterior sd), ci_low, ci_high (94% HDI),
        prob_positive, r_hat, ess_bulk, n_obs, divergences.
        """
        key = f"aux={auxiliary}"
        if key not in self._tidy_cache:
            self._tidy_cache[key] = self._build_tidy(auxiliary)
        return self._tidy_cache[key].copy()

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
        """PSIS-LOO (``arviz.loo``, pointwise) of the marginalised log likelihood, cached."""
        if "loo" not in self._tidy_cache:
            import arviz as az

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self._tidy_cache["loo"] = az.loo(self.idata, pointwise=True)
        return self._tidy_cache["loo"]

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

    def attributes(self) -> dict[str, str]:
        """Provenance as netCDF-safe attributes (:func:`models.posterior_record.
        provenance_attributes`, plus the log marginal likelihood)."""
        return provenance_attributes(
            "bayes_threshold", self.spec, self.priors, self.data_hash, self.seed, self.versions,
            self.wall_times, log_marginal_likelihood=repr(self.log_marginal_likelihood))

    def save_netcdf(self, path: str | Path) -> Path:
        """Write the InferenceData with spec, priors, data hash, seed and versions attached."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return save_with_attributes(self.idata, path, self.attributes())


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
        As :func:`models.threshold.fit_panel_threshold`.
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
        Slope and sigma priors (:class:`models.priors.PanelPriors`, a mapping or
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
    rng = np.random.default_rng([seed, 0x7E5])
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
    idata.add_groups({"observed_data": xr.Dataset(
        {y: ("obs", stats.y)}, coords={"obs": np.arange(stats.n_rows)})})
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
    fit = BayesThresholdFit(
        idata=idata, spec=spec, priors=resolved.describe(["slope", "sigma"]),
        data_hash=stats.data_hash, seed=seed, versions=package_versions(),
        wall_times={key: round(value, 4) for key, value in times.items()},
        grid=stats.grid, threshold_probability=recovered["probability"],
        log_marginal_likelihood=log_ml,
    )
    idata.posterior.attrs.update(fit.attributes())
    return fit




def compare_threshold_counts(fits: dict[int, BayesThresholdFit], frequentist=None
                             ) -> pd.DataFrame:
    """LOO (``arviz.compare``) and log marginal likelihood of models with 0..3 thresholds.

    Parameters
    ----------
    fits
        k -> fit with k thresholds (same data, same transformation).
    frequentist
        Optional :class:`models.threshold.ThresholdResult` whose F tests (k-1 vs k) are shown
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

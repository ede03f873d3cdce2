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
  "auto"``): the hierarchical model is unchanged, the sampler sees ~28 dimensions instead of
  ~300, and after sampling each draw gets one exact draw of u_i from its normal conditional
  posterior, so ``unit_effect`` / ``unit_offset`` are in the posterior as for the other
  likelihoods, where they are sampled (non-centred).

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
nutpie, orthogonal split, unit effects integrated out (default)        ~12,000    11-19 s
exact conjugate draws (flat priors, numpy)                             ~390,000   none
=====================================================================  =========  ==========

With the unit offsets sampled, NUTS needs ~15 leapfrog steps per draw (about 290 dimensions)
and the intercept and Mundlak terms mix slowly (bulk ESS ~400-500 of 4,000 draws); integrating
them out leaves ~28 dimensions, ~7 steps per draw, and ESS above the number of draws for every
parameter. numba compilation (10-20 s) then dominates a fit; including it, the default reaches
~800 ESS/s against ~24 for PyMC's default. numpyro was not installed and not measured.
PyTensor's C backend is slow here (no BLAS found), which also slows PyMC's own sampler.

The default is nutpie (numba backend). Every fit stores the pointwise log-likelihood under the
outcome's name (conditional on the unit effects; computed in numpy for the integrated-out case,
with ``pm.compute_log_likelihood`` otherwise) and a ``log_prior`` group from
``pm.compute_log_prior`` holding the configurable priors (intercept, slopes, Mundlak terms and
scale parameters; not the hierarchical unit and year effects), so LOO and power-scaling
sensitivity work on every fit.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.convergence import convergence_messages
from models.priors import DataScales, PanelPriors, vector_prior

LIKELIHOODS = ("normal", "student_t", "negbin")
PARAMETRISATIONS = ("mundlak", "naive", "mundlak_raw")
SAMPLERS = ("nutpie", "pymc", "numpyro")
HDI_PROB = 0.94

_LIKELIHOOD_ALIASES = {
    "gaussian": "normal",
    "studentt": "student_t",
    "t": "student_t",
    "negative_binomial": "negbin",
    "negativebinomial": "negbin",
    "nb": "negbin",
}
_MODEL_NAMES = (
    "intercept",
    "slope",
    "between",
    "sigma",
    "unit_sd",
    "unit_offset",
    "unit_effect",
    "year_sd",
    "year_effect",
    "nu",
    "alpha",
)


# --------------------------------------------------------------------------------------------
# Design: validation and the within/between split
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelDesign:
    """Validated model data with the orthogonal within/between split.

    Attributes
    ----------
    y : ndarray (n,)
    x_raw : ndarray (n, k)
        Regressors as given.
    x_within : ndarray (n, k)
        Two-way demeaned regressors (one-way when there is no time column).
    x_mean : ndarray (k,)
        Observation-weighted mean of each regressor.
    unit_means : ndarray (N, k)
        Unit means of the regressors, centred at their average over units.
    unit_idx, time_idx : ndarray of int
        Codes into ``unit_labels`` / ``time_labels`` (``time_idx`` is None without time).
    fe_rank : int
        Rank of the unit and year indicators (N + T - number of connected components).
    """

    outcome: str
    regressors: tuple[str, ...]
    unit: str
    time: str | None
    y: np.ndarray
    x_raw: np.ndarray
    x_within: np.ndarray
    x_mean: np.ndarray
    unit_means: np.ndarray
    unit_idx: np.ndarray
    time_idx: np.ndarray | None
    unit_labels: tuple[str, ...]
    time_labels: tuple[str, ...]
    fe_rank: int

    @property
    def n_obs(self) -> int:
        return int(self.y.shape[0])

    def y_within(self) -> np.ndarray:
        """The outcome after the same demeaning as the regressors."""
        return _demean(self.y[:, None], self.unit_idx, self.time_idx)[:, 0]

    def scales(self, link: str) -> DataScales:
        """Summaries that set the default prior scales (see :mod:`models.priors`)."""
        return DataScales(
            regressors=self.regressors,
            y_mean=float(self.y.mean()),
            y_sd=float(self.y.std(ddof=1)),
            within_sd=tuple(float(v) for v in self.x_within.std(axis=0, ddof=1)),
            between_sd=tuple(float(v) for v in self.unit_means.std(axis=0, ddof=1)),
            link=link,
        )

    def data_hash(self) -> str:
        """sha256 of the model data (names, outcome, regressors, unit and time keys)."""
        digest = hashlib.sha256()
        header = json.dumps([self.outcome, list(self.regressors), self.unit, self.time])
        digest.update(header.encode())
        digest.update(np.ascontiguousarray(self.y, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(self.x_raw, dtype=np.float64).tobytes())
        digest.update("\x1f".join(self.unit_labels[i] for i in self.unit_idx).encode())
        if self.time_idx is not None:
            digest.update("\x1f".join(self.time_labels[t] for t in self.time_idx).encode())
        return digest.hexdigest()


def _demean(
    values: np.ndarray,
    unit_idx: np.ndarray,
    time_idx: np.ndarray | None,
    tol: float = 1e-11,
    max_iter: int = 10_000,
) -> np.ndarray:
    """Residuals of ``values`` on unit (and year) indicators, by alternating projections.

    Balanced panels converge after one sweep; unbalanced ones geometrically.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    n_units = int(unit_idx.max()) + 1
    unit_counts = np.bincount(unit_idx, minlength=n_units).astype(float)

    def remove_means(codes: np.ndarray, counts: np.ndarray) -> float:
        largest = 0.0
        for j in range(out.shape[1]):
            means = np.bincount(codes, weights=out[:, j], minlength=counts.size) / counts
            out[:, j] -= means[codes]
            largest = max(largest, float(np.abs(means).max()))
        return largest

    remove_means(unit_idx, unit_counts)
    if time_idx is None:
        return out
    n_times = int(time_idx.max()) + 1
    time_counts = np.bincount(time_idx, minlength=n_times).astype(float)
    scale = max(float(np.abs(values).max()), 1.0)
    for _ in range(max_iter):
        change = remove_means(time_idx, time_counts)
        change = max(change, remove_means(unit_idx, unit_counts))
        if change <= tol * scale:
            return out
    raise RuntimeError(
        "Two-way demeaning did not converge; the unit-year graph may be nearly disconnected."
    )


def _fe_rank(unit_idx: np.ndarray, time_idx: np.ndarray | None, n_units: int) -> int:
    if time_idx is None:
        return n_units
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n_times = int(time_idx.max()) + 1
    size = n_units + n_times
    graph = coo_matrix((np.ones(unit_idx.size), (unit_idx, n_units + time_idx)), shape=(size, size))
    n_components, _ = connected_components(graph, directed=False)
    return size - n_components


def _check_columns(
    df: pd.DataFrame, outcome: str, regressors: Sequence[str], unit: str, time: str | None
) -> list[str]:
    if isinstance(regressors, str):
        regressors = [regressors]
    regressors = list(regressors)
    if not regressors:
        raise ValueError("At least one regressor is needed.")
    if len(set(regressors)) != len(regressors):
        raise ValueError(f"Regressors are listed twice: {regressors}.")
    keys = [outcome, unit] + ([time] if time is not None else [])
    clash = [r for r in regressors if r in keys]
    if clash:
        raise ValueError(f"Regressor(s) {clash} are also the outcome, unit or time column.")
    missing = [c for c in keys + regressors if c not in df.columns]
    if missing:
        raise ValueError(f"Column(s) {missing} not in the data; columns are {list(df.columns)}.")
    taken = [c for c in [outcome] if c in _MODEL_NAMES]
    if taken:
        raise ValueError(
            f"Outcome column {taken[0]!r} clashes with a model parameter name; rename it."
        )
    for column in keys + regressors:
        bad = df.index[df[column].isna()]
        if len(bad):
            raise ValueError(
                f"Column {column!r} has {len(bad)} missing value(s), first at row(s) "
                f"{list(bad[:5])}; drop or impute them before fitting."
            )
    for column in [outcome] + regressors:
        if not pd.api.types.is_numeric_dtype(df[column]):
            raise ValueError(f"Column {column!r} must be numeric, got dtype {df[column].dtype}.")
        values = df[column].to_numpy(dtype=float)
        bad = df.index[~np.isfinite(values)]
        if len(bad):
            raise ValueError(f"Column {column!r} has non-finite values at row(s) {list(bad[:5])}.")
    return regressors


def prepare_panel(
    df: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    unit: str,
    time: str | None = None,
) -> PanelDesign:
    """Validate a panel and compute the within/between split.

    Raises
    ------
    ValueError
        Naming the column or rows: missing columns, missing or non-numeric values, duplicated
        (unit, time) pairs, a regressor without within variation (absorbed by the effects),
        or too few observations.
    """
    regressors = _check_columns(df, outcome, regressors, unit, time)
    if time is not None:
        duplicated = df.duplicated([unit, time], keep=False)
        if duplicated.any():
            rows = list(df.index[duplicated][:5])
            raise ValueError(
                f"Pairs of ({unit!r}, {time!r}) occur more than once, first at rows {rows}; "
                "a panel has one row per unit and year."
            )
    unit_codes, unit_uniques = pd.factorize(df[unit], sort=True)
    if time is not None:
        time_codes, time_uniques = pd.factorize(df[time], sort=True)
        time_idx: np.ndarray | None = time_codes.astype(np.int64)
        time_labels = tuple(str(v) for v in time_uniques)
    else:
        time_idx, time_labels = None, ()
    unit_idx = unit_codes.astype(np.int64)
    y = df[outcome].to_numpy(dtype=np.float64)
    x_raw = df[regressors].to_numpy(dtype=np.float64)
    x_within = _demean(x_raw, unit_idx, time_idx)
    raw_sd = x_raw.std(axis=0)
    within_sd = x_within.std(axis=0)
    for j, name in enumerate(regressors):
        if within_sd[j] <= 1e-9 * max(raw_sd[j], 1e-300) or within_sd[j] == 0:
            effects = "unit and year effects" if time is not None else "unit effects"
            raise ValueError(
                f"Regressor {name!r} has no variation left after removing {effects}: it is "
                "absorbed by the fixed effects and its slope is not identified."
            )
    rank_x = np.linalg.matrix_rank(x_within)
    if rank_x < len(regressors):
        raise ValueError(
            f"Regressors {regressors} are collinear after removing the fixed effects "
            f"(rank {rank_x} < {len(regressors)})."
        )
    n_units = len(unit_uniques)
    fe_rank = _fe_rank(unit_idx, time_idx, n_units)
    if y.size <= len(regressors) + fe_rank:
        raise ValueError(
            f"{y.size} observations cannot identify {len(regressors)} slopes and {fe_rank} "
            "fixed effects."
        )
    counts = np.bincount(unit_idx, minlength=n_units).astype(float)
    unit_means = np.stack(
        [
            np.bincount(unit_idx, weights=x_raw[:, j], minlength=n_units) / counts
            for j in range(len(regressors))
        ],
        axis=1,
    )
    unit_means = unit_means - unit_means.mean(axis=0)
    return PanelDesign(
        outcome=outcome,
        regressors=tuple(regressors),
        unit=unit,
        time=time,
        y=y,
        x_raw=x_raw,
        x_within=x_within,
        x_mean=x_raw.mean(axis=0),
        unit_means=unit_means,
        unit_idx=unit_idx,
        time_idx=time_idx,
        unit_labels=tuple(str(v) for v in unit_uniques),
        time_labels=time_labels,
        fe_rank=fe_rank,
    )


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


@dataclass(frozen=True)
class _SufficientStats:
    """Statistics for the Gaussian likelihood with the unit effects integrated out."""

    syy_within: float  # ||P y||^2, P = within-unit demeaning
    sxx: np.ndarray  # X~'X~
    sxy: np.ndarray  # X~'y
    unit_counts: np.ndarray  # T_i
    unit_ybar: np.ndarray  # ybar_i
    year_cross: np.ndarray | None  # D'P y
    year_gram: np.ndarray | None  # D'P D
    year_share: np.ndarray | None  # (N, T): share of unit i's rows in year t

    @classmethod
    def from_design(cls, design: PanelDesign) -> _SufficientStats:
        n_units = len(design.unit_labels)
        counts = np.bincount(design.unit_idx, minlength=n_units).astype(float)
        ybar = np.bincount(design.unit_idx, weights=design.y, minlength=n_units) / counts
        y_unit_within = design.y - ybar[design.unit_idx]
        year_cross = year_gram = year_share = None
        if design.time_idx is not None:
            n_years = len(design.time_labels)
            unit_year = np.zeros((n_units, n_years))
            np.add.at(unit_year, (design.unit_idx, design.time_idx), 1.0)
            year_cross = np.bincount(design.time_idx, weights=y_unit_within, minlength=n_years)
            year_gram = np.diag(unit_year.sum(axis=0)) - unit_year.T @ (unit_year / counts[:, None])
            year_share = unit_year / counts[:, None]
        return cls(
            syy_within=float(y_unit_within @ y_unit_within),
            sxx=design.x_within.T @ design.x_within,
            sxy=design.x_within.T @ design.y,
            unit_counts=counts,
            unit_ybar=ybar,
            year_cross=year_cross,
            year_gram=year_gram,
            year_share=year_share,
        )


def _unit_effects_mode(likelihood: str, parametrisation: str, unit_effects: str) -> str:
    if unit_effects not in ("auto", "marginalised", "sampled"):
        raise ValueError(
            f"Unknown unit_effects {unit_effects!r}; use 'auto', 'marginalised' or 'sampled'."
        )
    exact = likelihood == "normal" and parametrisation == "mundlak"
    if unit_effects == "auto":
        return "marginalised" if exact else "sampled"
    if unit_effects == "marginalised" and not exact:
        raise ValueError(
            "Unit effects can be integrated out only for the normal likelihood with the "
            "'mundlak' parametrisation."
        )
    return unit_effects


def marginal_model_data(design: PanelDesign, priors: PanelPriors) -> dict[str, np.ndarray]:
    """Every data-dependent number of the marginalised model, by container name.

    ``stat_<field>`` are the sufficient statistics, ``<variable>__<parameter>`` the resolved
    prior parameters (vectors for the per-regressor roles, which must share one family).
    """
    stats = _SufficientStats.from_design(design)
    values: dict[str, np.ndarray] = {"unit_means": np.asarray(design.unit_means, float)}
    for key in _SufficientStats.__dataclass_fields__:
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

    With ``unit_effects="marginalised"`` (the default for the normal likelihood) the z_i are
    integrated out exactly: for unit i with T_i rows and residual r_i = y_i - alpha - X~_i beta
    - tau - (xbar_i - xbar)' lambda, y_i ~ N(., sigma^2 I + unit_sd^2 11'), whose log density
    splits into the within-unit sum of squares of r_i (scale sigma^2) and its unit mean
    (scale sigma^2 / T_i + unit_sd^2). The within part is written with sufficient statistics,
    so one gradient costs O(k^2 + N k + T^2) instead of O(n k).

    ``data_containers=True`` (marginalised mode only) holds every number that depends on the
    data (sufficient statistics and prior parameters) in ``pm.Data`` containers named as in
    :func:`marginal_model_data`, so one compiled model serves every design of the same shape.
    """
    import pymc as pm

    likelihood = _canonical_likelihood(likelihood)
    if parametrisation not in PARAMETRISATIONS:
        raise ValueError(
            f"Unknown parametrisation {parametrisation!r}; use one of {PARAMETRISATIONS}."
        )
    mode = _unit_effects_mode(likelihood, parametrisation, unit_effects)
    coords: dict[str, Any] = {
        "coef": list(design.regressors),
        "unit": list(design.unit_labels),
        "obs": np.arange(design.n_obs),
    }
    if design.time_idx is not None:
        coords["year"] = list(design.time_labels)
    x = design.x_within if parametrisation == "mundlak" else design.x_raw - design.x_mean
    if data_containers and mode != "marginalised":
        raise ValueError("data containers are implemented for the marginalised model only")
    values = marginal_model_data(design, priors) if data_containers else None

    def const(name: str, value):
        return pm.Data(name, value) if values is not None else value

    def prior(role: str, name: str, **kwargs):
        spec = getattr(priors, role)
        params = {key: const(f"{name}__{key}", value) for key, value in spec.params}
        return spec.to_pymc(name, **params, **kwargs)

    def vector(role: str, name: str):
        if values is None:
            return vector_prior(priors, role, design.regressors, name, "coef")
        term_priors = [priors.term_prior(role, term) for term in design.regressors]
        params = {key: const(f"{name}__{key}", values[f"{name}__{key}"])
                  for key, _ in term_priors[0].params}
        return term_priors[0].to_pymc(name, dims="coef", **params)

    with pm.Model(coords=coords) as model:
        intercept = prior("intercept", "intercept")
        slope = vector("slope", "slope")
        unit_sd = prior("unit_sd", "unit_sd")
        if parametrisation == "naive":
            unit_mean = 0.0
        else:
            between = vector("between", "between")
            unit_mean = pm.math.dot(const("unit_means", design.unit_means), between)
        year_effect = None
        if design.time_idx is not None:
            year_sd = prior("year_sd", "year_sd")
            year_effect = pm.ZeroSumNormal("year_effect", sigma=year_sd, dims="year")
        if mode == "marginalised":
            sigma = prior("sigma", "sigma")
            stats = _SufficientStats.from_design(design)
            if values is not None:
                stats = _SufficientStats(**{
                    key: None if getattr(stats, key) is None else const(f"stat_{key}", values[
                        f"stat_{key}"]) for key in _SufficientStats.__dataclass_fields__})
            pm.Potential(
                f"{design.outcome}_marginal",
                _marginal_normal_logp(
                    stats, intercept, slope, unit_mean, year_effect, sigma, unit_sd
                ),
            )
            return model
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


def _marginal_normal_logp(
    stats: _SufficientStats, intercept, slope, unit_mean, year_effect, sigma, unit_sd
):
    """log p(y | alpha, beta, lambda, tau, sigma, unit_sd) with the unit offsets integrated out.

    sum_i [ -(T_i - 1)/2 log sigma^2 - 1/2 log(sigma^2 + T_i unit_sd^2) ]
      - W / (2 sigma^2) - sum_i T_i rbar_i^2 / (2 (sigma^2 + T_i unit_sd^2)) - n/2 log(2 pi),
    W = ||P y||^2 - 2 beta'X~'y + beta'X~'X~ beta - 2 tau'D'P y + tau'D'P D tau,
    rbar_i = ybar_i - alpha - (xbar_i - xbar)' lambda - (share_i)' tau.
    """
    import pytensor.tensor as pt

    counts = stats.unit_counts
    n_obs = pt.sum(counts)
    sigma2 = sigma**2
    within_ss = (
        stats.syy_within - 2.0 * pt.dot(slope, stats.sxy) + pt.dot(slope, pt.dot(stats.sxx, slope))
    )
    unit_resid = stats.unit_ybar - intercept - unit_mean
    if year_effect is not None:
        within_ss = (
            within_ss
            - 2.0 * pt.dot(year_effect, stats.year_cross)
            + pt.dot(year_effect, pt.dot(stats.year_gram, year_effect))
        )
        unit_resid = unit_resid - pt.dot(stats.year_share, year_effect)
    between_var = sigma2 + counts * unit_sd**2
    return (
        -0.5 * (n_obs - counts.shape[0]) * pt.log(sigma2)
        - 0.5 * pt.sum(pt.log(between_var))
        - 0.5 * within_ss / sigma2
        - 0.5 * pt.sum(counts * unit_resid**2 / between_var)
        - 0.5 * n_obs * np.log(2.0 * np.pi)
    )


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def _sample(
    model,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    progressbar: bool,
    target_accept: float | None,
) -> tuple[Any, dict[str, float]]:
    import pymc as pm

    times: dict[str, float] = {}
    if sampler == "nutpie":
        import nutpie

        start = _time.perf_counter()
        compiled = nutpie.compile_pymc_model(model, backend="numba")
        times["compile_s"] = _time.perf_counter() - start
        extra = {} if target_accept is None else {"target_accept": target_accept}
        start = _time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress_bar=progressbar,
            save_warmup=False,
            **extra,
        )
        times["sampling_s"] = _time.perf_counter() - start
        return idata, times
    if sampler in ("pymc", "numpyro"):
        kwargs: dict[str, Any] = {}
        if sampler == "numpyro":
            kwargs["nuts_sampler"] = "numpyro"
        if target_accept is not None:
            kwargs["target_accept"] = target_accept
        start = _time.perf_counter()
        with model:
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=seed,
                progressbar=progressbar,
                compute_convergence_checks=False,
                **kwargs,
            )
        total = _time.perf_counter() - start
        sampling = float(idata.posterior.attrs.get("sampling_time", total))
        times["compile_s"] = max(total - sampling, 0.0)
        times["sampling_s"] = sampling
        return idata, times
    raise ValueError(f"Unknown sampler {sampler!r}; use one of {SAMPLERS}.")


def _complete_marginalised(idata, design: PanelDesign, seed: int) -> None:
    """Draw the integrated-out unit effects and add the pointwise log-likelihood.

    Given the sampled parameters, u_i | y is normal with precision
    1 / unit_sd^2 + T_i / sigma^2 and mean (m_i / unit_sd^2 + T_i rhat_i / sigma^2) / precision,
    where m_i = (xbar_i - xbar)' lambda and rhat_i = mean_t(y_it - alpha - x~_it' beta - tau_t);
    one exact draw per posterior draw makes the joint draws those of the full model.
    """
    import xarray as xr

    stats = _SufficientStats.from_design(design)
    post = idata.posterior
    intercept = post["intercept"].values[..., None]
    slope = post["slope"].values
    sigma = post["sigma"].values[..., None]
    unit_sd = post["unit_sd"].values[..., None]
    prior_mean = post["between"].values @ design.unit_means.T
    resid_mean = stats.unit_ybar - intercept
    year = None
    if design.time_idx is not None:
        year = post["year_effect"].values
        resid_mean = resid_mean - year @ stats.year_share.T
    precision = 1.0 / unit_sd**2 + stats.unit_counts / sigma**2
    mean = (prior_mean / unit_sd**2 + stats.unit_counts * resid_mean / sigma**2) / precision
    rng = np.random.default_rng([seed, 0x5EED])
    unit_effect = mean + rng.standard_normal(mean.shape) / np.sqrt(precision)
    dims = ("chain", "draw", "unit")
    idata.posterior = post.assign(
        unit_effect=(dims, unit_effect),
        unit_offset=(dims, (unit_effect - prior_mean) / unit_sd),
    ).assign_coords(unit=list(design.unit_labels))

    loglik = np.empty(slope.shape[:2] + (design.n_obs,))
    for chain in range(slope.shape[0]):
        eta = intercept[chain] + slope[chain] @ design.x_within.T
        eta += unit_effect[chain][:, design.unit_idx]
        if year is not None:
            eta += year[chain][:, design.time_idx]
        z = (design.y - eta) / sigma[chain]
        loglik[chain] = -0.5 * z**2 - np.log(sigma[chain]) - 0.5 * np.log(2.0 * np.pi)
    loglik_set = xr.Dataset(
        {design.outcome: (("chain", "draw", "obs"), loglik)},
        coords={"chain": post.chain, "draw": post.draw, "obs": np.arange(design.n_obs)},
    )
    if "log_likelihood" in idata.groups():
        del idata.log_likelihood
    idata.add_groups({"log_likelihood": loglik_set})


def _add_observed(idata, design: PanelDesign) -> None:
    import xarray as xr

    if "observed_data" in idata.groups():
        return
    observed = xr.Dataset(
        {design.outcome: ("obs", design.y)}, coords={"obs": np.arange(design.n_obs)}
    )
    idata.add_groups({"observed_data": observed})


def _package_versions() -> dict[str, str]:
    import importlib.metadata as metadata

    versions = {"python": platform.python_version()}
    for name in ("pymc", "pytensor", "arviz", "numpy", "pandas", "nutpie", "numba", "numpyro"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BayesPanelFit:
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
        import arviz as az

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
        divergences = self.divergences
        rows = []
        for term, draws in entries:
            hdi = az.hdi(draws.reshape(-1), hdi_prob=HDI_PROB)
            rows.append(
                {
                    "term": term,
                    "estimate": float(draws.mean()),
                    "std_error": float(draws.std(ddof=1)),
                    "ci_low": float(hdi[0]),
                    "ci_high": float(hdi[1]),
                    "prob_positive": float((draws > 0).mean()),
                    "r_hat": float(az.rhat(draws)),
                    "ess_bulk": float(az.ess(draws, method="bulk")),
                    "n_obs": int(self.spec["n_obs"]),
                    "divergences": divergences,
                }
            )
        return pd.DataFrame(rows)

    def convergence_problems(self) -> list[str]:
        """Plain-language descriptions of failed convergence checks (empty when converged)."""
        table = self.tidy(auxiliary=True)
        return convergence_messages(
            zip(table["term"], table["r_hat"], table["ess_bulk"], strict=True), self.divergences)

    @property
    def converged(self) -> bool:
        """r_hat <= 1.01 and bulk ESS >= 400 for every reported term, and no divergences."""
        return not self.convergence_problems()

    def attributes(self) -> dict[str, str]:
        """Provenance as netCDF-safe attributes (JSON strings)."""
        return {
            "model": "bayes_twfe",
            "spec": json.dumps(self.spec),
            "priors": json.dumps(self.priors),
            "data_hash": self.data_hash,
            "seed": str(self.seed),
            "versions": json.dumps(self.versions),
            "wall_times": json.dumps(self.wall_times),
        }

    def save_netcdf(self, path: str | Path) -> Path:
        """Write the InferenceData with spec, priors, data hash, seed and versions attached.

        The attributes are set on the file (every group), not on ``self.idata``.
        """
        import arviz as az

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        attrs = self.attributes()
        groups = {}
        for group in self.idata.groups():
            dataset = getattr(self.idata, group).copy()
            dataset.attrs = {**dataset.attrs, **attrs}
            groups[group] = dataset
        az.InferenceData(**groups).to_netcdf(str(path))
        return path


# --------------------------------------------------------------------------------------------
# Public fitting function
# --------------------------------------------------------------------------------------------


def resolve_priors(
    priors: PanelPriors | dict[str, Any] | Sequence[str] | None, design: PanelDesign, link: str
) -> PanelPriors:
    """Merge user priors (object, mapping or ``name=family(...)`` strings) with the defaults."""
    if priors is None:
        priors = PanelPriors()
    elif isinstance(priors, dict):
        priors = PanelPriors.from_mapping(priors)
    elif not isinstance(priors, PanelPriors):
        priors = PanelPriors().with_overrides(list(priors), source="cli")
    return priors.resolve(design.scales(link))


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
    unit_effects : {"auto", "marginalised", "sampled"}
        ``auto`` integrates the unit offsets out exactly for the normal likelihood (they are
        then drawn from their exact conditional posterior after sampling) and samples them
        (non-centred) otherwise.
    reuse_compiled : bool
        For the marginalised model with nutpie, compile once per model shape and re-use the
        compiled model for later designs of the same shape
        (:mod:`models.bayes_panel_compiled`); same model, same posterior, no 10-15 s compile.

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
    mode = _unit_effects_mode(likelihood, parametrisation, unit_effects)
    roles = _prior_roles(likelihood, parametrisation, time is not None)

    def spec_fields(mode: str) -> dict[str, Any]:
        return {"unit_effects": mode, "outcome": outcome, "unit": unit, "time": time,
                "likelihood": likelihood, "parametrisation": parametrisation,
                "sampler": sampler, "draws": draws, "tune": tune, "chains": chains,
                "compiled_model_reused": bool(reuse_compiled)}

    from models.bayes_panel_compiled import reusable, sample_marginalised

    if mode == "marginalised" and sampler == "nutpie" and reuse_compiled and reusable(
            design, resolved):
        idata, times, _ = sample_marginalised(design, resolved, draws, tune, chains, seed,
                                              progressbar, target_accept)
        start_post = _time.perf_counter()
        _complete_marginalised(idata, design, seed)
        _add_observed(idata, design)
        return _finish_fit(idata, times, start_post, start_total, design, resolved, roles, seed,
                           spec_fields(mode))
    model = build_twfe_model(design, resolved, likelihood, parametrisation, unit_effects)

    idata, times = _sample(model, sampler, draws, tune, chains, seed, progressbar, target_accept)
    start_post = _time.perf_counter()
    if mode == "marginalised":
        _complete_marginalised(idata, design, seed)
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
    _add_observed(idata, design)
    return _finish_fit(idata, times, start_post, start_total, design, resolved, roles, seed,
                       spec_fields(mode))


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
        versions=_package_versions(),
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

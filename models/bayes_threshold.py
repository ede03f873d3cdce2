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
(:func:`models.threshold.fit_panel_threshold`): every unit's column of periods is mapped by
``W0`` (:func:`models.threshold_search.within_matrix`), ``demean="hansen"`` (demean and drop the
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
variable (:func:`models.threshold_search.hansen_grid`, ``grid_size`` quantile steps, the first
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
(one pass for all candidates, :class:`models.threshold_search.SortedPanel`); the pair Gram is
G(g, h) = sum_{q < min(g, h)} x x' - U(g)'U(h), where W0'W0 = I - V V' (V has rank 1 for
``"all"``, 2 for ``"hansen"``) and U(g)_i = V' x_i 1[q_i < g] is a per-unit projection, so
all pairs cost one (n rank(V) x K) product. Inside the PyMC model the log density is the
log-sum-exp over the admissible configurations of log prior + log likelihood, one custom Op
(``MarginalLogLik``, :mod:`models.bayes_threshold_op`) whose numba kernel makes one pass over
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

* :mod:`models.bayes_threshold_data`: transformed panel, candidate statistics, changepoint prior;
* :mod:`models.bayes_threshold_likelihood`: log likelihood of every configuration, least
  squares at every configuration (profile fit);
* :mod:`models.bayes_threshold_kernels`: numba kernels (sum over configurations, conditional
  draws of the thresholds, pointwise log likelihood), compiled once and cached on disk;
* :mod:`models.bayes_threshold_op`: the marginal likelihood as a PyTensor Op;
* :mod:`models.bayes_threshold_priors`: slope and sigma priors;
* :mod:`models.bayes_threshold_model`: the PyMC model and nutpie sampling;
* :mod:`models.bayes_threshold_posterior`: threshold recovery, pointwise log likelihood, log
  marginal likelihood, log prior;
* :mod:`models.bayes_threshold_fit`: :class:`BayesThresholdFit`, :func:`fit_bayes_threshold`
  and :func:`compare_threshold_counts`.
"""

from __future__ import annotations

from models.bayes_threshold_data import (
    DEFAULT_GRID_SIZE,
    DEFAULT_TRIM,
    IMPOSSIBLE,
    MAX_THRESHOLDS,
    THRESHOLD_PRIORS,
    ThresholdData,
    admissible_configs,
    pair_gram,
    prepare_threshold_data,
    threshold_log_prior,
)
from models.bayes_threshold_fit import (
    HDI_PROB,
    BayesThresholdFit,
    compare_threshold_counts,
    fit_bayes_threshold,
)
from models.bayes_threshold_likelihood import (
    config_loglik,
    config_normal_equations,
    config_terms,
    profile_fit,
    regime_to_cumulative,
)
from models.bayes_threshold_model import (
    build_threshold_model,
    sample_nutpie,
    shared_values,
    whitening,
)
from models.bayes_threshold_op import marginal_loglik_tensor
from models.bayes_threshold_posterior import (
    POINTWISE_MASS,
    POINTWISE_MAX_CONFIGS,
    log_marginal_likelihood,
    pointwise_loglik,
    recover_thresholds,
)
from models.bayes_threshold_priors import prior_logp_numpy, resolve_slope_priors

__all__ = [
    "DEFAULT_GRID_SIZE", "DEFAULT_TRIM", "HDI_PROB", "IMPOSSIBLE", "MAX_THRESHOLDS",
    "POINTWISE_MASS", "POINTWISE_MAX_CONFIGS", "THRESHOLD_PRIORS", "BayesThresholdFit",
    "ThresholdData", "admissible_configs", "build_threshold_model", "compare_threshold_counts",
    "config_loglik", "config_normal_equations", "config_terms", "fit_bayes_threshold",
    "log_marginal_likelihood", "marginal_loglik_tensor", "pair_gram", "pointwise_loglik",
    "prepare_threshold_data", "prior_logp_numpy", "profile_fit", "recover_thresholds",
    "regime_to_cumulative", "resolve_slope_priors", "sample_nutpie", "shared_values",
    "threshold_log_prior", "whitening",
]

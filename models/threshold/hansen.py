"""Hansen's (1999) fixed-effects panel threshold regression, frequentist estimator.

Model, for unit i = 1..n and period t = 1..T (balanced panel),

    y_it = mu_i + X_it' beta + x_it' theta_1 I(q_it < g_1) + x_it' theta_2 I(g_1 <= q_it < g_2)
           + ... + x_it' theta_{k+1} I(q_it >= g_k) + e_it,

with k = 1, 2 or 3 thresholds. The unit effects mu_i are removed by the within transformation
(``demean``); ``time=True`` adds period dummies (first period dropped) to X for two-way effects.

Estimation follows Hansen's program step by step: g_1 minimises the single-threshold RSS S_1(g)
over a quantile grid; g_2 minimises S_2(g | g_1); g_1 is then refined as the minimiser of
S(g | g_2) (Hansen's Table 3); g_3 minimises S_3(g | g_1, g_2). Each search is exact and takes
one sort and a few cumulative sums (see :mod:`models.threshold.search`).

Tests: F_k = (S_{k-1} - S_k) / sigma_k^2, sigma_k^2 = S_k / (n (T-1)), with bootstrap p-values
and critical values (:mod:`models.threshold.bootstrap`). Confidence sets for each threshold
invert LR(g) = (S(g) - S(g_hat)) / sigma^2 <= c(alpha) = -2 log(1 - sqrt(1 - alpha)).

Term names in :meth:`ThresholdResult.tidy`:

* ``gamma_1``, ``gamma_2``, ... thresholds in increasing order (kind ``threshold``);
* regime-independent slopes by regressor name (kind ``slope``), period dummies as
  ``<period>_<value>`` (kind ``time_effect``);
* regime slopes ``<regressor>_regime<j>``, j = 1 for q < gamma_1 up to k+1 for q >= gamma_k
  (kind ``slope``);
* ``F_single``, ``F_double``, ``F_triple`` (kind ``test``: estimate and stat are F, p_value the
  bootstrap p) and ``F_single_crit10``, ``F_single_crit5``, ``F_single_crit1`` ... (kind
  ``critical_value``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, stats

from models.threshold.bootstrap import BootstrapTest, bootstrap_threshold_test
from models.threshold.search import (
    DEMEAN_CONVENTIONS,
    PanelArrays,
    SortedPanel,
    StageSearch,
    ThresholdSearcher,
    hansen_grid,
)

TEST_NAMES = ("single", "double", "triple")
SE_TYPES = ("ols", "white", "cluster")
MAX_THRESHOLDS = 3


def lr_critical_value(level: float) -> float:
    """Hansen's asymptotic critical value c = -2 log(1 - sqrt(level)) for the LR set.

    7.35 at 95%, 10.59 at 99%.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")
    return float(-2.0 * np.log(1.0 - np.sqrt(level)))


@dataclass(frozen=True, eq=False)
class ThresholdResult:
    """Fitted panel threshold model (frozen).

    Attributes
    ----------
    thresholds
        Estimated thresholds in increasing order.
    coefficients
        One row per slope: ``term``, ``kind``, ``estimate``, ``se_ols``, ``se_white``,
        ``se_cluster``.
    tests
        Bootstrap F tests by name (``single``, ``double``, ``triple``).
    stages
        The searches behind the estimates: ``single`` (S_1(g)), ``double`` (S_2(g | g_1)),
        ``double_refined`` (S(g | g_2)), ``triple`` (S_3(g | g_1, g_2)); each holds the
        candidates visited and their RSS.
    threshold_stages
        For each of ``thresholds``, the stage whose RSS curve gives its LR confidence set.
    """

    thresholds: tuple[float, ...]
    coefficients: pd.DataFrame
    tests: dict[str, BootstrapTest]
    stages: dict[str, StageSearch]
    threshold_stages: tuple[str, ...]
    rss: float
    sigma2: float
    n_units: int
    n_periods: int
    n_rows: int
    demean: str
    se_type: str
    ci_level: float
    dof_residual: int
    regime_share: pd.DataFrame = field(repr=False)

    @property
    def rss_dof(self) -> int:
        """n (T-1), the divisor of sigma^2 in the LR and F statistics."""
        return self.n_units * (self.n_periods - 1)

    def rss_curve(self, stage: str) -> pd.DataFrame:
        """RSS for every candidate of one stage (columns ``gamma``, ``rss``)."""
        if stage not in self.stages:
            raise KeyError(f"no stage {stage!r}; fitted stages: {sorted(self.stages)}")
        found = self.stages[stage]
        return pd.DataFrame({"gamma": found.candidates, "rss": found.rss})

    def lr_curve(self, term: str = "gamma_1") -> pd.DataFrame:
        """LR(g) = (S(g) - S(g_hat)) / sigma^2 over the candidates of ``term``'s stage.

        sigma^2 = S(g_hat) / (n (T-1)); columns ``gamma``, ``rss``, ``lr``.
        """
        found = self.stages[self.threshold_stages[self._threshold_index(term)]]
        lr = (found.rss / found.rss_min - 1.0) * self.rss_dof
        return pd.DataFrame({"gamma": found.candidates, "rss": found.rss, "lr": lr})

    def threshold_ci(self, term: str = "gamma_1", level: float | None = None) -> tuple[float,
                                                                                        float]:
        """Smallest and largest candidate with LR(g) < c(level), as Hansen's program."""
        curve = self.lr_curve(term)
        inside = curve["gamma"][curve["lr"] < lr_critical_value(level or self.ci_level)]
        return float(inside.min()), float(inside.max())

    def _threshold_index(self, term: str) -> int:
        names = [f"gamma_{j + 1}" for j in range(len(self.thresholds))]
        if term not in names:
            raise KeyError(f"no threshold {term!r}; this model has {names}")
        return names.index(term)

    def tidy(self, se: str | None = None, level: float | None = None) -> pd.DataFrame:
        """One row per reported quantity.

        Columns ``term, estimate, std_error, ci_low, ci_high, stat, p_value, kind``. Slopes use
        the standard error ``se`` (default: the fit's ``se_type``) with Student-t intervals and
        two-sided p-values on ``dof_residual`` degrees of freedom; thresholds carry their LR
        confidence sets at ``level`` (default: the fit's ``ci_level``).
        """
        se = se or self.se_type
        if se not in SE_TYPES:
            raise ValueError(f"se must be one of {SE_TYPES}, got {se!r}")
        level = level or self.ci_level
        rows = []
        for j, gamma in enumerate(self.thresholds):
            low, high = self.threshold_ci(f"gamma_{j + 1}", level)
            rows.append(dict(term=f"gamma_{j + 1}", estimate=gamma, ci_low=low, ci_high=high,
                             kind="threshold"))
        t_crit = stats.t.ppf(0.5 + level / 2.0, self.dof_residual)
        for row in self.coefficients.itertuples(index=False):
            error = getattr(row, f"se_{se}")
            t_value = row.estimate / error
            rows.append(dict(term=row.term, estimate=row.estimate, std_error=error,
                             ci_low=row.estimate - t_crit * error,
                             ci_high=row.estimate + t_crit * error, stat=t_value,
                             p_value=2.0 * stats.t.sf(abs(t_value), self.dof_residual),
                             kind=row.kind))
        for name, test in self.tests.items():
            p_value = test.p_value if test.draws.size else np.nan
            rows.append(dict(term=f"F_{name}", estimate=test.statistic, stat=test.statistic,
                             p_value=p_value, kind="test"))
            if test.draws.size:
                for size, crit in zip((10, 5, 1), test.critical_values):
                    rows.append(dict(term=f"F_{name}_crit{size}", estimate=crit,
                                     kind="critical_value"))
        columns = ["term", "estimate", "std_error", "ci_low", "ci_high", "stat", "p_value", "kind"]
        return pd.DataFrame(rows).reindex(columns=columns)


def fit_panel_threshold(
    data: pd.DataFrame,
    *,
    y: str,
    regime: str | list[str],
    threshold: str,
    fixed: list[str] | tuple[str, ...] = (),
    unit: str,
    period: str,
    n_thresholds: int = 1,
    n_tests: int | None = None,
    demean: str = "hansen",
    time: bool = False,
    grid_size: int = 400,
    trim: tuple[float, ...] = (0.01, 0.01, 0.05),
    n_boot: int = 300,
    seed: int | None = 0,
    se: str = "white",
    ci_level: float = 0.95,
) -> ThresholdResult:
    """Fit Hansen's (1999) fixed-effects panel threshold model.

    y_it = mu_i + X_it' beta + sum_{j=1}^{k+1} x_it' theta_j I(g_{j-1} <= q_it < g_j) + e_it,
    g_0 = -inf, g_{k+1} = +inf.

    Parameters
    ----------
    data
        Balanced panel, one row per (unit, period).
    y, regime, threshold, fixed
        Outcome; regressor(s) x whose slopes switch across regimes; threshold variable q;
        regime-independent regressors X.
    unit, period
        Panel keys.
    n_thresholds
        k, thresholds in the reported model (1 to 3).
    n_tests
        Test the number of thresholds up to this many (``single``: 0 vs 1, ``double``: 1 vs 2,
        ``triple``: 2 vs 3); defaults to ``n_thresholds``. Stages needed by the tests are
        estimated even if the reported model has fewer thresholds.
    demean
        ``"hansen"``: demean within unit and drop each unit's last demeaned row, n (T-1) rows,
        as Hansen's program (reproduces his tables). ``"all"``: keep all nT demeaned rows, as
        Stata's ``xthreg``.
    time
        Add period dummies (first period dropped) to X, i.e. two-way fixed effects.
    grid_size, trim
        Hansen's ``qn`` and trimming fractions. ``trim[0]`` cuts the grid to the quantiles
        trim[0], trim[0] + 1/qn, ..., 1 - trim[0] of the distinct values of q (393 points at
        1% and qn = 400). ``trim[1]`` (second threshold and the refinement) and ``trim[2]``
        (third) make the search skip the qn * trim grid points on either side of each threshold
        already in the model, as Hansen's program does.
    n_boot
        Bootstrap replications per test (0: F statistics without p-values).
    seed
        Seed of the numpy Generator driving the bootstrap.
    se
        Standard error reported by :meth:`ThresholdResult.tidy` by default: ``"ols"``
        (homoskedastic), ``"white"`` (HC0) or ``"cluster"`` (by unit). All three are stored.
    ci_level
        Level of the threshold LR sets and the slope intervals in ``tidy``.

    Returns
    -------
    ThresholdResult
    """
    regime = [regime] if isinstance(regime, str) else list(regime)
    fixed = list(fixed)
    n_tests = n_thresholds if n_tests is None else n_tests
    _check_options(n_thresholds, n_tests, demean, se, trim, n_boot, grid_size)
    with _single_blas_thread():
        return _fit(data, y, regime, threshold, fixed, unit, period, n_thresholds, n_tests,
                    demean, time, grid_size, trim, n_boot, seed, se, ci_level)


def _single_blas_thread():
    """Limit BLAS to one thread while fitting, when threadpoolctl is available.

    Every product here is tall and thin (rows x a handful of columns); threaded BLAS gains
    nothing on them and, on a busy machine, spin-waiting threads make a QR 50x slower.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _fit(data, y, regime, threshold, fixed, unit, period, n_thresholds, n_tests, demean, time,
         grid_size, trim, n_boot, seed, se, ci_level) -> ThresholdResult:
    arrays, fixed_names, periods = panel_arrays(data, y, regime, threshold, fixed, unit, period,
                                                time)
    panel = SortedPanel(arrays.regime, arrays.q, demean)
    transformed_y = panel.transform(arrays.y)
    base_design = np.concatenate([panel.transform(arrays.fixed), panel.transform(arrays.regime)],
                                 axis=1)
    grid = hansen_grid(arrays.q, trim[0], grid_size)
    searcher = ThresholdSearcher(panel, base_design, grid)
    half_widths = [int(round(grid_size * t)) for t in trim]
    dof = arrays.n_units * (arrays.n_periods - 1)

    stages = _sequential_stages(searcher, transformed_y, max(n_thresholds, n_tests), half_widths)
    rng = np.random.default_rng(seed)
    tests = {}
    for k in range(1, n_tests + 1):
        null, rss_null, rss_alt = _test_models(stages, k)
        statistic = (rss_null / rss_alt - 1.0) * dof
        draws = (bootstrap_threshold_test(searcher, transformed_y, null, k, half_widths[k - 1],
                                          n_boot, rng, dof) if n_boot else np.empty(0))
        tests[TEST_NAMES[k - 1]] = BootstrapTest(statistic, draws)

    found = _model_thresholds(stages, n_thresholds)
    order = np.argsort([g for g, _ in found], kind="stable")
    thresholds = tuple(found[i][0] for i in order)
    coefficients, rss, dof_residual = _regime_slopes(panel, arrays, transformed_y, thresholds,
                                                     fixed_names, len(fixed), regime)
    return ThresholdResult(
        thresholds=thresholds,
        coefficients=coefficients,
        tests=tests,
        stages=stages,
        threshold_stages=tuple(found[i][1] for i in order),
        rss=rss,
        sigma2=rss / dof,
        n_units=arrays.n_units,
        n_periods=arrays.n_periods,
        n_rows=transformed_y.size,
        demean=demean,
        se_type=se,
        ci_level=ci_level,
        dof_residual=dof_residual,
        regime_share=_regime_share(arrays.q, thresholds, periods),
    )


def _check_options(n_thresholds, n_tests, demean, se, trim, n_boot, grid_size) -> None:
    if n_thresholds not in range(1, MAX_THRESHOLDS + 1):
        raise ValueError(f"n_thresholds must be 1, 2 or 3, got {n_thresholds}")
    if n_tests not in range(0, MAX_THRESHOLDS + 1):
        raise ValueError(f"n_tests must be 0, 1, 2 or 3, got {n_tests}")
    if demean not in DEMEAN_CONVENTIONS:
        raise ValueError(f"demean must be one of {DEMEAN_CONVENTIONS}, got {demean!r}")
    if se not in SE_TYPES:
        raise ValueError(f"se must be one of {SE_TYPES}, got {se!r}")
    if len(trim) < max(n_thresholds, n_tests, 1):
        raise ValueError(f"trim needs one fraction per threshold searched, got {trim}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    if grid_size < 1:
        raise ValueError(f"grid_size must be a positive integer, got {grid_size}")


def _sequential_stages(searcher: ThresholdSearcher, transformed_y: np.ndarray, depth: int,
                       half_widths: list[int]) -> dict[str, StageSearch]:
    """Hansen's sequence: g1; g2 | g1; refined g1 | g2; g3 | (refined g1, g2)."""
    stages = {"single": searcher.search(transformed_y, (), 0)}
    if depth >= 2:
        first = stages["single"].estimate
        stages["double"] = searcher.search(transformed_y, (first,), half_widths[1])
        second = stages["double"].estimate
        stages["double_refined"] = searcher.search(transformed_y, (second,), half_widths[1])
    if depth >= 3:
        pair = (stages["double_refined"].estimate, stages["double"].estimate)
        stages["triple"] = searcher.search(transformed_y, pair, half_widths[2])
    return stages


def _test_models(stages: dict[str, StageSearch], k: int) -> tuple[tuple, float, float]:
    """Null thresholds, null RSS and alternative RSS of the test of k-1 vs k thresholds."""
    stage = stages[("single", "double", "triple")[k - 1]]
    return stage.existing, stage.rss_null, stage.rss_min


def _model_thresholds(stages: dict[str, StageSearch], k: int) -> list[tuple[float, str]]:
    """(estimate, stage giving its LR curve) for each threshold of the k-threshold model."""
    if k == 1:
        return [(stages["single"].estimate, "single")]
    found = [(stages["double_refined"].estimate, "double_refined"),
             (stages["double"].estimate, "double")]
    if k == 3:
        found.append((stages["triple"].estimate, "triple"))
    return found


def panel_arrays(data: pd.DataFrame, y: str, regime: list[str], threshold: str,
                 fixed: list[str], unit: str, period: str, time: bool
                 ) -> tuple[PanelArrays, list[str], np.ndarray]:
    """Validate a balanced panel and reshape it to (unit, period[, column]) arrays.

    Rows are sorted by (unit, period); with ``time`` the period dummies d_it(p) = 1[t = p]
    (the first period dropped) are appended to the fixed regressors F_it.

    Returns
    -------
    tuple
        :class:`models.threshold.search.PanelArrays` (y (n, T), F (n, T, k_f), x (n, T, k_r),
        q (n, T)), the names of the fixed regressors and the sorted periods.

    Raises
    ------
    ValueError
        Naming the column or rows: a missing column, values that are not finite numbers,
        repeated (unit, period) pairs, or an unbalanced panel.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if not regime:
        raise ValueError("regime needs at least one regressor whose slope switches")
    numeric = [y, *fixed, *regime, threshold]
    missing = [c for c in [unit, period, *numeric] if c not in data.columns]
    if missing:
        raise ValueError(f"column(s) {missing} not in the data (columns: {list(data.columns)})")
    for column in dict.fromkeys(numeric):
        values = pd.to_numeric(data[column], errors="coerce")
        bad = np.flatnonzero(~np.isfinite(values.to_numpy(dtype=float)))
        if bad.size:
            raise ValueError(f"column {column!r} must be finite numbers; rows with index "
                             f"{data.index[bad[:5]].tolist()} are missing, infinite or not "
                             "numeric")
    keys = data[[unit, period]]
    duplicated = np.flatnonzero(keys.duplicated().to_numpy())
    if duplicated.size:
        raise ValueError(f"({unit}, {period}) must identify rows; rows with index "
                         f"{data.index[duplicated[:5]].tolist()} repeat an earlier pair")
    frame = data.sort_values([unit, period])
    periods = np.sort(frame[period].unique())
    counts = frame.groupby(unit)[period].count()
    short = counts[counts != periods.size]
    if not short.empty:
        # with duplicates excluded, a full count means every period of the panel is present
        raise ValueError(f"the panel must be balanced ({periods.size} periods per {unit}); "
                         f"{unit} {short.index[:5].tolist()} have {short.to_numpy()[:5].tolist()}")
    n_units = counts.size

    def shaped(columns: list[str]) -> np.ndarray:
        values = frame[columns].to_numpy(dtype=float)
        return values.reshape(n_units, periods.size, len(columns))

    fixed_values = shaped(fixed) if fixed else np.empty((n_units, periods.size, 0))
    fixed_names = list(fixed)
    if time:
        dummies = (frame[period].to_numpy()[:, None] == periods[None, 1:]).astype(float)
        fixed_values = np.concatenate(
            [fixed_values, dummies.reshape(n_units, periods.size, -1)], axis=2)
        fixed_names += [f"{period}_{p}" for p in periods[1:]]
    arrays = PanelArrays(y=shaped([y])[:, :, 0], fixed=fixed_values, regime=shaped(regime),
                         q=shaped([threshold])[:, :, 0])
    return arrays, fixed_names, periods


def _regime_slopes(panel: SortedPanel, arrays: PanelArrays, transformed_y: np.ndarray,
                   thresholds: tuple[float, ...], fixed_names: list[str], n_plain: int,
                   regime: list[str]) -> tuple[pd.DataFrame, float, int]:
    """OLS on the transformed regime-split design, with OLS, White and cluster SE.

    Z is the transformed design (m rows, K columns: the fixed regressors, of which the first
    ``n_plain`` are the user's and the rest period dummies, then the regime-split x). OLS SE
    use S / (m - n - K): Hansen's program under ``demean="hansen"`` (m = n(T-1)), the usual
    within degrees of freedom under ``"all"`` (m = nT). White SE are HC0. Cluster SE (by unit) are
    (Z'Z)^{-1} (sum_i Z_i' e_i e_i' Z_i) (Z'Z)^{-1} times G/(G-1) (m-1)/(m-K-1) (CR1, as
    Stata's ``xtreg, fe vce(cluster)``).
    """
    bounds = np.concatenate([[-np.inf], thresholds, [np.inf]])
    pieces = [panel.transform(arrays.fixed)]
    for low, high in zip(bounds[:-1], bounds[1:]):
        inside = (arrays.q >= low) & (arrays.q < high)
        pieces.append(panel.transform(arrays.regime * inside[:, :, None]))
    design = np.concatenate(pieces, axis=1)
    rows, n_coef = design.shape
    # QR keeps (Z'Z)^{-1} accurate when columns differ in scale by orders of magnitude (Q^3).
    basis, upper = np.linalg.qr(design)
    if np.any(np.abs(np.diag(upper)) <= 1e-10 * np.linalg.norm(design, axis=0)):
        raise ValueError("the final design is collinear: a regime holds no observation with "
                         "within variation, or a regressor is constant within units")
    upper_inverse = linalg.solve_triangular(upper, np.eye(n_coef))
    inverse = upper_inverse @ upper_inverse.T
    estimate = upper_inverse @ (basis.T @ transformed_y)
    residual = transformed_y - design @ estimate
    rss = float(residual @ residual)
    n_units = arrays.n_units
    # Hansen's program divides by ty - n - K although its rows already exclude one per unit;
    # kept for "hansen" so the OLS standard errors match his Table 5.
    dof_residual = rows - n_units - n_coef
    se_ols = np.sqrt(np.diag(inverse) * rss / dof_residual)
    scores = design * residual[:, None]
    se_white = np.sqrt(np.diag(inverse @ (scores.T @ scores) @ inverse))
    unit_scores = scores.reshape(n_units, -1, n_coef).sum(axis=1)
    # Stata's xtreg, fe and pyfixest count the absorbed intercept in K here.
    correction = n_units / (n_units - 1) * (rows - 1) / (rows - n_coef - 1)
    se_cluster = np.sqrt(np.diag(inverse @ (unit_scores.T @ unit_scores) @ inverse) * correction)
    terms = fixed_names + [f"{name}_regime{j + 1}" for j in range(len(thresholds) + 1)
                           for name in regime]
    kinds = ["slope"] * n_coef
    for j in range(n_plain, len(fixed_names)):
        kinds[j] = "time_effect"
    table = pd.DataFrame({"term": terms, "kind": kinds, "estimate": estimate, "se_ols": se_ols,
                          "se_white": se_white, "se_cluster": se_cluster})
    return table, rss, dof_residual


def _regime_share(q: np.ndarray, thresholds: tuple[float, ...], periods: np.ndarray
                  ) -> pd.DataFrame:
    """Percentage of units in each regime by period (Hansen's Table 4), regime j rows."""
    regime_of = np.searchsorted(np.asarray(thresholds), q, side="right")
    shares = np.stack([(regime_of == j).mean(axis=0) * 100.0
                       for j in range(len(thresholds) + 1)])
    return pd.DataFrame(shares, index=[f"regime{j + 1}" for j in range(shares.shape[0])],
                        columns=periods)

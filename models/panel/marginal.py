"""The Gaussian TWFE likelihood with the hierarchical unit effects integrated out exactly.

For unit i with T_i rows, u_i = m_i' lambda + unit_sd z_i, z_i ~ N(0, 1), and residual
r_i = y_i - alpha - X~_i beta - tau_{t(i)} - m_i' lambda,

    y_i ~ N(., sigma^2 I + unit_sd^2 11'),

whose log density splits into the within-unit sum of squares of r_i (scale sigma^2) and the
unit mean of r_i (scale sigma^2 / T_i + unit_sd^2). Both parts are written with sufficient
statistics, so a gradient costs O(k^2 + T^2 + G d^2) and nothing per observation or per unit:

* within: ||P y||^2 - 2 beta'X~'y + beta'X~'X~ beta - 2 tau'D'P y + tau'D'P D tau
  (P removes unit means, D are the year indicators; X~ is orthogonal to D);
* between: the units fall into G groups of equal T_i (one group in a balanced panel). With
  z_i = (1, m_i, s_i) (s_i: unit i's share of rows in each year) and theta = (alpha, lambda,
  tau), sum_{i in g} T_i rbar_i^2 = a_g - 2 theta'h_g + theta'G_g theta, with a_g, h_g, G_g the
  T-weighted sums of ybar_i^2, z_i ybar_i and z_i z_i'.

After sampling, each draw gets one exact draw of the unit effects from their normal conditional
posterior (:func:`draw_unit_effects`), so the joint draws are those of the full model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.panel.design import PanelDesign
from models.panel.stored import add_design_data, design_from_dataset


@dataclass(frozen=True)
class SufficientStats:
    """Statistics of the Gaussian TWFE likelihood with the unit effects integrated out.

    The fields in :data:`MODEL_FIELDS` enter the log density (:func:`marginal_normal_logp`);
    the per-unit fields serve the exact draws of the unit effects afterwards.
    """

    syy_within: float  # ||P y||^2, P = within-unit demeaning
    sxx: np.ndarray  # X~'X~
    sxy: np.ndarray  # X~'y
    year_cross: np.ndarray  # D'P y (empty without year effects)
    year_gram: np.ndarray  # D'P D
    ybar_centre: float  # T-weighted mean of ybar_i, subtracted for accuracy
    group_units: np.ndarray  # (G,) number of units with T_i = group_rows[g]
    group_rows: np.ndarray  # (G,) T_i of the group
    group_syy: np.ndarray  # (G,) a_g
    group_zy: np.ndarray  # (G, d) h_g
    group_zz: np.ndarray  # (G, d, d) G_g
    unit_counts: np.ndarray  # T_i
    unit_ybar: np.ndarray  # ybar_i
    year_share: np.ndarray | None  # (N, T): share of unit i's rows in year t

    @classmethod
    def from_design(cls, design: PanelDesign) -> SufficientStats:
        """Compute every statistic from a prepared design (one pass over the data)."""
        n_units = len(design.unit_labels)
        counts = np.bincount(design.unit_idx, minlength=n_units).astype(float)
        ybar = np.bincount(design.unit_idx, weights=design.y, minlength=n_units) / counts
        y_unit_within = design.y - ybar[design.unit_idx]
        year_cross, year_gram, year_share = np.zeros(0), np.zeros((0, 0)), None
        unit_rows = [np.ones((n_units, 1)), design.unit_means]
        if design.time_idx is not None:
            n_years = len(design.time_labels)
            unit_year = np.zeros((n_units, n_years))
            np.add.at(unit_year, (design.unit_idx, design.time_idx), 1.0)
            year_cross = np.bincount(design.time_idx, weights=y_unit_within, minlength=n_years)
            year_gram = np.diag(unit_year.sum(axis=0)) - unit_year.T @ (unit_year / counts[:, None])
            year_share = unit_year / counts[:, None]
            unit_rows.append(year_share)
        z = np.hstack(unit_rows)
        centre = float(counts @ ybar / counts.sum())
        y_centred = ybar - centre
        rows, group_of_unit = np.unique(counts, return_inverse=True)
        n_groups = rows.size
        group_units = np.bincount(group_of_unit, minlength=n_groups).astype(float)
        weighted_z = z * counts[:, None]
        group_syy = np.bincount(group_of_unit, weights=counts * y_centred**2, minlength=n_groups)
        group_zy = np.stack([weighted_z[group_of_unit == g].T @ y_centred[group_of_unit == g]
                             for g in range(n_groups)])
        group_zz = np.stack([weighted_z[group_of_unit == g].T @ z[group_of_unit == g]
                             for g in range(n_groups)])
        return cls(
            syy_within=float(y_unit_within @ y_unit_within),
            sxx=design.x_within.T @ design.x_within,
            sxy=design.x_within.T @ design.y,
            year_cross=year_cross,
            year_gram=year_gram,
            ybar_centre=centre,
            group_units=group_units,
            group_rows=rows,
            group_syy=group_syy,
            group_zy=group_zy,
            group_zz=group_zz,
            unit_counts=counts,
            unit_ybar=ybar,
            year_share=year_share,
        )


# The statistics the log density uses: the data containers of a compiled model.
MODEL_FIELDS = ("syy_within", "sxx", "sxy", "year_cross", "year_gram", "ybar_centre",
                "group_units", "group_rows", "group_syy", "group_zy", "group_zz")


def marginal_normal_logp(stats, intercept, slope, between, year_effect, sigma, unit_sd):
    """log p(y | alpha, beta, lambda, tau, sigma, unit_sd) with the unit offsets integrated out.

        -(n - N)/2 log sigma^2 - 1/2 sum_g N_g log(sigma^2 + T_g unit_sd^2)
        - W / (2 sigma^2) - 1/2 sum_g (a_g - 2 theta'h_g + theta'G_g theta)
                                      / (sigma^2 + T_g unit_sd^2) - n/2 log(2 pi),

    W the within sum of squares, theta = (alpha - ybar_centre, lambda, tau); see the module
    docstring. ``stats`` is a :class:`SufficientStats` or an object with the same attributes
    holding PyTensor variables (data containers). ``year_effect`` is None without year effects.
    """
    import pytensor.tensor as pt

    sigma2 = sigma**2
    within_ss = (
        stats.syy_within - 2.0 * pt.dot(slope, stats.sxy) + pt.dot(slope, pt.dot(stats.sxx, slope))
    )
    theta_parts = [pt.shape_padleft(intercept - stats.ybar_centre), between]
    if year_effect is not None:
        within_ss = (
            within_ss
            - 2.0 * pt.dot(year_effect, stats.year_cross)
            + pt.dot(year_effect, pt.dot(stats.year_gram, year_effect))
        )
        theta_parts.append(year_effect)
    theta = pt.concatenate(theta_parts)
    between_ss = (stats.group_syy - 2.0 * pt.dot(stats.group_zy, theta)
                  + pt.sum(pt.sum(stats.group_zz * theta, axis=-1) * theta, axis=-1))
    between_var = sigma2 + stats.group_rows * unit_sd**2
    n_units = pt.sum(stats.group_units)
    n_obs = pt.dot(stats.group_units, stats.group_rows)
    return (
        -0.5 * (n_obs - n_units) * pt.log(sigma2)
        - 0.5 * pt.dot(stats.group_units, pt.log(between_var))
        - 0.5 * within_ss / sigma2
        - 0.5 * pt.sum(between_ss / between_var)
        - 0.5 * n_obs * np.log(2.0 * np.pi)
    )


def draw_unit_effects(idata, design: PanelDesign, seed: int) -> None:
    """Draw the integrated-out unit effects (:func:`add_unit_effects`) and add the pointwise
    log-likelihood (:func:`add_log_likelihood`)."""
    add_unit_effects(idata, design, seed)
    add_log_likelihood(idata, design)


def add_unit_effects(idata, design: PanelDesign, seed: int) -> None:
    """One exact draw of the integrated-out unit effects per posterior draw.

    Given the sampled parameters, u_i | y is normal with precision
    1 / unit_sd^2 + T_i / sigma^2 and mean (m_i / unit_sd^2 + T_i rhat_i / sigma^2) / precision,
    where m_i = (xbar_i - xbar)' lambda and rhat_i = mean_t(y_it - alpha - x~_it' beta - tau_t);
    one exact draw per posterior draw makes the joint draws those of the full model.
    """
    from models.panel.kernels import unit_effect_draws

    stats = SufficientStats.from_design(design)
    post = idata.posterior
    shape = post["sigma"].shape
    n_units = len(design.unit_labels)
    if design.time_idx is not None:
        year, share = _flat(post, "year_effect"), stats.year_share
    else:
        year, share = np.zeros((int(np.prod(shape)), 0)), np.zeros((n_units, 0))
    rng = np.random.default_rng([seed, 0x5EED])
    noise = rng.standard_normal(shape + (n_units,))
    effect, offset = unit_effect_draws(
        _flat(post, "intercept"), _flat(post, "between"), year, _flat(post, "sigma"),
        _flat(post, "unit_sd"), np.ascontiguousarray(design.unit_means, dtype=float),
        stats.unit_ybar, stats.unit_counts, np.ascontiguousarray(share, dtype=float),
        noise.reshape((-1, n_units)))
    dims = ("chain", "draw", "unit")
    idata.posterior = post.assign(
        unit_effect=(dims, effect.reshape(noise.shape)),
        unit_offset=(dims, offset.reshape(noise.shape)),
    ).assign_coords(unit=list(design.unit_labels))


def _flat(posterior, name: str) -> np.ndarray:
    """A posterior variable with chain and draw merged into one leading axis, contiguous."""
    values = posterior[name].values
    return np.ascontiguousarray(values.reshape((-1,) + values.shape[2:]), dtype=float)


def add_log_likelihood(idata, design: PanelDesign) -> None:
    """The pointwise Gaussian log-likelihood given the unit effects,
    log N(y_it | alpha + x~_it' beta + u_i + tau_t, sigma), as the ``log_likelihood`` group
    (named after the outcome; :func:`models.panel.kernels.normal_pointwise_loglik`)."""
    import xarray as xr

    from models.panel.kernels import normal_pointwise_loglik

    post = idata.posterior
    shape = post["sigma"].shape
    with_years = design.time_idx is not None
    year = _flat(post, "year_effect") if with_years else np.zeros((int(np.prod(shape)), 0))
    time_idx = design.time_idx if with_years else np.zeros(design.n_obs, dtype=np.int64)
    loglik = normal_pointwise_loglik(
        _flat(post, "intercept"), _flat(post, "slope"), _flat(post, "unit_effect"), year,
        _flat(post, "sigma"),
        np.ascontiguousarray(design.x_within.T, dtype=float),
        np.ascontiguousarray(design.y, dtype=float), design.unit_idx, time_idx)
    loglik_set = xr.Dataset(
        {design.outcome: (("chain", "draw", "obs"), loglik.reshape(shape + (design.n_obs,)))},
        coords={"chain": post.chain, "draw": post.draw, "obs": np.arange(design.n_obs)},
    )
    if "log_likelihood" in idata.groups():
        del idata.log_likelihood
    idata.add_groups({"log_likelihood": loglik_set})


def restore_unit_effects(idata) -> None:
    """Recompute ``unit_effect``, ``unit_offset`` and ``log_likelihood`` of a loaded posterior
    whose file left them out (:mod:`models.panel.stored`), with :func:`draw_unit_effects` on
    the stored design and the fit's seed, as at fit time."""
    design = design_from_dataset(idata.constant_data)
    draw_unit_effects(idata, design, int(idata.posterior.attrs["seed"]))


def add_observed_data(idata, design: PanelDesign) -> None:
    """Add the outcome (``observed_data``) and the whole design (``constant_data``, from which
    a saved posterior's unit effects are recomputed on load)."""
    import xarray as xr

    add_design_data(idata, design)
    if "observed_data" in idata.groups():
        return
    observed = xr.Dataset(
        {design.outcome: ("obs", design.y)}, coords={"obs": np.arange(design.n_obs)}
    )
    idata.add_groups({"observed_data": observed})


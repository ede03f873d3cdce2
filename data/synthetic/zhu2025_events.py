"""Event-study part of the SYNTHETIC zhu2025 panel (Tables 5-6): the published Treat x year
paths and the calibration that makes the TWFE projection of E[ln(1 + Y)] on Treat x year equal
them (see :mod:`data.synthetic.zhu2025` for the data-generating process)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from data.synthetic.within import alternating_demean, codes

REFERENCE_YEAR = 2015
POLICY_YEAR = 2016

# Tables 5-6: published Treat x year paths (before5..before2, current, after1..after3).
EVENT_PUBLISHED = {
    "ai_entries": (
        [-0.056, -0.091, -0.053, -0.001, -0.045, -0.123, -0.112, -0.174],
        [0.068] * 8,
        "5",
        "1",
    ),
    "ai_exits": (
        [0.013, 0.004, 0.007, 0.007, 0.019, 0.089, 0.171, 0.233],
        [0.053] * 8,
        "5",
        "2",
    ),
    "ai_inv_apps": (
        [0.135, 0.069, -0.079, -0.157, -0.237, -0.312, -0.290, -0.206],
        [0.093] * 7 + [0.092],
        "6",
        "1",
    ),
    "ai_inv_grants": (
        [-0.054, 0.010, 0.002, -0.016, -0.074, -0.102, -0.036, -0.060],
        [0.039, 0.038, 0.037, 0.036, 0.034, 0.034, 0.033, 0.034],
        "6",
        "2",
    ),
}


NET_PUBLISHED = [-0.054, -0.089, -0.047, 0.001, -0.036, -0.110, -0.124, -0.285]


PRINTED_YEARS = [2011, 2012, 2013, 2014, 2016, 2017, 2018, 2019]


# NegBin: a_Y, b_Y (on ln(1 + ai_2020)), s_Y (city noise), size r_Y, year slope,
# post-2016 jump, loading on z
EVENT_LEVELS = {
    "ai_entries": (0.4, 0.45, 1.2, 20.0, 0.06, 0.25, 0.6),
    "ai_exits": (-1.7, 0.30, 0.4, 5.0, 0.10, 0.20, 0.2),
    "ai_inv_apps": (-0.5, 1.10, 0.5, 5.0, 0.10, 0.20, 0.3),
    "ai_inv_grants": (-1.3, 1.10, 0.5, 5.0, 0.12, 0.20, 0.3),
}


def event_year_effects(year: np.ndarray, path: dict[int, float]) -> np.ndarray:
    return np.array([path.get(int(y), 0.0) for y in year])


def full_path(printed: list[float]) -> dict[int, float]:
    path = dict(zip(PRINTED_YEARS, printed, strict=True))
    path[2010] = path[2011]
    path[2020] = path[2019]
    path[REFERENCE_YEAR] = 0.0
    return path


def expected_log1p(mean: np.ndarray, size: float) -> np.ndarray:
    """E[ln(1 + Y)] for Y ~ NegBin(mean, size), summed over the pmf in chunks of similar mean."""
    out = np.empty(mean.size)
    order = np.argsort(mean)
    for chunk in np.array_split(order, 16):
        p = size / (size + mean[chunk])
        top = int(stats.nbinom.ppf(1 - 1e-12, size, p.min())) + 2
        support = np.arange(top + 1)
        pmf = stats.nbinom.pmf(support[None, :], size, p[:, None])
        out[chunk] = pmf @ np.log1p(support)
    return out


def treat_path_estimand(frame: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """TWFE coefficients of ``values`` on Treat x year (2015 omitted), city and year effects."""
    years = [y for y in np.unique(frame["year"].to_numpy()) if y != REFERENCE_YEAR]
    dummies = np.column_stack(
        [(frame["year"].to_numpy() == y) * frame["treat"].to_numpy() for y in years]
    ).astype(float)
    city, year = codes(frame["city"]), codes(frame["year"])
    x_w = alternating_demean(dummies, city, year)
    y_w = alternating_demean(values, city, year)[:, 0]
    coef = np.linalg.lstsq(x_w, y_w, rcond=None)[0]
    return coef


def calibrate_event(frame: pd.DataFrame, name: str) -> dict:
    """Solve theta_t so that the TWFE projection of E[ln(1+Y)] equals the published path."""
    a, b, s, size, slope, jump, z_loading = EVENT_LEVELS[name]
    years = [y for y in np.unique(frame["year"].to_numpy()) if y != REFERENCE_YEAR]
    target_path = full_path(EVENT_PUBLISHED[name][0])
    target = np.array([target_path[y] for y in years])
    base = (
        a
        + b * np.log1p(frame["ai_2020"].to_numpy())
        + z_loading * frame["z"].to_numpy()
        + s * frame["u_" + name].to_numpy()
        + slope * (frame["year"].to_numpy() - REFERENCE_YEAR)
        + jump * (frame["year"].to_numpy() >= POLICY_YEAR)
    )
    treat = frame["treat"].to_numpy()
    theta = target.copy()
    step = np.full(theta.size, 1.0)
    for _ in range(30):
        path = dict(zip(years, theta, strict=True))
        log_mean = base + treat * event_year_effects(frame["year"].to_numpy(), path)
        implied = treat_path_estimand(frame, expected_log1p(np.exp(log_mean), size))
        gap = target - implied
        if np.abs(gap).max() < 1e-7:
            break
        bumped = dict(zip(years, theta + 0.01, strict=True))
        log_bumped = base + treat * event_year_effects(frame["year"].to_numpy(), bumped)
        slope_est = (
            treat_path_estimand(frame, expected_log1p(np.exp(log_bumped), size)) - implied
        ) / 0.01
        step = np.where(np.abs(slope_est) > 1e-6, slope_est, 1.0)
        theta = theta + gap / step
    return {
        "log_mean_base": base,
        "theta": dict(zip(years, theta, strict=True)),
        "implied_path": dict(zip(years, implied, strict=True)),
        "size": size,
    }


def add_event_counts(frame: pd.DataFrame, stream: np.random.Generator, seed: int) -> dict:
    """Draw the event-study counts (Tables 5-6) into ``frame`` (every city in every year, before
    the two 2010 rows are dropped), one column per outcome, and
    return their true parameters and paths.

    Each outcome gets its own city noise ``u_<name>`` from ``stream`` and its own draw stream
    (seed, 5, i), so that adding an outcome leaves the others' draws unchanged.
    """
    n_years = frame["year"].nunique()
    n_city = len(frame) // n_years
    event_truth = {}
    for i, name in enumerate(EVENT_LEVELS):
        frame["u_" + name] = np.repeat(stream.normal(size=n_city), n_years)
        fit = calibrate_event(frame, name)
        years = frame["year"].to_numpy()
        log_mean = fit["log_mean_base"] + frame["treat"].to_numpy() * event_year_effects(
            years, fit["theta"]
        )
        mean = np.exp(log_mean)
        draw_rng = np.random.default_rng(np.random.SeedSequence([seed, 5, i]))
        frame[name] = draw_rng.negative_binomial(fit["size"], fit["size"] / (fit["size"] + mean))
        a, b, s, nb_size, slope, jump, z_loading = EVENT_LEVELS[name]
        table, column = EVENT_PUBLISHED[name][2], EVENT_PUBLISHED[name][3]
        event_truth[name] = {
            "likelihood": "negative binomial, log link, variance mu + mu^2 / size",
            "a": a,
            "b_ln1p_ai_2020": b,
            "z_loading": z_loading,
            "city_noise_sd": s,
            "size": nb_size,
            "year_slope": slope,
            "post_2016_jump": jump,
            "theta_log_mean": {str(k): v for k, v in fit["theta"].items()},
            "path_ln1p": {str(k): v for k, v in fit["implied_path"].items()},
            "calibrated_from": f"Table {table} column {column} (2010 = 2011, 2020 = 2019)",
        }
    return event_truth

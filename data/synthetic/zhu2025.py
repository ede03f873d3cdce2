"""SYNTHETIC city panel calibrated to Zhu, Leng & Zhang (2025), 260 cities x 2010-2020.

The panel shows the workflow and gives every model a known truth; it is not evidence about
China. Numbers come from the published Tables 1-6 and the concentration facts of section 3
(``calibrated_from`` in the truth says which).

Columns (contract ``data/schemas/zhu2025.toml``; ln = natural log)
--------------------------------------------------------------------
keys and groups: ``city`` (id), ``year``, ``province`` (id), ``region`` (east / central / west),
``income_group`` (high / low: 2010 per-capita GDP above / below the median city);
outcomes: ``ln_gdp`` (ln GDP, 100 million yuan), ``ln_gdp_sec`` (ln secondary-sector output,
100 million yuan), ``ln_emp_sec`` and ``ln_emp_mfg`` (ln secondary / manufacturing employment,
10,000 persons), ``ln_gdp_pc`` (ln per-capita GDP, yuan);
shift-share inputs (counts per city-year): ``mfg_firms`` (surviving manufacturing firms),
``ai_firms`` (surviving manufacturing AI firms), ``ai_inv_apps`` / ``ai_inv_grants`` (AI invention
patent applications / grants in manufacturing);
controls: ``ln_pop`` (ln registered population, 10,000), ``ln_emp`` (ln employed persons in
units, 10,000), ``ln_rd_staff`` (ln R&D personnel, persons); Table 4 extra controls
``ln_ind_firms`` (ln industrial enterprises above designated size), ``ln_loans`` (ln year-end
loans, 100 million yuan), ``ln_fdi`` (ln FDI actually used, 10,000 USD), ``ln_edu_exp`` and
``ln_sci_exp`` (ln education / science spending, 10,000 yuan); ``gdp_growth`` (real GDP growth,
percent; the Table 4 alternative weight); ``sec_share_2015`` (secondary-sector share of GDP in
2015, percent; Treat);
event-study outcomes (counts per city-year): ``ai_entries``, ``ai_exits``, ``ai_net_entries``
(= entries - exits), ``ai_inv_apps``, ``ai_inv_grants``.

Data-generating process
-----------------------
Cities c = 1..260 (100 east, 80 central, 80 west; 30 provinces), years t = 2010..2020; the 2010
rows of two cities are missing (2,858 rows, the N of Table 1 column 1). A development factor
z_c ~ N(m_region, 1) drives city size and every city mean.

AI firms, 2020 (section 3): the five largest cities hold [643, 180, 150, 130, 110] (Shenzhen 22%,
top five 41.5% of 2,923), 119 more cities hold a power law n_r ~ A (r / 6)^-1.3 (mostly single
digits) and the remaining 136 cities (52%, as 192 of 367 in the text) hold none; ranks go to
cities by a propensity 0.9 z_c + 0.8 east_c + N(0, 0.7). Each 2020 firm gets a founding year
(2000-2020, odds rising 10% a year and x1.8 from 2016, the paper's acceleration), and
ai_firms_{c,t} counts those founded by t.

Manufacturing firms: ln firm_{c,2020} = 8.6 + 0.7 z_c + 0.3 ln(1 + ai_{c,2020}) + N(0, 0.3^2),
ln firm_{c,t-1} = ln firm_{c,t} - g_c - eta_{c,t}, g_c ~ N(0.075, 0.03^2), eta ~ N(0, 0.03^2).

Event-study counts (Tables 5-6): for Y in (entries, exits, applications, grants)

    Y_{c,t} ~ NegBin(mean mu_{c,t}, size r_Y),
    log mu_{c,t} = a_Y + b_Y ln(1 + ai_{c,2020}) + l_Y z_c + s_Y u_Y,c + d_Y,t
                   + theta_Y,t Treat_c,   d_Y,t = slope_Y (t - 2015) + jump_Y 1[t >= 2016],

Treat_c = 1[sec_share_2015_c > median], theta_Y,2015 = 0. The paper's outcomes are read as
ln(1 + count): the net-entry model loses 18 observations (net entries <= -1 have no log) and the
coefficients are log-point sized. theta_Y,t is solved so that the TWFE projection of
E[ln(1 + Y_{c,t})] (computed from the NegBin pmf) on Treat x year dummies with city and year
effects equals the published path; 2010 takes the 2011 (before5) value and 2020 the 2019
(after3) value, which the paper does not print. Net entries are entries minus exits; their path
is implied, not set. Entry and patent intensities load on city size as well as on the AI stock,
so most cities have entries although half hold no AI firm in 2020 (the paper's event-study N of
2,618 implies the same); the stock and the flows are not tied by an accounting identity.

Shift-share measures (eq. 2; ``data.measures.shift_share``): M_k,{c,t} = w_k,c firm_{c,t} / 100
with w_k,c = stock_k,{c,2020} / firm_{c,2020}, per 100 AI firms (k = firms) or 100 invention
patents (k = apps, grants); M_gw back-casts ai_{c,2020} with gdp_growth (Table 4 column 3).

Outcomes (Tables 1-4): for y in (ln_gdp, ln_gdp_sec, ln_emp_sec, ln_emp_mfg, ln_gdp_pc)

    y_{c,t} = mu_y + kappa_y z_c + u_y,c + tau_y t + gamma_y' (ln_pop, ln_emp, ln_rd_staff)_{c,t}
              + theta_y h_c M_firms,{c,t} + phi_y ln_loans_{c,t} + sigma_y e_{c,t},
    e_{c,t} = 0.5 e_{c,t-1} + sqrt(1 - 0.5^2) N(0, 1),   h_c = 1 + 0.5 high_income_c.

One channel: the AI firm measure (phi_y = 0 except for ln_gdp). ln_loans loads on M_firms, so
for ln_gdp (theta, phi) solve "TWFE estimand of Table 1 column 1 = 0.125 and of Table 4 column
2 (extra controls) = 0.0483" exactly on the generated regressors; for the other outcomes theta
puts the estimand of the firm column on the published value. The truth keeps theta (slope in
low-income cities; high-income slopes are 1.5 times as large, our choice: the paper states the
direction only) and, under ``estimands``, the coefficient each published specification has on
the noise-free outcome. sigma_y solves the quadratic that puts the city-clustered (CR1) SE of
the firm column at the published SE.

Patent columns (Tables 1-3 columns with M_apps, M_grants) are not set: their estimands follow
from the one channel and from patents scaling with AI firms (b = 1.1). Under one channel the
grant coefficient exceeds the application one (grants are fewer than applications), whereas the
paper prints 0.019 < 0.033; solving for separate patent channels needs opposite-signed effects
whose unexplained part alone exceeds the published SEs, so it was not used.

Samples: the firm models use every row (cities without AI firms have M = 0); the patent models
use the cities with a positive 2020 count (their weight is zero otherwise).

Not reproduced: the per-model N of Tables 3-6 (2,598 / 2,048 / 1,845; 1,785 with the extra
controls; 2,618 / 2,903 / 1,498 in the event studies) because the shipped panel has no missing
values; Table 4 column 3 (growth weights; its printed numbers equal Table 1 column 1) and
column 4 (system GMM, specification unstated); R2 (the published 0.98 with the published SE
would need a measure unit near 10 AI firms; see ``data.measures.shift_share``); the event-study
SEs only roughly (negative binomial noise, one size per outcome); the Table 6 grant SEs (0.036
on 1,498 rows) least.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from data.measures.shift_share import (
    FIRM_UNIT,
    PATENT_UNIT,
    concentration_facts,
    growth_weighted_measure,
    shift_share_measure,
)
from data.synthetic.within import (
    alternating_demean,
    cluster_parts,
    codes,
    twfe_first_coef,
    within_columns,
)
from data.synthetic.zhu2025_events import (
    NET_PUBLISHED,
    POLICY_YEAR,
    PRINTED_YEARS,
    REFERENCE_YEAR,
    add_event_counts,
)
from data.synthetic.zhu2025_mediation import mediation_truth

DEFAULT_SEED = 20250402
FILES_DIR = Path(__file__).resolve().parent.parent / "files" / "zhu2025"
YEARS = np.arange(2010, 2021)
REGION_SIZES = {"east": 100, "central": 80, "west": 80}
REGION_PROVINCES = {"east": 11, "central": 8, "west": 11}
REGION_MEAN = {"east": 0.4, "central": 0.0, "west": -0.4}
N_MISSING_2010 = 2

# Section 3 facts (2020): top-5 counts, Shenzhen 22%, top-5 41.5%, 192 of 367 cities with none.
TOP5_AI_FIRMS = (643, 180, 150, 130, 110)
TOTAL_AI_FIRMS = 2923  # 643 / 0.22
ZERO_SHARE = 192 / 367
POWER_EXPONENT = 1.3

# Published coefficient and clustered SE, Tables 1-4 (estimate, se, outcome, measure, sample).
PUBLISHED = {
    ("1", "1"): (0.125, 0.01, "ln_gdp", "m_firms", "all"),
    ("1", "2"): (0.033, 0.00, "ln_gdp", "m_apps", "apps"),
    ("1", "3"): (0.019, 0.00, "ln_gdp", "m_grants", "grants"),
    ("2", "1"): (0.169, 0.02, "ln_gdp_sec", "m_firms", "all"),
    ("2", "2"): (0.048, 0.01, "ln_gdp_sec", "m_apps", "apps"),
    ("2", "3"): (0.027, 0.01, "ln_gdp_sec", "m_grants", "grants"),
    ("3", "1"): (0.137, 0.02, "ln_emp_sec", "m_firms", "all"),
    ("3", "2"): (0.052, 0.01, "ln_emp_sec", "m_apps", "apps"),
    ("3", "3"): (0.039, 0.01, "ln_emp_sec", "m_grants", "grants"),
    ("3", "4"): (0.064, 0.03, "ln_emp_mfg", "m_firms", "all"),
    ("3", "5"): (0.050, 0.01, "ln_emp_mfg", "m_apps", "apps"),
    ("3", "6"): (0.043, 0.01, "ln_emp_mfg", "m_grants", "grants"),
    ("4", "1"): (0.0518, 0.01, "ln_gdp_pc", "m_firms", "all"),
    ("4", "2"): (0.0483, 0.01, "ln_gdp", "m_firms", "all"),
    ("4", "3"): (0.125, 0.01, "ln_gdp", "m_firms_gw", "all"),
}
BASE_CONTROLS = ("ln_pop", "ln_emp", "ln_rd_staff")
EXTRA_CONTROLS = ("ln_ind_firms", "ln_loans", "ln_fdi", "ln_edu_exp", "ln_sci_exp")
# Columns each outcome's signal is built from, in the order of the published columns it meets.
OUTCOME_COLUMNS = {
    "ln_gdp": [("1", "1"), ("4", "2")],
    "ln_gdp_sec": [("2", "1")],
    "ln_emp_sec": [("3", "1")],
    "ln_emp_mfg": [("3", "4")],
    "ln_gdp_pc": [("4", "1")],
}
# Basis of the signal that each published column's coefficient pins down.
COLUMN_BASIS = {
    ("4", "2"): "ln_loans",
}
# mu_y, kappa_y (on z), tau_y slope per year, city-effect noise sd, gamma_y (pop, emp, rd)
OUTCOME_LEVELS = {
    "ln_gdp": (5.2, 0.75, 0.085, 0.25, (0.30, 0.20, 0.05)),
    "ln_gdp_sec": (4.5, 0.70, 0.070, 0.30, (0.30, 0.25, 0.06)),
    "ln_emp_sec": (1.2, 0.80, 0.010, 0.35, (0.40, 0.50, 0.03)),
    "ln_emp_mfg": (0.9, 0.85, 0.005, 0.40, (0.40, 0.45, 0.03)),
    "ln_gdp_pc": (13.0, 0.45, 0.075, 0.20, (-0.60, 0.20, 0.05)),
}
AR_RHO = 0.5
HIGH_INCOME_SLOPE_RATIO = 1.5


# --------------------------------------------------------------------------- building blocks
def _cities(rng: np.random.Generator) -> pd.DataFrame:
    regions = np.repeat(list(REGION_SIZES), list(REGION_SIZES.values()))
    n = regions.size
    province = np.empty(n, dtype=object)
    start = 0
    offset = 0
    for region, size in REGION_SIZES.items():
        count = REGION_PROVINCES[region]
        labels = [f"P{offset + i + 1:02d}" for i in range(count)]
        province[start : start + size] = rng.choice(labels, size=size)
        province[start : start + size][:count] = labels  # every province has a city
        start += size
        offset += count
    z = np.array([REGION_MEAN[r] for r in regions]) + rng.normal(size=n)
    propensity = 0.9 * z + 0.8 * (regions == "east") + rng.normal(0, 0.7, size=n)
    n_positive = int(round(n * (1 - ZERO_SHARE)))
    ranks = np.arange(6, n_positive + 1)
    shape = (ranks / 6.0) ** -POWER_EXPONENT * np.exp(rng.normal(0, 0.25, ranks.size))
    rest = TOTAL_AI_FIRMS - sum(TOP5_AI_FIRMS)
    tail = np.clip(np.round(shape / shape.sum() * rest), 1, 99)
    counts = np.zeros(n)
    counts[:n_positive] = np.concatenate([TOP5_AI_FIRMS, np.sort(tail)[::-1]])
    ai_2020 = np.zeros(n)
    ai_2020[np.argsort(-propensity, kind="stable")] = counts
    return pd.DataFrame(
        {
            "city": [f"C{i + 1:03d}" for i in range(n)],
            "province": province,
            "region": regions,
            "z": z,
            "ai_2020": ai_2020,
            "u": rng.normal(size=n),
        }
    )


def _grid(cities: pd.DataFrame) -> pd.DataFrame:
    grid = cities.loc[cities.index.repeat(YEARS.size)].reset_index(drop=True)
    grid["year"] = np.tile(YEARS, len(cities))
    return grid


def _firm_counts(rng: np.random.Generator, cities: pd.DataFrame) -> np.ndarray:
    n, years = len(cities), YEARS.size
    log_2020 = 8.6 + 0.7 * cities["z"] + 0.3 * np.log1p(cities["ai_2020"]) + rng.normal(0, 0.3, n)
    growth = rng.normal(0.075, 0.03, n)[:, None] + rng.normal(0, 0.03, (n, years - 1))
    log_path = np.empty((n, years))
    log_path[:, -1] = log_2020
    for j in range(years - 2, -1, -1):
        log_path[:, j] = log_path[:, j + 1] - growth[:, j]
    return np.maximum(np.round(np.exp(log_path)), 1).ravel()


def _ai_firm_paths(rng: np.random.Generator, cities: pd.DataFrame) -> np.ndarray:
    founding = np.arange(2000, 2021)
    odds = 1.10 ** (founding - 2000) * np.where(founding >= POLICY_YEAR, 1.8, 1.0)
    odds = odds / odds.sum()
    paths = []
    for total in cities["ai_2020"].astype(int):
        born = np.cumsum(rng.multinomial(total, odds))
        paths.append(born[np.searchsorted(founding, YEARS)])
    return np.concatenate(paths).astype(float)


def _ar1(rng: np.random.Generator, n_city: int) -> np.ndarray:
    shocks = rng.normal(size=(n_city, YEARS.size))
    e = np.empty_like(shocks)
    e[:, 0] = shocks[:, 0]
    for j in range(1, YEARS.size):
        e[:, j] = AR_RHO * e[:, j - 1] + np.sqrt(1 - AR_RHO**2) * shocks[:, j]
    return e.ravel()


def _sample(frame: pd.DataFrame, sample: str) -> np.ndarray:
    if sample == "all":
        return np.ones(len(frame), dtype=bool)
    stock = {"apps": "ai_inv_apps", "grants": "ai_inv_grants"}[sample]
    positive = frame.loc[frame["year"] == 2020].set_index("city")[stock] > 0
    return frame["city"].map(positive).to_numpy(bool)


def _column_regressors(key: tuple[str, str]) -> list[str]:
    measure = PUBLISHED[key][3]
    controls = list(BASE_CONTROLS) + (list(EXTRA_CONTROLS) if key == ("4", "2") else [])
    return [measure, *controls]


def _calibrate_outcome(
    frame: pd.DataFrame, outcome: str, structural_rest: np.ndarray, noise: np.ndarray
) -> dict:
    """Solve the signal weights (estimands = published) and the noise scale (SE = published)."""
    columns = OUTCOME_COLUMNS[outcome]
    weight = np.where(frame["income_group"] == "high", HIGH_INCOME_SLOPE_RATIO, 1.0)
    bases = []
    for key in columns:
        source = COLUMN_BASIS.get(key, PUBLISHED[key][3])
        scaled = source != "ln_loans"
        bases.append(frame[source].to_numpy() * (weight if scaled else 1.0))
    basis_names = [COLUMN_BASIS.get(key, PUBLISHED[key][3]) for key in columns]
    matrix = np.empty((len(columns), len(columns)))
    for row, key in enumerate(columns):
        part = frame.loc[_sample(frame, PUBLISHED[key][4])]
        mask = _sample(frame, PUBLISHED[key][4])
        for col, basis in enumerate(bases):
            matrix[row, col] = twfe_first_coef(part, basis[mask], _column_regressors(key))
    target = np.array([PUBLISHED[key][0] for key in columns])
    theta = np.linalg.solve(matrix, target)
    signal = np.column_stack(bases) @ theta
    # sigma from the clustered SE of the first (firm) column: Var = f * sum_g (alpha_g + s beta_g)^2
    key = columns[0]
    x_w = within_columns(frame, _column_regressors(key))
    city = codes(frame["city"])
    loading, factor = cluster_parts(x_w, city)
    resid_signal = alternating_demean(signal + structural_rest, city, codes(frame["year"]))[:, 0]
    resid_noise = alternating_demean(noise, city, codes(frame["year"]))[:, 0]
    hat = x_w @ np.linalg.lstsq(x_w, np.column_stack([resid_signal, resid_noise]), rcond=None)[0]
    u_signal = resid_signal - hat[:, 0]
    u_noise = resid_noise - hat[:, 1]
    alpha = np.bincount(city, weights=loading * u_signal)
    beta = np.bincount(city, weights=loading * u_noise)
    se_target = PUBLISHED[key][1]
    qa, qb, qc = beta @ beta, 2 * alpha @ beta, alpha @ alpha - se_target**2 / factor
    disc = qb**2 - 4 * qa * qc
    sigma = (-qb + np.sqrt(max(disc, 0.0))) / (2 * qa)
    return {
        "signal": signal,
        "sigma": float(max(sigma, 1e-4)),
        "theta": dict(zip(basis_names, theta.tolist(), strict=True)),
        "columns": ["/".join(k) for k in columns],
    }


# --------------------------------------------------------------------------- generator
def generate(seed: int = DEFAULT_SEED) -> tuple[pd.DataFrame, dict]:
    """Generate the SYNTHETIC zhu2025 panel and its true parameters.

    Parameters
    ----------
    seed
        Seed of ``numpy.random.default_rng``; the shipped files use ``DEFAULT_SEED``.

    Returns
    -------
    (pandas.DataFrame, dict)
        The city-year panel (2,858 rows, the columns of ``data/schemas/zhu2025.toml``) and the
        truth: every parameter of the process in the module docstring, the estimand each
        published column has on this panel, and ``"synthetic": True``.
    """
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    cities = _cities(streams[0])
    n_city = len(cities)
    frame = _grid(cities)
    frame["mfg_firms"] = _firm_counts(streams[1], cities)
    frame["ai_firms"] = _ai_firm_paths(streams[2], cities)
    t = frame["year"].to_numpy() - REFERENCE_YEAR
    z = frame["z"].to_numpy()

    # Treat: 2015 secondary share, lower where AI is dense (the paper's service-led AI hubs).
    rng = streams[3]
    ai_dense = np.log1p(cities["ai_2020"]) - np.log1p(cities["ai_2020"]).mean()
    sec_share = np.clip(46 - 3 * cities["z"] - 2.5 * ai_dense + rng.normal(0, 6, n_city), 15, 75)
    cities["sec_share_2015"] = np.round(sec_share, 2)
    cities["treat"] = (cities["sec_share_2015"] > cities["sec_share_2015"].median()).astype(int)
    frame["sec_share_2015"] = np.repeat(cities["sec_share_2015"].to_numpy(), YEARS.size)
    frame["treat"] = np.repeat(cities["treat"].to_numpy(), YEARS.size)

    # Controls and Table 4 extra controls (the measure of AI firms feeds R&D staff and loans).
    m_firms_full = shift_share_measure(frame, "ai_firms", "mfg_firms", FIRM_UNIT).to_numpy()
    city_effect = {name: rng.normal(0, 0.3, n_city) for name in ("pop", "emp", "rd", "loans")}

    def city_level(name: str) -> np.ndarray:
        return np.repeat(city_effect[name], YEARS.size)

    size = len(frame)
    frame["ln_pop"] = 5.8 + 0.5 * z + city_level("pop") + 0.004 * t + rng.normal(0, 0.01, size)
    frame["ln_emp"] = (
        3.4
        + 0.8 * z
        + city_level("emp")
        + 0.02 * t
        + 0.05 * m_firms_full
        + rng.normal(0, 0.04, size)
    )
    frame["ln_rd_staff"] = (
        7.5
        + 1.0 * z
        + city_level("rd")
        + 0.06 * t
        + 0.10 * m_firms_full
        + rng.normal(0, 0.08, size)
    )
    log_firms = np.log(frame["mfg_firms"].to_numpy())
    frame["ln_ind_firms"] = 6.2 + 0.8 * z + 0.3 * (log_firms - 8.6) + rng.normal(0, 0.05, size)
    frame["ln_loans"] = (
        6.5
        + 1.0 * z
        + city_level("loans")
        + 0.10 * t
        + 0.5 * m_firms_full
        + rng.normal(0, 0.05, size)
    )
    frame["ln_fdi"] = 9.5 + 1.2 * z + rng.normal(0, 0.4, size)
    frame["ln_edu_exp"] = 12.5 + 0.7 * z + 0.08 * t + rng.normal(0, 0.05, size)
    frame["ln_sci_exp"] = 10.3 + 1.0 * z + 0.10 * t + rng.normal(0, 0.15, size)
    trend_growth = rng.normal(0.085, 0.015, n_city)
    frame["gdp_growth"] = np.round(
        100
        * (
            np.repeat(trend_growth, YEARS.size)
            - 0.004 * (frame["year"].to_numpy() - 2010)
            + rng.normal(0, 0.01, size)
        ),
        2,
    )

    event_truth = add_event_counts(frame, streams[4], seed)
    frame["ai_net_entries"] = frame["ai_entries"] - frame["ai_exits"]

    # Income groups: 2010 per-capita GDP level implied by the city factors, split at the median.
    pc_2010 = 0.45 * cities["z"] + 0.3 * ai_dense
    cities["income_group"] = np.where(pc_2010 > pc_2010.median(), "high", "low")
    frame["income_group"] = np.repeat(cities["income_group"].to_numpy(), YEARS.size)

    # Drop the 2010 rows of two cities (Table 1 column 1 has 2,858 observations).
    dropped = streams[5].choice(n_city, size=N_MISSING_2010, replace=False)
    keep = ~((frame["year"] == YEARS[0]) & frame["city"].isin(cities["city"].iloc[dropped]))
    frame = frame.loc[keep].reset_index(drop=True)

    frame["m_firms"] = shift_share_measure(frame, "ai_firms", "mfg_firms", FIRM_UNIT)
    frame["m_apps"] = shift_share_measure(frame, "ai_inv_apps", "mfg_firms", PATENT_UNIT)
    frame["m_grants"] = shift_share_measure(frame, "ai_inv_grants", "mfg_firms", PATENT_UNIT)
    frame["m_firms_gw"] = growth_weighted_measure(frame, "ai_firms", "gdp_growth", FIRM_UNIT)

    # Outcomes (Tables 1-4).
    outcome_truth = {}
    noise_free: dict[str, np.ndarray] = {}
    z = frame["z"].to_numpy()
    t = frame["year"].to_numpy() - REFERENCE_YEAR
    city_idx = codes(frame["city"])
    for j, (name, levels) in enumerate(OUTCOME_LEVELS.items()):
        mu, kappa, tau, city_sd, gamma = levels
        out_rng = np.random.default_rng(np.random.SeedSequence([seed, 6, j]))
        city_part = out_rng.normal(0, city_sd, n_city)[city_idx]
        noise_full = _ar1(out_rng, n_city)
        noise = noise_full[keep.to_numpy()]
        rest = mu + kappa * z + city_part + tau * t + frame[list(BASE_CONTROLS)].to_numpy() @ gamma
        fit = _calibrate_outcome(frame, name, np.zeros(len(frame)), noise)
        noise_free[name] = rest + fit["signal"]
        frame[name] = noise_free[name] + fit["sigma"] * noise
        outcome_truth[name] = {
            "mu": mu,
            "kappa_z": kappa,
            "year_slope": tau,
            "city_effect_sd": city_sd,
            "gamma": dict(zip(BASE_CONTROLS, gamma, strict=True)),
            "theta_low_income": fit["theta"],
            "high_income_slope_ratio": HIGH_INCOME_SLOPE_RATIO,
            "sigma": fit["sigma"],
            "ar_rho": AR_RHO,
            "calibrated_from": [f"Table {c.replace('/', ' column ')}" for c in fit["columns"]],
        }

    estimands = {}
    calibrated = {key for keys in OUTCOME_COLUMNS.values() for key in keys}
    for key, (estimate, se, outcome, measure, sample) in PUBLISHED.items():
        mask = _sample(frame, sample)
        part = frame.loc[mask]
        regressors = _column_regressors(key)
        estimands["/".join(key)] = {
            "estimand": twfe_first_coef(part, noise_free[outcome][mask], regressors),
            "published": estimate,
            "published_se": se,
            "set_by_calibration": key in calibrated,
            "outcome": outcome,
            "measure": measure,
            "sample": sample,
            "n_obs": int(mask.sum()),
            "controls": regressors[1:],
        }

    panel = _finish(frame)
    truth = _truth(seed, frame, cities, outcome_truth, event_truth, estimands)
    truth["mediation"] = mediation_truth(frame, noise_free, BASE_CONTROLS)
    return panel, truth


PANEL_COLUMNS = [
    "city", "year", "province", "region", "income_group",
    "ln_gdp", "ln_gdp_sec", "ln_emp_sec", "ln_emp_mfg", "ln_gdp_pc",
    "mfg_firms", "ai_firms", "ai_inv_apps", "ai_inv_grants",
    "ln_pop", "ln_emp", "ln_rd_staff",
    "ln_ind_firms", "ln_loans", "ln_fdi", "ln_edu_exp", "ln_sci_exp",
    "gdp_growth", "sec_share_2015",
    "ai_entries", "ai_exits", "ai_net_entries",
]  # fmt: skip


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    panel = frame[PANEL_COLUMNS].copy()
    for name in (
        "mfg_firms",
        "ai_firms",
        "ai_inv_apps",
        "ai_inv_grants",
        "ai_entries",
        "ai_exits",
        "ai_net_entries",
        "year",
    ):
        panel[name] = panel[name].astype(int)
    return panel


def _truth(seed, frame, cities, outcome_truth, event_truth, estimands) -> dict:
    facts = concentration_facts(frame, "ai_firms").loc[2020]
    return {
        "synthetic": True,
        "study": "zhu2025",
        "seed": int(seed),
        "n_cities": int(len(cities)),
        "years": [int(YEARS[0]), int(YEARS[-1])],
        "n_obs": int(len(frame)),
        "calibrated_from": "Zhu, Leng & Zhang (2025), Tables 1-6 and section 3 facts",
        "units": {
            "m_firms": f"AI firms / {FIRM_UNIT:g} (shift-share, eq. 2)",
            "m_apps": f"AI invention patent applications / {PATENT_UNIT:g}",
            "m_grants": f"AI invention patent grants / {PATENT_UNIT:g}",
        },
        "ai_firms_2020": {
            "top5": list(TOP5_AI_FIRMS),
            "total_target": TOTAL_AI_FIRMS,
            "power_exponent": POWER_EXPONENT,
            "zero_share_target": ZERO_SHARE,
            "realised": {k: float(v) for k, v in facts.items()},
            "calibrated_from": "section 3: Shenzhen 643 (22%), top-5 41.5%, 192 of 367 none",
        },
        "treat": {
            "rule": "sec_share_2015 above the median city",
            "n_treated": int(cities["treat"].sum()),
        },
        "outcomes": outcome_truth,
        "estimands": estimands,
        "event_study": event_truth,
        "event_study_net_entries_published": dict(
            zip(map(str, PRINTED_YEARS), NET_PUBLISHED, strict=True)
        ),
        "sample_rules": {
            "all": "every row (firm models; cities without AI firms have m_firms = 0)",
            "apps": "cities with ai_inv_apps > 0 in 2020",
            "grants": "cities with ai_inv_grants > 0 in 2020",
            "event_study": "every row; outcome ln(1 + count); net entries drop rows with <= -1",
        },
    }


def readme(truth: dict) -> str:
    """Text of ``data/files/zhu2025/README.md`` for a generated panel."""
    facts = truth["ai_firms_2020"]["realised"]
    return f"""SYNTHETIC data: not observations of any Chinese city.

# zhu2025 synthetic panel

`panel.csv` is a synthetic city-year panel ({truth["n_cities"]} cities, {truth["years"][0]}-\
{truth["years"][1]}, {truth["n_obs"]} rows) made by `data/synthetic/zhu2025.py` with seed
{truth["seed"]}. It is calibrated to the published tables of Zhu, Leng & Zhang (2025), "AI and
manufacturing integration: spatial distribution, economic effects and influencing factors"
(Tables 1-6 and the concentration facts of section 3), so that the frequentist replication lands
near the published numbers by construction. That shows the workflow; it is not evidence about
China, and no conclusion about Chinese cities may be drawn from it.

- Columns and units: `data/schemas/zhu2025.toml` (the contract) and the docstring of
  `data/synthetic/zhu2025.py` (the data-generating process as equations).
- `truth.json`: every parameter of the process, the estimand each published column has on
  this panel (`estimands`), and the true event-study paths on the ln(1 + count) scale.
- Shift-share measures are built with `data.measures.shift_share.add_measures` (per
  {FIRM_UNIT:g} AI firms / {PATENT_UNIT:g} patents; see that module on units).
- AI firms in 2020: {facts["total"]:.0f} in all, largest city {100 * facts["top1"]:.1f}%, top five
  {100 * facts["top5"]:.1f}% (paper: 22% and 41.5%), {facts["n_zero"]:.0f} cities with none.
- Samples: firm models use every row; patent models use cities with a positive 2020 count;
  event studies use ln(1 + count) on every row (net entries drop rows with values <= -1).

Regenerate with `python -m data.synthetic zhu2025` or `python -m data.synthetic.zhu2025`.
"""


def write_files(seed: int = DEFAULT_SEED) -> Path:
    """Write ``panel.csv``, ``truth.json`` and ``README.md`` to ``data/files/zhu2025``."""
    panel, truth = generate(seed)
    FILES_DIR.mkdir(parents=True, exist_ok=True)
    panel.to_csv(FILES_DIR / "panel.csv", index=False, float_format="%.10g")
    (FILES_DIR / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    (FILES_DIR / "README.md").write_text(readme(truth))
    return FILES_DIR


if __name__ == "__main__":
    print(f"wrote SYNTHETIC panel of zhu2025 to {write_files()}")

"""SYNTHETIC city panel calibrated to Zhao & Yang (2025), 271 cities x 2011-2022.

The panel shows the workflow and gives every model a known truth; it is not evidence about
China. Numbers come from the published tables (``calibrated_from`` in the truth says which).

Data-generating process
-----------------------
Cities i = 1..271 (100 east, 100 central, 71 west; 4 municipalities, each its own province),
years t = 2011..2022. A latent development factor z_i ~ N(m_region, 1) drives both the
regressors' city means and the city effect, so regressors are correlated with the city effect
(a random-intercept model that ignores this is biased; the within estimator is not).

Each control v in (Eco, Huc, Edu, Fis, Gov) and the AI measure:

    v_it = m_v + b_v,i + g_v * (t - 2016.5) + w_v,it,
    b_v,i = s_v (rho_v z_i + sqrt(1 - rho_v^2) u_v,i),   w_v,it ~ N(0, omega_v^2),

then shifted and scaled to the Table 1 mean and standard deviation and clipped to its range.
omega_v is set from the published robust t of Table 2 column (6) so that standard errors, not
only coefficients, resemble the paper: omega_v = k sigma_e / (se_v sqrt(n)), with
se_v = coefficient / t and k = 1.2 making up for the variation lost to clipping. AI's within
part carries the instrument:
w_AI,it = pi * w_IV,it + v_it (first stage of Table 4), with IV excluded from the outcome, so
the synthetic instrument is valid.

Mediators (Table 6 columns 2 and 4):

    Va_it  = theta_Va  AI_it + controls' zeta_Va  + a_Va,i  + tau_Va,t  + e_Va,it
    Ind_it = theta_Ind AI_it + controls' zeta_Ind + a_Ind,i + tau_Ind,t + e_Ind,it

Outcome:

    Inn_it = c + beta_AI,it AI_it - h_it A_i + eta_Va Va_it + eta_Ind Ind_it + controls' beta
             + mu_i + tau_t + e_it,   e_it ~ N(0, sigma_e^2),
    beta_AI,it = delta_region(i) + d_1 [AI_it < g1] + d_3 [AI_it >= g2] + d_Va [Va_it >= g_Va]
                 + d_Ind [Ind_it >= g_Ind] + h_it,
    h_it = d_data (high_data_it - p_data) + d_digital (high_digital_it - p_digital)
           + d_post ([t >= 2016] - p_post),

where delta_region is the Table 7 regional slope less the Table 6 indirect effect, plus one
common offset that puts the slope a linear TWFE regression estimates on Table 2 column (6)
(regime jumps and mediators otherwise move it); (g1, g2) = (3.6636, 6.1821), g_Va = 15.6482 and
g_Ind = 2.1637 are the Table 5 thresholds with the published regime differences as the d's;
d_data and d_digital are the Table 7 high-minus-low gaps; d_post = 0.05 is our choice (the
abstract says only "stronger after 2016"). tau_t rises 0.073 a year, which puts Stata's
``xtreg, fe`` constant of column (6) near the printed -0.4095.

The slope of Inn on AI is beta_AI,it throughout, but the group and period gaps h_it act on
AI's deviation from the city's long-run level A_i (the between part of AI in Table 1 units):
the AI terms read (beta_AI,it - h_it) AI_it + h_it (AI_it - A_i). Why: high_data and
high_digital switch within cities (about 750 and 710 switches in the default panel) and every
city enters the post-2016 period, so on AI levels each switch would add h A_i to Inn, a step
proportional to the city's AI level. Cities with much AI also have high Va (both load on z),
and a threshold regression in AI or Va reads those steps as regimes. With the gaps on AI
levels, Hansen's estimator on the noise-free outcome put the AI thresholds at (1.66, 2.57) and
the Va threshold at 14.38 instead of (3.66, 6.18) and 15.65, and the steps alone raised the LR
statistic at the true thresholds to 6.7, 12.9 and 10.4 (in units of the noise variance; the
95% critical value is 7.35), so the Table 5 LR sets and posteriors missed the truth in most
samples. The regional slopes need no such care: region is fixed within a city, so
delta_region x AI level and delta_region x AI deviation differ by a city constant that mu_i
absorbs. On the noise-free outcome the thresholds now land on the structural ones (to the
grid; the Va threshold, the weakest, drifts for some seeds, by under two LR units); the
truth records Hansen's thresholds of the noise-free outcome as ``table5_pseudo_true``. Table 7's
subsample regressions now return each group's average beta_AI,it: on the noise-free outcome
the west slope is 0.06 (0.04 printed; 0.12 with gaps on levels), and the high-minus-low data
and digital gaps are 0.09 and 0.10 (0.04 and 0.08 printed), wider than d_data and d_digital
because the high groups are also richer in east cities and in the other endowment.

Inn1 (applications, Table 3 column 3) repeats the outcome equation with the AI part scaled so
its slope is near 0.2171, a level shift and fresh noise.

Because beta_AI,it varies, the slope that a linear TWFE regression estimates is a weighted
average; the truth records it as ``table2_col6_pseudo_true`` (the TWFE regression of the
noise-free outcome), next to the structural parameters.

What the panel cannot reproduce: the published 2SLS slope (0.6869) is far above OLS; here the
instrument is valid and 2SLS centres on the same slope as OLS. Table 3's 2011-2019 (0.4866)
and province x year (0.1689) columns and Table 5's regime slope levels (about 0.4, a model
without year effects) are not built in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.synthetic.within import two_way_demean

DEFAULT_SEED = 20250401
YEARS = np.arange(2011, 2023)
N_EAST, N_CENTRAL, N_WEST = 100, 100, 71

# Table 1: mean, sd, min, max (3,252 obs).
TABLE1 = {
    "Inn": (7.621, 1.597, 4.220, 11.435),
    "AI": (4.859, 1.796, 1.386, 9.710),
    "Va": (14.143, 1.668, 10.796, 18.527),
    "Ind": (2.310, 0.142, 1.958, 2.696),
    "Eco": (10.79, 0.549, 9.588, 12.065),
    "Huc": (4.761, 0.966, 2.485, 6.913),
    "Edu": (13.32, 0.813, 11.397, 15.904),
    "Fis": (0.459, 0.215, 0.118, 0.998),
    "Gov": (0.194, 0.084, 0.079, 0.486),
}
# Table 2 column (6): coefficient and robust t.
TABLE2_COL6 = {
    "AI": (0.2720, 5.59),
    "Eco": (0.2430, 2.60),
    "Huc": (0.0467, 2.62),
    "Edu": (0.2339, 2.80),
    "Fis": (0.3922, 2.13),
    "Gov": (0.8662, 1.85),
}
CONTROLS = ("Eco", "Huc", "Edu", "Fis", "Gov")
# Common yearly trend of each regressor (our choice: AI firms and spending grow, Gov shrinks).
TRENDS = {"AI": 0.06, "Eco": 0.05, "Huc": 0.02, "Edu": 0.06, "Fis": -0.01, "Gov": 0.002}
# Loading of each regressor's city mean on the development factor (our choice).
LOADINGS = {"AI": 0.8, "Eco": 0.7, "Huc": 0.5, "Edu": 0.7, "Fis": 0.6, "Gov": -0.5}
REGION_FACTOR_MEAN = {"east": 0.7, "central": -0.1, "west": -0.8}
R2_TABLE2_COL6 = 0.854
# Table 6: AI -> Va (col 2), Va -> Inn (col 3), AI -> Ind (col 4), Ind -> Inn (col 5).
THETA_VA, ETA_VA, THETA_IND, ETA_IND = 0.1607, 0.0494, 0.0368, 0.3314
# Table 7 regional slopes (total effects).
REGION_SLOPE = {"east": 0.3171, "central": 0.2835, "west": 0.0392}
# West cities have fewer AI firms, hence less within variation of AI (our choice).
REGION_AI_WITHIN_SCALE = {"east": 1.0, "central": 1.0, "west": 0.7}
# Table 5 thresholds and regime slope differences.
AI_THRESHOLDS = (3.6636, 6.1821)
AI_REGIME_SLOPES = (0.389, 0.422, 0.403)
VA_THRESHOLD, VA_REGIME_SLOPES = 15.6482, (0.417, 0.394)
IND_THRESHOLD, IND_REGIME_SLOPES = 2.1637, (0.344, 0.400)
TABLE5_THRESHOLD_COUNTS = {"AI": 2, "Va": 1, "Ind": 1}
# Table 7 factor-endowment splits: obs in the high group and the high-minus-low slope gap.
HIGH_DATA_OBS, DATA_GAP = 1534, 0.2445 - 0.2066
HIGH_DIGITAL_OBS, DIGITAL_GAP = 1270, 0.2796 - 0.2034
POST_2016_GAP = 0.05
# Table 4 first stage: AI on internet penetration.
FIRST_STAGE_PI, FIRST_STAGE_T = 4.9145, 14.53
# Table 3 column (3): Inn1 slope.
INN1_SLOPE, INN1_SHIFT, INN1_NOISE = 0.2171, 0.45, 0.66
YEAR_EFFECT_TREND = 0.073
# Clipping to the Table 1 ranges and the region-specific AI scale remove part of the within
# variation; this factor restores it so the Table 2 column (6) standard errors match the print.
WITHIN_INFLATION = 1.2
MUNICIPALITIES = {"Beijing": "east", "Tianjin": "east", "Shanghai": "east", "Chongqing": "west"}
PROVINCES_PER_REGION = {"east": 7, "central": 8, "west": 11}


def _cities(rng: np.random.Generator) -> pd.DataFrame:
    regions = ["east"] * N_EAST + ["central"] * N_CENTRAL + ["west"] * N_WEST
    cities = pd.DataFrame({"city": [f"C{i + 1:03d}" for i in range(len(regions))],
                           "region": regions})
    municipal_rows = [0, 1, 2, N_EAST + N_CENTRAL]
    cities["municipality"] = 0
    cities.loc[municipal_rows, "municipality"] = 1
    province = []
    for row in cities.itertuples():
        if row.municipality:
            province.append(list(MUNICIPALITIES)[municipal_rows.index(row.Index)])
        else:
            k = int(rng.integers(PROVINCES_PER_REGION[row.region]))
            province.append(f"{row.region[0].upper()}P{k + 1:02d}")
    cities["province"] = province
    cities["z"] = rng.normal(cities["region"].map(REGION_FACTOR_MEAN), 1.0)
    return cities


def _to_table1(values: np.ndarray, name: str) -> np.ndarray:
    mean, sd, low, high = TABLE1[name]
    scaled = mean + sd * (values - values.mean()) / values.std()
    return np.clip(scaled, low, high)


def _regressor(rng, name, z, t_centered, within_sd, within_scale, n_cities, n_years):
    mean, sd, _, _ = TABLE1[name]
    trend_var = TRENDS[name] ** 2 * t_centered.var()
    between_sd = np.sqrt(max(sd**2 - trend_var - within_sd**2, 1e-6))
    rho = LOADINGS[name]
    between = between_sd * (rho * z + np.sqrt(1 - rho**2) * rng.normal(size=n_cities))
    within = within_sd * within_scale[:, None] * rng.normal(size=(n_cities, n_years))
    return between[:, None] + TRENDS[name] * t_centered[None, :] + within


def _within_sd(name: str, sigma_e: float, n_obs: int, n_years: int) -> float:
    coef, t_stat = TABLE2_COL6[name]
    se = coef / t_stat
    # Demeaning by city removes 1/T of an iid component's variance.
    return WITHIN_INFLATION * sigma_e / (se * np.sqrt(n_obs)) / np.sqrt(1 - 1 / n_years)


def _split_flag(score: np.ndarray, n_high: int) -> np.ndarray:
    order = np.argsort(-score, kind="stable")
    flag = np.zeros(score.size, dtype=int)
    flag[order[:n_high]] = 1
    return flag


def generate(seed: int = DEFAULT_SEED) -> tuple[pd.DataFrame, dict]:
    """Generate the SYNTHETIC zhao2025 panel and its true parameters.

    Returns
    -------
    panel
        3,252 city-years with the columns of ``data/schemas/zhao2025.toml``.
    truth
        The parameters of the data-generating process (module docstring), with the published
        table each comes from.
    """
    rng = np.random.default_rng(seed)
    cities = _cities(rng)
    n_cities, n_years = len(cities), len(YEARS)
    n_obs = n_cities * n_years
    t_centered = YEARS - YEARS.mean()
    sigma_e = TABLE1["Inn"][1] * np.sqrt(1 - R2_TABLE2_COL6)
    z = cities["z"].to_numpy()
    ones = np.ones(n_cities)

    series = {}
    for name in CONTROLS:
        series[name] = _regressor(
            rng, name, z, t_centered, _within_sd(name, sigma_e, n_obs, n_years), ones,
            n_cities, n_years,
        )
    ai_within_sd = _within_sd("AI", sigma_e, n_obs, n_years)
    ai_scale = cities["region"].map(REGION_AI_WITHIN_SCALE).to_numpy()
    # Internet penetration: city level, common trend, and a within part that moves AI.
    partial_r2 = FIRST_STAGE_T**2 / (n_obs + FIRST_STAGE_T**2)
    iv_within_sd = np.sqrt(partial_r2) * ai_within_sd / FIRST_STAGE_PI
    iv_within = iv_within_sd * rng.normal(size=(n_cities, n_years))
    iv_between = 0.08 * (0.7 * z + np.sqrt(1 - 0.49) * rng.normal(size=n_cities))
    internet = np.clip(0.30 + iv_between[:, None] + 0.025 * t_centered[None, :] + iv_within,
                       0.01, 0.99)
    ai_raw = _regressor(rng, "AI", z, t_centered, 0.0, ones, n_cities, n_years)
    ai_own = np.sqrt(1 - partial_r2) * ai_within_sd * ai_scale[:, None] * rng.normal(
        size=(n_cities, n_years))
    series["AI"] = ai_raw + FIRST_STAGE_PI * (internet - internet.mean(axis=1, keepdims=True)) \
        + ai_own
    panel = pd.DataFrame({
        "city": np.repeat(cities["city"], n_years),
        "year": np.tile(YEARS, n_cities),
        "province": np.repeat(cities["province"], n_years),
        "region": np.repeat(cities["region"], n_years),
        "municipality": np.repeat(cities["municipality"], n_years),
    }).reset_index(drop=True)
    for name in ("AI", *CONTROLS):
        panel[name] = _to_table1(series[name].ravel(), name)
    # The city's long-run AI level A_i: the between part of AI (its trend averages to zero over
    # the years), mapped to Table 1 units as _to_table1 maps AI.
    ai_all = series["AI"].ravel()
    ai_level = TABLE1["AI"][0] + TABLE1["AI"][1] * (ai_raw.mean(axis=1) - ai_all.mean()) \
        / ai_all.std()
    panel["IV"] = internet.ravel()

    city_index = np.repeat(np.arange(n_cities), n_years)
    year_index = np.tile(np.arange(n_years), n_cities)
    z_obs = z[city_index]
    controls = panel[list(CONTROLS)].to_numpy()
    ai = panel["AI"].to_numpy()

    # Mediators.
    zeta_va = np.array([0.3, 0.1, 0.2, 0.5, -0.5])
    va_noise = 1.0
    va_raw = (THETA_VA * ai + controls @ zeta_va + 1.2 * z_obs + 0.9 * rng.normal(size=n_cities)[
        city_index] + 0.12 * t_centered[year_index] + rng.normal(0, va_noise, n_obs))
    panel["Va"] = _to_table1(va_raw, "Va")
    # Rescaling Va would rescale theta_Va; keep the rescaled slope in the truth.
    va_scale = TABLE1["Va"][1] / va_raw.std()
    zeta_ind = np.array([0.02, 0.01, 0.01, 0.03, -0.05])
    ind_raw = (THETA_IND * ai + controls @ zeta_ind + 0.06 * z_obs + 0.05 * rng.normal(
        size=n_cities)[city_index] + 0.01 * t_centered[year_index] + rng.normal(0, 0.09, n_obs))
    panel["Ind"] = _to_table1(ind_raw, "Ind")
    ind_scale = TABLE1["Ind"][1] / ind_raw.std()

    # Factor-endowment splits at city-year level, favouring developed cities.
    high_data = _split_flag(z_obs + 0.4 * t_centered[year_index] / 5.5 + rng.normal(0, 0.8, n_obs),
                            HIGH_DATA_OBS)
    high_digital = _split_flag(z_obs + 0.5 * t_centered[year_index] / 5.5 + rng.normal(
        0, 0.8, n_obs), HIGH_DIGITAL_OBS)
    panel["high_data"] = high_data
    panel["high_digital"] = high_digital
    post = (panel["year"].to_numpy() >= 2016).astype(float)

    indirect = THETA_VA * ETA_VA + THETA_IND * ETA_IND
    region_direct = {r: s - indirect for r, s in REGION_SLOPE.items()}
    d_low = AI_REGIME_SLOPES[0] - AI_REGIME_SLOPES[1]
    d_high = AI_REGIME_SLOPES[2] - AI_REGIME_SLOPES[1]
    d_va = VA_REGIME_SLOPES[1] - VA_REGIME_SLOPES[0]
    d_ind = IND_REGIME_SLOPES[1] - IND_REGIME_SLOPES[0]
    va, ind = panel["Va"].to_numpy(), panel["Ind"].to_numpy()
    gaps = (DATA_GAP * (high_data - high_data.mean())
            + DIGITAL_GAP * (high_digital - high_digital.mean())
            + POST_2016_GAP * (post - post.mean()))
    slope_ai = (
        panel["region"].map(region_direct).to_numpy()
        + d_low * (ai < AI_THRESHOLDS[0]) + d_high * (ai >= AI_THRESHOLDS[1])
        + d_va * (va >= VA_THRESHOLD) + d_ind * (ind >= IND_THRESHOLD)
        + gaps
    )
    # The gaps switch within a city; acting on AI's deviation from the city's level they change
    # how Inn responds to AI without stepping Inn by gap x A_i at each switch (module docstring).
    level_correction = gaps * ai_level[city_index]
    beta_controls = np.array([TABLE2_COL6[c][0] for c in CONTROLS])
    year_effects = YEAR_EFFECT_TREND * np.arange(n_years)
    city_effect = 0.9 * z + 0.3 * rng.normal(size=n_cities)
    standard_noise = rng.normal(0, 1, n_obs)
    # Regime shifts and mediators make the linear TWFE slope a weighted average that drifts away
    # from the mean structural slope; a common offset puts that average on Table 2 column (6).
    other_terms = ETA_VA * va + ETA_IND * ind + controls @ beta_controls
    slopes, _ = _twfe_fit(panel.assign(Inn=slope_ai * ai - level_correction + other_terms))
    slope_offset = TABLE2_COL6["AI"][0] - slopes["AI"]
    slope_ai = slope_ai + slope_offset
    # The same features leave a misfit in the linear model's residual; the noise fills the rest
    # of the residual variance implied by Table 2's R2, so standard errors match the print.
    _, misfit_var = _twfe_fit(panel.assign(Inn=slope_ai * ai - level_correction + other_terms))
    sigma_noise = np.sqrt(max(sigma_e**2 - misfit_var, 0.25 * sigma_e**2))
    noise = sigma_noise * standard_noise
    rest = slope_ai * ai - level_correction + other_terms + year_effects[year_index]
    city_scale = _scale_to_sd(rest + noise, city_effect[city_index], TABLE1["Inn"][1])
    signal = rest + city_scale * city_effect[city_index]
    intercept = TABLE1["Inn"][0] - (signal + noise).mean()
    panel["Inn"] = intercept + signal + noise
    ai_part = slope_ai * ai - level_correction
    inn1_signal = signal - ai_part + ai_part * (INN1_SLOPE / slope_ai.mean())
    panel["Inn1"] = intercept + INN1_SHIFT + inn1_signal + rng.normal(0, INN1_NOISE, n_obs)

    noise_free = intercept + signal
    truth = {
        "study": "zhao2025",
        "synthetic": True,
        "seed": seed,
        "note": "SYNTHETIC panel: parameters of the data-generating process; not estimates "
                "about China.",
        "n_cities": n_cities,
        "years": [int(YEARS[0]), int(YEARS[-1])],
        "sigma_e": sigma_noise,
        "linear_model_misfit_sd": float(np.sqrt(misfit_var)),
        "beta_controls": dict(zip(CONTROLS, beta_controls.tolist())),
        "slope_AI_mean": float(slope_ai.mean()),
        "slope_AI_by_region_total": REGION_SLOPE,
        "slope_AI_by_region_direct": {r: v + slope_offset for r, v in region_direct.items()},
        "slope_AI_offset": slope_offset,
        "mediation": {
            "theta_Va_raw": THETA_VA, "theta_Va": THETA_VA * va_scale, "eta_Va": ETA_VA,
            "theta_Ind_raw": THETA_IND, "theta_Ind": THETA_IND * ind_scale, "eta_Ind": ETA_IND,
            "indirect_Va": THETA_VA * va_scale * ETA_VA,
            "indirect_Ind": THETA_IND * ind_scale * ETA_IND,
        },
        "thresholds": {
            "AI": {"gamma": list(AI_THRESHOLDS), "slope_shift_vs_middle": [d_low, 0.0, d_high]},
            "Va": {"gamma": [VA_THRESHOLD], "slope_shift_above": d_va},
            "Ind": {"gamma": [IND_THRESHOLD], "slope_shift_above": d_ind},
        },
        "heterogeneity_gaps": {"high_data": DATA_GAP, "high_digital": DIGITAL_GAP,
                               "post_2016": POST_2016_GAP,
                               "acts_on": "AI_it - A_i (AI's deviation from the city's "
                                          "long-run level; module docstring)"},
        "iv": {"first_stage_pi": FIRST_STAGE_PI, "instrument_valid": True},
        "year_effect_trend": YEAR_EFFECT_TREND,
        "city_effect_scale": city_scale,
        "table2_col6_pseudo_true": _twfe_fit(panel.assign(Inn=noise_free))[0],
        "table5_pseudo_true": _threshold_fits(panel.assign(Inn=noise_free)),
        "calibrated_from": {
            "Table 1": "means, sds, minima, maxima of every variable",
            "Table 2 col 6": "control slopes, and (with the robust t) within-variation of each "
                             "regressor; R2 sets sigma_e",
            "Table 4": "first-stage slope and t of the instrument",
            "Table 5": "thresholds and regime slope differences",
            "Table 6": "mediation paths theta and eta",
            "Table 7": "regional slopes, group sizes, high-minus-low gaps",
            "our choice": "development factor loadings, trends, post-2016 gap 0.05, "
                          "west within-AI scale 0.7",
        },
    }
    return panel, truth


def _scale_to_sd(base: np.ndarray, effect: np.ndarray, target_sd: float) -> float:
    """The k >= 0 with sd(base + k * effect) = target_sd (or 0 if base alone is wider)."""
    a = effect.var()
    b = 2 * np.cov(base, effect, bias=True)[0, 1]
    c = base.var() - target_sd**2
    disc = b**2 - 4 * a * c
    return max(0.0, (-b + np.sqrt(disc)) / (2 * a)) if disc >= 0 else 0.0


def _threshold_fits(panel: pd.DataFrame) -> dict[str, list[float]]:
    """Hansen's thresholds of the three Table 5 specifications on ``panel``.

    Inn on the AI regime slopes, the controls and city and year effects, thresholds in AI
    (two), Va and Ind (one each); on the noise-free outcome these are where the misspecified
    threshold models concentrate.
    """
    from models.threshold.hansen import fit_panel_threshold

    found = {}
    for variable, count in TABLE5_THRESHOLD_COUNTS.items():
        fit = fit_panel_threshold(panel, y="Inn", regime="AI", threshold=variable,
                                  fixed=list(CONTROLS), unit="city", period="year",
                                  n_thresholds=count, demean="all", time=True, n_boot=0)
        found[variable] = [round(float(g), 6) for g in fit.thresholds]
    return found


def _twfe_fit(panel: pd.DataFrame) -> tuple[dict[str, float], float]:
    """Two-way within slopes of Table 2 column (6) on a balanced ``panel``, and the residual
    variance."""
    names = ["AI", *CONTROLS]
    y = panel["Inn"].to_numpy(float)
    x = panel[names].to_numpy(float)
    demeaned = two_way_demean(np.column_stack([y, x]), panel["city"].to_numpy(),
                              panel["year"].to_numpy())
    beta = np.linalg.lstsq(demeaned[:, 1:], demeaned[:, 0], rcond=None)[0]
    resid = demeaned[:, 0] - demeaned[:, 1:] @ beta
    return dict(zip(names, beta.round(6).tolist())), float(np.var(resid))

"""SYNTHETIC province panel calibrated to Fu, Li & He (2021), 30 provinces x 2010-2019.

The panel shows the workflow and gives every model a known truth; it is not evidence about
China. The only published numbers are the log-log fixed-effects elasticities of a news summary
(``data/published/fu2021.csv``); ``calibrated_from`` in the truth names the one behind each
parameter, and everything else (levels, noise, the controls' effects) is our choice.

Data-generating process
-----------------------
Provinces i = 1..30 in the NBS split (east 11, central 8, west 11; Tibet left out), years
t = 2010..2019. A size factor z_i ~ N(m_region, 0.6^2) sets the scale of each province.

AI (the regressor, term ``AI``) is the log share of fixed-asset investment in information
transmission, software and IT services in GDP:

    AI_it = a_i + 0.04 (t - 2014.5) + kappa_region(i) u_it,   u_it = 0.5 u_i,t-1 + N(0, 0.2^2),

with kappa = 1 in the east and west and kappa_central solved for below. Controls W = (Gro, Urb,
Open), in levels as fractions (GDP growth, urbanisation rate, trade / GDP): a province level, a
trend and noise each. R&D personnel L_it (full-time-equivalent person-years) and R&D spending
K_it (100 million yuan) are log-linear in z_i with trends and a province-specific mix.

Innovation efficiency (the DEA score) is set first:

    ln theta_it = alpha_i + tau_t + beta_region(i) AI_it + delta' W_it + e_it - M,

where M is the largest value of the rest, so theta <= 1 with equality at one anchor
province-year a. The noise e ~ N(0, sigma_region^2) is projected off the full-interaction design
(province dummies, region x year dummies, region x AI, region x W) and rescaled within region,
so a province + year FE regression of ln theta on AI and W returns beta_region exactly in each
region's subsample. Patents granted are then placed on the frontier:

    Pat_a = exp(c + 0.5 ln L_a + 0.5 ln(K_a / 0.0028)),
    Pat_it = round(theta_it Pat_a min(L_it / L_a, K_it / K_a)).

The constant-returns hull of the anchor alone is the Leontief frontier in the second line and
every other unit lies strictly inside it, so the input-oriented CCR score that
:mod:`models.dea` computes from (L, K) -> Pat, on one frontier pooled over all 300
province-years, equals theta_it up to the rounding of patents (``innovation_efficiency``). Why
not a Cobb-Douglas frontier times efficiency: DEA then measures efficiency against a piecewise
linear hull of a few best units, and the gap depends on each unit's input mix; on these draws
that gap moved the FE slopes by -0.017 (pooled), -0.026 (east), +0.002 (central) and -0.040
(west), noise as large as the effects. Pooling makes the score a deterministic function of the
shipped inputs and output and keeps scores comparable across years. The paper most likely scored
each year separately (DEAP-style cross-sections are the norm in this literature, CCR or BCC);
the truth reports what per-year CCR and BCC frontiers give on the same data
(``per_year_dea_diagnostic``).

Calibration. beta = (0.014, 0.090, 0) for east / central / west (west prints no number, only
"insignificant"). With equal within variation of AI everywhere the pooled slope is roughly the
obs-weighted mean, (11 x 0.014 + 8 x 0.090 + 11 x 0) / 30 = 0.029, not the published 0.045: the
four numbers fit together only if central provinces carry more of the within variation of AI
(or the west slope is positive). We choose the former: kappa_central solves
sum_g omega_g(kappa) beta_g = 0.045, with omega_g the pooled FE slope of (region g x AI) on
(AI, W), so the pooled FE slope is 0.045 by construction.

Other outcomes (no DEA), each with noise projected off the pooled design (province and year
dummies, AI, W) so that the FE slope equals the published elasticity:

    y_it = base_y,it + beta_y AI_it + e_y,it,
    base = mu_y + s_y z_i + g_y (t - 2014.5) + 0.3 Gro_it + 0.5 Urb_it + v_y,i

for ln papers (0.013) and ln technology-market turnover / GDP (no number printed, "positive and
significant"; 0.12 is our choice). Patent applications are tied to grants and the performers to
applications, row by row (y = ln Pat + ln 1.7 + ..., ln univ = ln apps + ln 0.10 + ..., institutes
0.03, enterprises 0.55), with the AI slope topped up to the published number: ln patent
applications (0.195), of universities (0.461), of research institutes (0.228), of enterprises
(0.010). Counts are rounded to whole numbers and their logs recomputed, which moves these slopes
by < 1e-3.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from data.synthetic.within import within_slopes
from models.dea import bcc_efficiency, ccr_efficiency

DEFAULT_SEED = 20211206
YEARS = np.arange(2010, 2020)
PROVINCES = {
    "east": [
        "Beijing",
        "Tianjin",
        "Hebei",
        "Liaoning",
        "Shanghai",
        "Jiangsu",
        "Zhejiang",
        "Fujian",
        "Shandong",
        "Guangdong",
        "Hainan",
    ],
    "central": [
        "Shanxi",
        "Jilin",
        "Heilongjiang",
        "Anhui",
        "Jiangxi",
        "Henan",
        "Hubei",
        "Hunan",
    ],
    "west": [
        "Inner Mongolia",
        "Guangxi",
        "Chongqing",
        "Sichuan",
        "Guizhou",
        "Yunnan",
        "Shaanxi",
        "Gansu",
        "Qinghai",
        "Ningxia",
        "Xinjiang",
    ],
}
REGIONS = ("east", "central", "west")
CONTROLS = ("Gro", "Urb", "Open")

# Published log-log FE elasticities (news summary; data/published/fu2021.csv).
TARGET_POOLED = 0.045
TARGET_REGION = {"east": 0.014, "central": 0.090, "west": 0.0}
LINEAR_OUTCOMES = {
    # column: (elasticity, noise sd, published row or our choice)
    "ln_patent_applications_universities": (0.461, 0.15, "performer/universities"),
    "ln_patents_research_institutes": (0.228, 0.15, "performer/institutes"),
    "ln_patents_enterprises": (0.010, 0.05, "performer/enterprises"),
    "ln_patent_applications": (0.195, 0.06, "type/applied"),
    "ln_papers": (0.013, 0.04, "type/basic"),
    "ln_tech_market_turnover_to_gdp": (0.12, 0.12, "our choice: robustness/1 prints no number"),
}

# Our choices (not printed): levels, trends, noise and the controls' effects on efficiency.
REGION_SIZE_MEAN = {"east": 0.8, "central": 0.0, "west": -0.7}
REGION_SIGMA_TE = {"east": 0.03, "central": 0.05, "west": 0.09}
DELTA_TE = {"Gro": 0.8, "Urb": 0.6, "Open": 0.05}
TE_YEAR_TREND = 0.045
LABOUR_SHARE = 0.5
SPENDING_PER_FTE = 0.0028  # 100 million yuan per FTE person-year in 2010 (0.28 million yuan)
AI_TREND, AI_AR, AI_SHOCK_SD = 0.04, 0.5, 0.2
PATENT_LEVEL = -0.2


def _provinces(rng: np.random.Generator) -> pd.DataFrame:
    rows = [(name, region) for region in REGIONS for name in PROVINCES[region]]
    frame = pd.DataFrame(rows, columns=["province", "region"])
    frame["z"] = rng.normal(frame["region"].map(REGION_SIZE_MEAN), 0.6)
    return frame


def _dummies(labels: np.ndarray) -> np.ndarray:
    codes, _ = pd.factorize(labels)
    return np.eye(codes.max() + 1)[codes]


def _project_off(noise: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Residual of ``noise`` after least-squares projection on the columns of ``design``."""
    return noise - design @ np.linalg.lstsq(design, noise, rcond=None)[0]


class _Draws:
    """Every random draw of one seed, fixed before calibration so that it is deterministic."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.provinces = _provinces(rng)
        n_prov, n_years = len(self.provinces), len(YEARS)
        z = self.provinces["z"].to_numpy()
        self.ai_level = rng.normal(-5.1 + 0.1 * z, 0.35)
        shocks = rng.normal(0.0, AI_SHOCK_SD, (n_prov, n_years))
        ar = np.zeros_like(shocks)
        ar[:, 0] = shocks[:, 0] / np.sqrt(1 - AI_AR**2)
        for year in range(1, n_years):
            ar[:, year] = AI_AR * ar[:, year - 1] + shocks[:, year]
        self.ai_within = ar
        self.gro = rng.normal(0.0, 0.012, n_prov)[:, None] + rng.normal(0, 0.008, ar.shape)
        self.urb = rng.normal(0.50 + 0.09 * z, 0.05)[:, None] + rng.normal(0, 0.004, ar.shape)
        self.open = rng.normal(-2.0 + 0.8 * z, 0.4)[:, None] + rng.normal(0, 0.08, ar.shape)
        self.gdp = rng.normal(9.6 + 0.9 * z, 0.15)[:, None] + rng.normal(0, 0.02, ar.shape)
        self.labour = rng.normal(11.1 + 1.1 * z, 0.2)[:, None] + rng.normal(0, 0.04, ar.shape)
        self.mix = rng.normal(0.15 * z, 0.15)[:, None] + rng.normal(0, 0.06, ar.shape)
        self.alpha = rng.normal(-0.6 + 0.15 * z, 0.25)
        self.noise_te = rng.normal(0.0, 1.0, ar.shape)
        self.linear = {
            name: (rng.normal(0.0, 1.0, n_prov), rng.normal(0.0, 1.0, ar.shape))
            for name in LINEAR_OUTCOMES
        }


def _base_panel(draws: _Draws, kappa_central: float) -> pd.DataFrame:
    """Province-year frame with AI, controls and innovation inputs (no efficiency yet)."""
    prov = draws.provinces
    n_prov, n_years = len(prov), len(YEARS)
    t_c = np.tile(YEARS - 2014.5, (n_prov, 1))
    kappa = np.where(prov["region"].to_numpy() == "central", kappa_central, 1.0)[:, None]
    ai = draws.ai_level[:, None] + AI_TREND * t_c + kappa * draws.ai_within
    gro = 0.105 - 0.006 * t_c - 0.002 * (t_c**2 / 10) + draws.gro
    urb = np.clip(draws.urb + 0.012 * t_c, 0.25, 0.92)
    openness = np.exp(draws.open - 0.03 * t_c)
    ln_gdp = draws.gdp + 0.085 * t_c
    ln_labour = draws.labour + 0.065 * t_c
    ln_spending = ln_labour + np.log(SPENDING_PER_FTE) + 0.055 * t_c + draws.mix
    frame = pd.DataFrame(
        {
            "province": np.repeat(prov["province"].to_numpy(), n_years),
            "year": np.tile(YEARS, n_prov),
            "region": np.repeat(prov["region"].to_numpy(), n_years),
            "AI": ai.ravel(),
            "Gro": gro.ravel(),
            "Urb": urb.ravel(),
            "Open": openness.ravel(),
        }
    )
    frame["gdp"] = np.round(np.exp(ln_gdp.ravel()), 2)
    frame["ict_fixed_asset_investment"] = frame["gdp"] * np.exp(frame["AI"])
    frame["rd_personnel"] = np.round(np.exp(ln_labour.ravel()))
    frame["rd_spending"] = np.round(np.exp(ln_spending.ravel()), 2)
    return frame


def _te_design(frame: pd.DataFrame) -> np.ndarray:
    """Full-interaction design: province, region x year, region x AI, region x controls."""
    blocks = [
        _dummies(frame["province"].to_numpy()),
        _dummies((frame["region"] + "_" + frame["year"].astype(str)).to_numpy()),
    ]
    for region in REGIONS:
        member = (frame["region"] == region).to_numpy(dtype=float)[:, None]
        blocks.append(member * frame[["AI", *CONTROLS]].to_numpy())
    return np.hstack(blocks)


def _pooled_design(frame: pd.DataFrame) -> np.ndarray:
    return np.hstack(
        [
            _dummies(frame["province"].to_numpy()),
            _dummies(frame["year"].to_numpy()),
            frame[["AI", *CONTROLS]].to_numpy(),
        ]
    )


def _fe_slope(frame: pd.DataFrame, outcome: str, mask: np.ndarray | None = None) -> float:
    rows = frame if mask is None else frame[mask]
    return float(
        within_slopes(
            rows[outcome].to_numpy(),
            rows[["AI", *CONTROLS]].to_numpy(),
            rows["province"].to_numpy(),
            rows["year"].to_numpy(),
        )[0]
    )


def _estimates(frame: pd.DataFrame, outcome: str) -> dict[str, float]:
    out = {"pooled": _fe_slope(frame, outcome)}
    for region in REGIONS:
        out[region] = _fe_slope(frame, outcome, (frame["region"] == region).to_numpy())
    return out


def _region_weights(frame: pd.DataFrame) -> dict[str, float]:
    """omega_g: pooled FE slope of D_g x AI on (AI, W); the pooled slope is sum_g omega_g beta_g."""
    weights = {}
    for region in REGIONS:
        indicator = (frame["region"] == region).to_numpy(dtype=float)
        weights[region] = float(
            within_slopes(
                indicator * frame["AI"].to_numpy(),
                frame[["AI", *CONTROLS]].to_numpy(),
                frame["province"].to_numpy(),
                frame["year"].to_numpy(),
            )[0]
        )
    return weights


def _log_efficiency(draws: _Draws, frame: pd.DataFrame, beta: dict[str, float]) -> np.ndarray:
    """ln theta_it = alpha_i + tau_t + beta_region AI_it + delta' W_it + e_it - max(...) <= 0."""
    region = frame["region"].to_numpy()
    noise = _project_off(draws.noise_te.ravel(), _te_design(frame))
    for name in REGIONS:
        member = region == name
        # The design is block-diagonal by region, so rescaling a block keeps it orthogonal.
        noise[member] *= REGION_SIGMA_TE[name] / noise[member].std()
    n_prov = len(draws.provinces)
    alpha = np.repeat(draws.alpha, len(YEARS))
    tau = TE_YEAR_TREND * np.tile(YEARS - 2014.5, n_prov)
    slopes = pd.Series(region).map(beta).to_numpy()
    controls = sum(DELTA_TE[c] * frame[c].to_numpy() for c in CONTROLS)
    linear = alpha + tau + slopes * frame["AI"].to_numpy() + controls + noise
    # The best province-year defines the frontier; subtracting its value is a constant that the
    # province effects absorb.
    return linear - linear.max()


def _efficiency_panel(draws: _Draws, beta: dict[str, float], kappa_central: float):
    """Panel whose patents put every province-year at its target DEA score.

    The anchor a (largest target score, theta_a = 1) gets Cobb-Douglas-level patents; every other
    unit gets Pat_o = theta_o * Pat_a * min(L_o / L_a, K_o / K_a), the output of the CRS hull
    spanned by the anchor, so the CCR score of o is theta_o up to the rounding of Pat_o.
    """
    frame = _base_panel(draws, kappa_central)
    ln_theta = _log_efficiency(draws, frame, beta)
    labour = frame["rd_personnel"].to_numpy()
    spending = frame["rd_spending"].to_numpy()
    anchor = int(np.argmax(ln_theta))
    anchor_patents = np.round(
        np.exp(
            PATENT_LEVEL
            + LABOUR_SHARE * np.log(labour[anchor])
            + (1 - LABOUR_SHARE) * np.log(spending[anchor] / SPENDING_PER_FTE)
        )
    )
    frontier = anchor_patents * np.minimum(labour / labour[anchor], spending / spending[anchor])
    patents = np.round(np.exp(ln_theta) * frontier)
    patents[anchor] = anchor_patents
    frame["ln_target_efficiency"] = ln_theta
    frame["patents_granted"] = patents
    inputs = frame[["rd_personnel", "rd_spending"]].to_numpy()
    frame["innovation_efficiency"] = ccr_efficiency(inputs, patents)
    frame["ln_innovation_efficiency"] = np.log(frame["innovation_efficiency"])
    # Rounding a count n moves its log by at most 0.5 / n (plus the anchor's own rounding).
    gap = np.abs(frame["ln_innovation_efficiency"] - ln_theta).to_numpy()
    if (gap > 1.0 / patents + 1.0 / anchor_patents).any():
        raise RuntimeError(f"DEA scores miss their targets by up to {gap.max():.2e} in log")
    return frame, anchor


def _calibrate_kappa(draws: _Draws, beta: dict[str, float]) -> float:
    """kappa_central with sum_g omega_g(kappa) beta_g = the published pooled elasticity."""

    def pooled_gap(kappa: float) -> float:
        weights = _region_weights(_base_panel(draws, kappa))
        return sum(weights[g] * beta[g] for g in REGIONS) - TARGET_POOLED

    return float(brentq(pooled_gap, 0.2, 8.0, xtol=1e-12))


def _add_linear_outcomes(frame: pd.DataFrame, draws: _Draws) -> None:
    """Log outcomes whose province + year FE slope on AI (with W) is the published elasticity.

    Each is y = base + sigma_y e_y + k_y (AI - mean AI) with e_y projected off the pooled design
    and k_y = beta_y - slope(base): the FE slope is linear in y, so it lands on beta_y.
    """
    z = np.repeat(draws.provinces["z"].to_numpy(), len(YEARS))
    t_c = frame["year"].to_numpy() - 2014.5
    design = _pooled_design(frame)
    ai_centred = (frame["AI"] - frame["AI"].mean()).to_numpy()
    controls = 0.3 * (frame["Gro"] - 0.08) + 0.5 * (frame["Urb"] - 0.55)

    def province(name: str, sd: float) -> np.ndarray:
        return sd * np.repeat(draws.linear[name][0], len(YEARS))

    def add(name: str, base: np.ndarray) -> np.ndarray:
        elasticity, sigma, _ = LINEAR_OUTCOMES[name]
        noise = _project_off(draws.linear[name][1].ravel(), design)
        noise *= sigma / noise.std()
        k = elasticity - _fe_slope(frame.assign(_base=np.asarray(base)), "_base")
        frame[name] = np.asarray(base) + noise + k * ai_centred
        return frame[name].to_numpy()

    # Applications run at about 1.7 times grants; performers' shares of applications (our
    # choice): universities 10%, institutes 3%, enterprises 55%, each with a province spread.
    ln_apps = add(
        "ln_patent_applications",
        np.log(frame["patents_granted"]) + np.log(1.7) + province("ln_patent_applications", 0.05),
    )
    add(
        "ln_patent_applications_universities",
        ln_apps + np.log(0.10) + province("ln_patent_applications_universities", 0.35),
    )
    add(
        "ln_patents_research_institutes",
        ln_apps + np.log(0.03) + province("ln_patents_research_institutes", 0.45),
    )
    add("ln_patents_enterprises", ln_apps + np.log(0.55) + province("ln_patents_enterprises", 0.08))
    add("ln_papers", 9.9 + 0.8 * z + province("ln_papers", 0.25) + 0.02 * t_c + controls)
    add(
        "ln_tech_market_turnover_to_gdp",
        -4.6 + 0.9 * z + province("ln_tech_market_turnover_to_gdp", 0.6) + 0.08 * t_c + controls,
    )
    frame["tech_market_turnover_to_gdp"] = np.exp(frame["ln_tech_market_turnover_to_gdp"])
    # Counts are shipped as whole numbers and their logs recomputed from them.
    for count, log in COUNT_OUTCOMES.items():
        frame[count] = np.round(np.exp(frame[log]))
        frame[log] = np.log(frame[count])


COUNT_OUTCOMES = {
    "patent_applications": "ln_patent_applications",
    "patent_applications_universities": "ln_patent_applications_universities",
    "patents_research_institutes": "ln_patents_research_institutes",
    "patents_enterprises": "ln_patents_enterprises",
    "papers": "ln_papers",
}


COLUMN_ORDER = [
    "province",
    "year",
    "region",
    "ict_fixed_asset_investment",
    "gdp",
    "ai_share",
    "AI",
    "rd_personnel",
    "rd_spending",
    "patents_granted",
    "innovation_efficiency",
    "ln_innovation_efficiency",
    "Gro",
    "Urb",
    "Open",
    "patent_applications_universities",
    "ln_patent_applications_universities",
    "patents_research_institutes",
    "ln_patents_research_institutes",
    "patents_enterprises",
    "ln_patents_enterprises",
    "patent_applications",
    "ln_patent_applications",
    "papers",
    "ln_papers",
    "tech_market_turnover_to_gdp",
    "ln_tech_market_turnover_to_gdp",
]


def _per_year_diagnostic(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """FE estimates if the DEA frontier were drawn year by year (CCR and BCC) on the same data."""
    inputs = frame[["rd_personnel", "rd_spending"]].to_numpy()
    output = frame["patents_granted"].to_numpy()
    out = {}
    for label, scorer in (("per_year_ccr", ccr_efficiency), ("per_year_bcc", bcc_efficiency)):
        scored = frame.assign(ln_score=np.log(scorer(inputs, output, groups=frame["year"])))
        out[label] = _estimates(scored, "ln_score")
    return out


def generate(seed: int = DEFAULT_SEED) -> tuple[pd.DataFrame, dict]:
    """SYNTHETIC fu2021 panel and its truth.

    ln theta_it = alpha_i + tau_t + beta_region(i) AI_it + delta' W_it + e_it - max, with
    patents granted placed so that the pooled input-oriented CCR DEA score of (R&D personnel,
    R&D spending) -> patents equals theta_it; province + year FE regressions of
    ``ln_innovation_efficiency`` on AI and the controls return the published 0.045 (all) and
    0.014 / 0.090 / 0 (east / central / west).

    Returns
    -------
    tuple
        ``(panel, truth)``: 300 province-years in ``COLUMN_ORDER`` and a JSON-serialisable dict.
    """
    draws = _Draws(seed)
    beta = dict(TARGET_REGION)
    kappa = _calibrate_kappa(draws, beta)
    frame, anchor = _efficiency_panel(draws, beta, kappa)
    _add_linear_outcomes(frame, draws)
    frame["ai_share"] = np.exp(frame["AI"])
    weights = _region_weights(frame)
    pseudo_true_pooled = sum(weights[g] * beta[g] for g in REGIONS)
    effective = _estimates(frame, "ln_innovation_efficiency")
    panel = frame[COLUMN_ORDER].reset_index(drop=True)
    truth = {
        "study": "fu2021",
        "synthetic": True,
        "seed": seed,
        "note": "SYNTHETIC panel: parameters of the data-generating process; not estimates "
        "about China.",
        "n_provinces": int(panel["province"].nunique()),
        "years": [int(YEARS[0]), int(YEARS[-1])],
        "regions": {g: len(PROVINCES[g]) for g in REGIONS},
        "regression": "ln_innovation_efficiency ~ AI + Gro + Urb + Open | province + year",
        "dea": {
            "model": "CCR, input-oriented, radial (models.dea.ccr_efficiency)",
            "frontier": "one frontier pooled over all 300 province-years",
            "inputs": ["rd_personnel", "rd_spending"],
            "output": "patents_granted",
            "anchor": {
                "province": str(frame["province"].iloc[anchor]),
                "year": int(frame["year"].iloc[anchor]),
            },
            "paper_likely": "year-by-year DEA cross-sections (DEAP style), CCR or BCC; the "
            "summary does not say",
        },
        "elasticity_AI": {
            "description": "beta_region of ln_innovation_efficiency on AI (DGP); a province + "
            "year FE regression on a region's subsample returns it exactly before the rounding "
            "of patent counts",
            **beta,
        },
        "pooled_pseudo_true": pseudo_true_pooled,
        "region_weights_in_pooled_slope": weights,
        "kappa_central_ai_within_scale": kappa,
        "effective": {
            "description": "province + year FE slopes of AI on ln_innovation_efficiency "
            "recomputed by DEA from the shipped inputs and output (pooled and by region); they "
            "differ from the DGP only by the rounding of patents to whole numbers",
            **effective,
        },
        "delta_controls": DELTA_TE,
        "sigma_by_region": REGION_SIGMA_TE,
        "efficiency_year_trend": TE_YEAR_TREND,
        "ai_process": {
            "trend": AI_TREND,
            "ar1": AI_AR,
            "shock_sd": AI_SHOCK_SD,
            "within_scale": {"east": 1.0, "central": kappa, "west": 1.0},
        },
        "frontier": {
            "form": "Leontief through the anchor (the CRS hull of one DMU)",
            "anchor_patents_level": PATENT_LEVEL,
            "labour_share": LABOUR_SHARE,
        },
        "per_year_dea_diagnostic": _per_year_diagnostic(frame),
        "linear_outcomes": {
            name: {"elasticity_AI": elasticity, "sigma": sigma, "source": source}
            for name, (elasticity, sigma, source) in LINEAR_OUTCOMES.items()
        },
        "calibrated_from": {
            "elasticity_AI.east": "data/published/fu2021.csv region/east (0.014)",
            "elasticity_AI.central": "region/central (0.090)",
            "elasticity_AI.west": "region/west prints no number ('insignificant'); set to 0",
            "pooled_pseudo_true": "baseline/1 (0.045), reached through kappa_central",
            "linear_outcomes": "performer/universities 0.461, performer/institutes 0.228, "
            "performer/enterprises 0.010, type/applied 0.195, type/basic 0.013; "
            "ln_tech_market_turnover_to_gdp 0.12 is our choice (robustness/1 prints no number)",
            "everything_else": "our choice: levels, trends, noise, control effects and the "
            "kappa mechanism; the summary prints no SE, N or moments",
        },
    }
    return panel, truth

"""SYNTHETIC city panel for the AI-agglomeration study (agglo2025), 268 cities x 2015-2024.

The panel shows the workflow and gives every model a known truth; it is not evidence about
China. Only the abstract of the study is known and it prints no number, so EVERY parameter below
is our choice, not a calibrated value: the abstract fixes only the design (268 cities,
2015-2024), the signs (agglomeration raises innovation; related and unrelated variety both
mediate) and the ordering of effects (stronger in hub cities and in the east; a threshold above
which the effect grows).

Data-generating process
-----------------------
Cities c = 1..268 (100 east, 96 central, 72 west; 35 hubs: municipalities, provincial capitals
and the five cities with independent planning status: 16 east, 8 central, 11 west), years
t = 2015..2024. A size factor z_c ~ N(m_region + 1.2 hub_c, 0.7^2).

Agglomeration. Total employment E_ct and AI-industry employment E^AI_ct = round(E_ct s_ct) with

    ln s_ct = -6.3 + 0.5 z_c + 0.5 hub_c + r_c + g_c (t - 2019.5) + u_ct,
    g_c ~ N(0.06 + 0.04 hub_c, 0.05^2),  u_ct = 0.5 u_c,t-1 + N(0, 0.12^2),

and LQ_ct = (E^AI_ct / E_ct) / (sum_c E^AI_ct / sum_c E_ct)
(:func:`data.measures.location_quotient.location_quotient`).

Controls W (our choice, the usual determinants of both AI-firm location and city innovation, so
leaving them out would bias the slope): ln GDP per capita (lnPGDP), tertiary share of GDP (Ind),
science and technology spending / general budget spending (Sci), ln students in higher
education per 10,000 residents (Hum), FDI / GDP (Open), loans / GDP (Fin). Each is a city level
loading on z, a trend, and noise that also loads on the AI shock u_ct (so W is correlated with
LQ within cities).

Knowledge variety (mediators, in bits): targets

    RV*_ct = rho_c + 0.010 (t - 2019.5) + a_RV LQ_ct + 0.05 (lnPGDP_ct - mean) + e_RV,ct,
    UV*_ct = nu_c  + 0.008 (t - 2019.5) + a_UV LQ_ct + 0.04 (lnPGDP_ct - mean) + e_UV,ct,

with e ~ N(0, 0.04^2). Patent shares over 40 IPC subclasses (8 sections x 5) are built to meet
them: section shares P_g ∝ w_cg^(1/T1) with T1 solved so that sum_g P_g log2(1/P_g) = UV*, then
within-section shares ∝ v_cj^(1/T2) with T2 solved so that sum_g P_g H_g = RV*. Counts are the
shares times a city-year total N_ct (largest-remainder rounding, so they sum to N_ct). The panel's
``related_variety`` and ``unrelated_variety`` are recomputed from the counts
(:func:`data.measures.knowledge_variety.variety_panel`), so they equal RV*, UV* up to rounding.

Innovation capability (``Inn``, the log of a city innovation index):

    Inn_ct = iota_c + tau_t + theta_ct LQ_ct + b_RV RV_ct + b_UV UV_ct + delta' W_ct + e_ct,
    theta_ct = theta_0 + theta_hub hub_c + theta_east east_c + theta_high 1[LQ_ct > gamma],

e_ct ~ N(0, sigma^2). True indirect effects are a_RV b_RV and a_UV b_UV. Because theta varies, a
single-slope TWFE regression estimates a weighted average of it; the truth records that
"pseudo-true" slope for each specification: the same regression run on the noise-free outcome
(Inn without e and without the mediators' noise passed through b).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.measures.knowledge_variety import variety_panel
from data.measures.location_quotient import location_quotient
from data.synthetic.within import within_slopes

DEFAULT_SEED = 20250268
YEARS = np.arange(2015, 2025)
N_REGION = {"east": 100, "central": 96, "west": 72}
N_HUBS = {"east": 16, "central": 8, "west": 11}
REGION_SIZE_MEAN = {"east": 0.4, "central": -0.1, "west": -0.5}
SECTIONS = {
    "A": ["A01B", "A23L", "A61B", "A61K", "A61P"],
    "B": ["B01D", "B23K", "B60L", "B65D", "B65G"],
    "C": ["C02F", "C04B", "C07D", "C08L", "C12N"],
    "D": ["D01F", "D04H", "D06F", "D06M", "D21H"],
    "E": ["E01D", "E02D", "E04B", "E04G", "E21B"],
    "F": ["F01D", "F16K", "F24F", "F25D", "F28D"],
    "G": ["G01N", "G06F", "G06N", "G06Q", "G06T"],
    "H": ["H01L", "H01M", "H02J", "H04L", "H04N"],
}
CLASSES = [code for codes in SECTIONS.values() for code in codes]
CONTROLS = ("lnPGDP", "Ind", "Sci", "Hum", "Open", "Fin")

# Structural parameters: our choice (the abstract prints no number).
THETA = {"base": 0.06, "hub": 0.08, "east": 0.04, "high_regime": 0.04}
GAMMA = 0.8
A_PATH = {"related_variety": 0.10, "unrelated_variety": 0.08}
B_PATH = {"related_variety": 0.35, "unrelated_variety": 0.25}
DELTA = {"lnPGDP": 0.30, "Ind": 0.50, "Sci": 2.0, "Hum": 0.10, "Open": 1.0, "Fin": 0.05}
SIGMA_INN = 0.05
SIGMA_VARIETY = 0.04
INN_YEAR_TREND = 0.04
MAX_UV = np.log2(len(SECTIONS))
MAX_RV = np.log2(5)


def _cities(rng: np.random.Generator) -> pd.DataFrame:
    regions, hubs = [], []
    for region, count in N_REGION.items():
        regions += [region] * count
        hubs += [1] * N_HUBS[region] + [0] * (count - N_HUBS[region])
    frame = pd.DataFrame(
        {"city": [f"C{i + 1:03d}" for i in range(len(regions))], "region": regions, "hub": hubs}
    )
    frame["z"] = rng.normal(frame["region"].map(REGION_SIZE_MEAN) + 1.2 * frame["hub"], 0.7)
    return frame


def _ar1(rng: np.random.Generator, shape: tuple[int, int], rho: float, sd: float) -> np.ndarray:
    shocks = rng.normal(0.0, sd, shape)
    path = np.zeros(shape)
    path[:, 0] = shocks[:, 0] / np.sqrt(1 - rho**2)
    for year in range(1, shape[1]):
        path[:, year] = rho * path[:, year - 1] + shocks[:, year]
    return path


def _solve_temperature(log_weights: np.ndarray, target: np.ndarray, entropy_of) -> np.ndarray:
    """Bisection (in log T) for the temperature at which ``entropy_of`` meets ``target``, row-wise.

    Entropy of softmax(log_weights / T) rises monotonically in T, so bisection converges.
    """
    low = np.full(target.shape, np.log(1e-3))
    high = np.full(target.shape, np.log(1e3))
    for _ in range(80):
        middle = 0.5 * (low + high)
        too_high = entropy_of(log_weights, np.exp(middle)) > target
        high = np.where(too_high, middle, high)
        low = np.where(too_high, low, middle)
    return np.exp(0.5 * (low + high))


def _softmax(log_weights: np.ndarray, temperature: np.ndarray) -> np.ndarray:
    scaled = log_weights / temperature[..., None]
    scaled -= scaled.max(axis=-1, keepdims=True)
    weights = np.exp(scaled)
    return weights / weights.sum(axis=-1, keepdims=True)


def _bits(shares: np.ndarray) -> np.ndarray:
    safe = np.where(shares > 0, shares, 1.0)
    return -(shares * np.log2(safe)).sum(axis=-1)


def _class_shares(section_logw, class_logw, uv_target, rv_target) -> np.ndarray:
    """(rows, 8, 5) class shares meeting the UV and RV targets of each row."""
    t1 = _solve_temperature(section_logw, uv_target, lambda w, t: _bits(_softmax(w, t)))
    sections = _softmax(section_logw, t1)

    def related(w: np.ndarray, t: np.ndarray) -> np.ndarray:
        within = _softmax(w, np.repeat(t[:, None], w.shape[1], axis=1))
        return (sections * _bits(within)).sum(axis=1)

    t2 = _solve_temperature(class_logw, rv_target, related)
    within = _softmax(class_logw, np.repeat(t2[:, None], class_logw.shape[1], axis=1))
    return sections[:, :, None] * within


def _largest_remainder(shares: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Whole counts proportional to ``shares`` (rows) that sum exactly to ``totals``."""
    exact = shares * totals[:, None]
    counts = np.floor(exact).astype(np.int64)
    short = (totals - counts.sum(axis=1)).astype(np.int64)
    order = np.argsort(-(exact - counts), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(shares.shape[1])[None, :], axis=1)
    return counts + (ranks < short[:, None])


def _slope(
    frame: pd.DataFrame, outcome: np.ndarray, regressors: list[str], mask: np.ndarray | None = None
) -> np.ndarray:
    keep = np.ones(len(frame), dtype=bool) if mask is None else mask
    rows = frame[keep]
    return within_slopes(
        np.asarray(outcome)[keep],
        rows[regressors].to_numpy(),
        rows["city"].to_numpy(),
        rows["year"].to_numpy(),
    )


def generate(seed: int = DEFAULT_SEED) -> tuple[pd.DataFrame, dict, dict[str, pd.DataFrame]]:
    """SYNTHETIC agglo2025 panel, its truth and the long patent file.

    Inn_ct = iota_c + tau_t + theta_ct LQ_ct + b_RV RV_ct + b_UV UV_ct + delta' W_ct + e_ct with
    theta_ct = theta_0 + theta_hub hub_c + theta_east east_c + theta_high 1[LQ_ct > gamma];
    RV and UV (bits) are computed from patent counts by IPC subclass built so that
    RV = a_RV LQ + ..., UV = a_UV LQ + ... (see the module docstring).

    Returns
    -------
    tuple
        ``(panel, truth, {"patents_by_class.csv": patents})``: 2,680 city-years, a
        JSON-serialisable dict, and the long file (city, year, ipc_class, count) of positive
        counts.
    """
    rng = np.random.default_rng(seed)
    cities = _cities(rng)
    n_city, n_year = len(cities), len(YEARS)
    shape = (n_city, n_year)
    z = cities["z"].to_numpy()[:, None]
    hub = cities["hub"].to_numpy()[:, None]
    east = (cities["region"] == "east").to_numpy(dtype=float)[:, None]
    t_c = np.tile(YEARS - 2019.5, (n_city, 1))

    # Employment and agglomeration.
    ln_total = rng.normal(12.4 + 0.8 * z[:, 0], 0.2)[:, None] + 0.01 * t_c
    ln_total = ln_total + rng.normal(0, 0.02, shape)
    growth = rng.normal(0.06 + 0.04 * hub[:, 0], 0.05)[:, None]
    ai_shock = _ar1(rng, shape, 0.5, 0.12)
    ln_share = (
        -6.3 + 0.5 * z + 0.5 * hub + rng.normal(0, 0.35, n_city)[:, None] + growth * t_c + ai_shock
    )
    total_employment = np.round(np.exp(ln_total))
    ai_employment = np.round(total_employment * np.exp(ln_share))

    # Controls: city level + trend + noise, part of it tied to the AI shock.
    def control(level, loading, city_sd, trend, noise_sd, shock_loading):
        return (
            level
            + loading * z
            + rng.normal(0, city_sd, n_city)[:, None]
            + trend * t_c
            + rng.normal(0, noise_sd, shape)
            + shock_loading * ai_shock
        )

    controls = {
        "lnPGDP": control(11.0, 0.35, 0.15, 0.05, 0.02, 0.2),
        "Ind": np.clip(control(0.47, 0.05, 0.04, 0.008, 0.008, 0.05), 0.2, 0.85),
        "Sci": np.clip(control(0.022, 0.008, 0.006, 0.0008, 0.002, 0.01), 0.002, 0.12),
        "Hum": control(4.6, 0.6, 0.5, 0.02, 0.03, 0.1),
        "Open": np.exp(control(-4.3, 0.4, 0.7, -0.03, 0.15, 0.3)),
        "Fin": np.clip(control(1.1, 0.25, 0.2, 0.03, 0.04, 0.1), 0.2, 4.0),
    }
    frame = pd.DataFrame(
        {
            "city": np.repeat(cities["city"].to_numpy(), n_year),
            "year": np.tile(YEARS, n_city),
            "region": np.repeat(cities["region"].to_numpy(), n_year),
            "hub": np.repeat(cities["hub"].to_numpy(), n_year),
            "ai_employment": ai_employment.ravel(),
            "total_employment": total_employment.ravel(),
        }
    )
    frame["LQ"] = location_quotient(frame).to_numpy()
    for name, values in controls.items():
        frame[name] = values.ravel()
    lq = frame["LQ"].to_numpy()
    pgdp_dev = frame["lnPGDP"].to_numpy() - frame["lnPGDP"].mean()

    # Variety targets, shares and counts.
    rho = np.repeat(rng.normal(1.35 + 0.06 * z[:, 0], 0.12), n_year)
    nu = np.repeat(rng.normal(2.05 + 0.06 * z[:, 0], 0.10), n_year)
    t_flat = t_c.ravel()
    rv_sys = rho + 0.010 * t_flat + A_PATH["related_variety"] * lq + 0.05 * pgdp_dev
    uv_sys = nu + 0.008 * t_flat + A_PATH["unrelated_variety"] * lq + 0.04 * pgdp_dev
    rv_noise = rng.normal(0, SIGMA_VARIETY, rv_sys.shape)
    uv_noise = rng.normal(0, SIGMA_VARIETY, uv_sys.shape)
    rv_target = np.clip(rv_sys + rv_noise, 0.3, MAX_RV - 0.03)
    uv_target = np.clip(uv_sys + uv_noise, 0.3, MAX_UV - 0.03)
    # Clipping would bend the a-paths at high LQ; the default draws clip nothing.
    n_clipped = int((rv_target != rv_sys + rv_noise).sum() + (uv_target != uv_sys + uv_noise).sum())
    section_logw = np.repeat(rng.normal(0, 0.8, (n_city, len(SECTIONS))), n_year, axis=0)
    section_logw += rng.normal(0, 0.05, section_logw.shape)
    class_logw = np.repeat(rng.normal(0, 0.8, (n_city, len(SECTIONS), 5)), n_year, axis=0)
    class_logw += rng.normal(0, 0.05, class_logw.shape)
    shares = _class_shares(section_logw, class_logw, uv_target, rv_target)
    ln_patents = 7.6 + 0.8 * z + 0.07 * t_c + rng.normal(0, 0.05, shape)
    totals = np.round(np.exp(ln_patents)).ravel().astype(np.int64)
    counts = _largest_remainder(shares.reshape(len(frame), -1), totals)
    patents = pd.DataFrame(
        {
            "city": np.repeat(frame["city"].to_numpy(), len(CLASSES)),
            "year": np.repeat(frame["year"].to_numpy(), len(CLASSES)),
            "ipc_class": np.tile(CLASSES, len(frame)),
            "count": counts.ravel(),
        }
    )
    patents = patents[patents["count"] > 0].reset_index(drop=True)
    variety = variety_panel(patents)
    frame = frame.merge(
        variety[["city", "year", "related_variety", "unrelated_variety", "patents"]],
        on=["city", "year"],
        how="left",
        validate="1:1",
    )
    frame = frame.rename(columns={"patents": "patent_total"})
    rv = frame["related_variety"].to_numpy()
    uv = frame["unrelated_variety"].to_numpy()

    # Innovation capability.
    hub_flat, east_flat = np.repeat(hub[:, 0], n_year), np.repeat(east[:, 0], n_year)
    high = (lq > GAMMA).astype(float)
    theta = (
        THETA["base"]
        + THETA["hub"] * hub_flat
        + THETA["east"] * east_flat
        + THETA["high_regime"] * high
    )
    iota = np.repeat(rng.normal(1.8 + 0.5 * z[:, 0], 0.2), n_year)
    tau = INN_YEAR_TREND * t_flat
    controls_part = sum(DELTA[c] * frame[c].to_numpy() for c in CONTROLS)
    b_rv, b_uv = B_PATH["related_variety"], B_PATH["unrelated_variety"]
    inn_noise = rng.normal(0, SIGMA_INN, len(frame))
    inn_without_noise = iota + tau + theta * lq + b_rv * rv + b_uv * uv + controls_part - 2.0
    frame["Inn"] = inn_without_noise + inn_noise
    # Noise-free total: the mediators at their systematic part (their own noise and the rounding
    # of counts are noise to a regression of Inn on LQ).
    inn_systematic = inn_without_noise - b_rv * (rv - rv_sys) - b_uv * (uv - uv_sys)

    columns = [
        "city",
        "year",
        "region",
        "hub",
        "ai_employment",
        "total_employment",
        "LQ",
        "Inn",
        "related_variety",
        "unrelated_variety",
        "patent_total",
        *CONTROLS,
    ]
    panel = frame[columns].reset_index(drop=True)
    truth = _truth(seed, panel, inn_systematic, inn_without_noise, rv_sys, uv_sys)
    truth["variety_targets_clipped"] = n_clipped
    return panel, truth, {"patents_by_class.csv": patents}


def _truth(seed, panel, inn_systematic, inn_without_noise, rv_sys, uv_sys) -> dict:
    base = ["LQ", *CONTROLS]
    hub = panel["hub"].to_numpy() == 1
    region = panel["region"].to_numpy()
    lq = panel["LQ"].to_numpy()
    below = panel.assign(LQ_low=lq * (lq <= GAMMA), LQ_high=lq * (lq > GAMMA))
    pseudo = {
        "baseline": _slope(panel, inn_systematic, base)[0],
        "hub": _slope(panel, inn_systematic, base, hub)[0],
        "non_hub": _slope(panel, inn_systematic, base, ~hub)[0],
        **{
            r: _slope(panel, inn_systematic, base, region == r)[0]
            for r in ("east", "central", "west")
        },
        "direct_with_mediators": _slope(
            panel, inn_without_noise, ["LQ", "related_variety", "unrelated_variety", *CONTROLS]
        )[0],
        "a_related_variety": _slope(panel, rv_sys, base)[0],
        "a_unrelated_variety": _slope(panel, uv_sys, base)[0],
    }
    regimes = _slope(below, inn_systematic, ["LQ_low", "LQ_high", *CONTROLS])
    pseudo["LQ_regime1"], pseudo["LQ_regime2"] = regimes[0], regimes[1]
    indirect = {k: A_PATH[k] * B_PATH[k] for k in A_PATH}
    return {
        "study": "agglo2025",
        "synthetic": True,
        "seed": seed,
        "note": "SYNTHETIC panel: parameters of the data-generating process, chosen by us; "
        "nothing is calibrated (the abstract prints no number). Not estimates about China.",
        "n_cities": int(panel["city"].nunique()),
        "years": [int(YEARS[0]), int(YEARS[-1])],
        "regions": {r: int(n) for r, n in N_REGION.items()},
        "hubs": {r: int(n) for r, n in N_HUBS.items()},
        "regression": "Inn ~ LQ + " + " + ".join(CONTROLS) + " | city + year",
        "theta": THETA,
        "threshold": {"variable": "LQ", "gamma": GAMMA, "share_above": float((lq > GAMMA).mean())},
        "mediation": {
            "a": A_PATH,
            "b": B_PATH,
            "indirect": indirect,
            "indirect_total": sum(indirect.values()),
        },
        "delta_controls": DELTA,
        "sigma": {"Inn": SIGMA_INN, "variety_bits": SIGMA_VARIETY},
        "pseudo_true": {
            "description": "slope the named TWFE regression (city + year FE, controls) returns "
            "on the noise-free outcome; baseline, subgroups and threshold regimes use Inn with "
            "the mediators at their systematic part, direct_with_mediators adds RV and UV as "
            "regressors",
            **{k: float(v) for k, v in pseudo.items()},
        },
        "technology_classes": SECTIONS,
        "calibrated_from": {
            "everything": "our choice: seeds/002 is an abstract with no number; it fixes the "
            "design (268 cities, 2015-2024), signs (LQ raises Inn; both varieties mediate) and "
            "ordering (hub > non-hub, east > others, effect larger above the threshold)",
        },
    }

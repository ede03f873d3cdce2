"""Result rows and the figure of the Bayesian event study (used by
:mod:`inference.estimators.event_study`): coefficients, the pre-trend probability, post-period
summaries and the relative-magnitude rows, each with a note in words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from inference.estimators.base import convergence_note
from models.bayes.summary import summary_row
from models.event_study.summaries import (
    post_summaries,
    pretrend_probability,
    pretrend_sentence,
    relative_magnitude_bounds,
    relative_magnitude_summary,
)
from models.event_study.twfe import TERM_PREFIX

POST_NOTES = {
    "post_average": "average of the Treat x year coefficients after {ref}",
    "post_cumulative": "sum of the Treat x year coefficients after {ref}",
    "peak_effect": "the coefficient in the post-{ref} year with the largest |coefficient|, "
                   "draw by draw",
}


def fit_note(fit) -> str:
    """Empty for a converged fit, else its problems in words (for summary rows)."""
    problems = fit.convergence_problems()
    if not problems:
        return ""
    return (f"from a fit that did not converge ({len(problems)} problem(s); the coefficient "
            f"rows' notes say which): {problems[0]}")


def bayesian_rows(fit, band: float, mbars, prefix: str = "") -> pd.DataFrame:
    """Coefficient rows (``Treat_x_<year>``), ``pretrend_probability``, post summaries,
    ``peak_year`` and ``rm_Mbar_<m>`` rows of one fit; term names get ``prefix``."""
    problems = fit.convergence_problems()
    tidy = fit.tidy(auxiliary=False).drop(columns=["divergences"], errors="ignore")
    tidy["note"] = [convergence_note(term, problems) for term in tidy["term"]]
    years, reference = fit.event_years, fit.reference
    keep = tidy["term"].str.startswith((TERM_PREFIX, "rate_ratio_"))
    rows = [tidy[keep]]
    draws = fit.path_draws()
    general = fit_note(fit)
    n_obs, divergences = fit.spec["n_obs"], fit.divergences

    def note(text: str) -> str:
        return "; ".join(t for t in (text, general) if t)

    extra = []
    if any(y < reference for y in years):
        probability = pretrend_probability(draws, years, reference, band)
        extra.append({"term": "pretrend_probability", "estimate": probability,
                      "n_obs": n_obs, "note": note(pretrend_sentence(probability, band,
                                                                     reference))})
    summaries = post_summaries(draws, years, reference)
    for name, text in POST_NOTES.items():
        row = summary_row(name, summaries[name], n_obs, divergences)
        row.pop("divergences")
        extra.append({**row, "note": note(text.format(ref=reference))})
    peak = summaries["peak_year"].ravel()
    values, counts = np.unique(peak, return_counts=True)
    mode = values[np.argmax(counts)]
    extra.append({"term": "peak_year", "estimate": float(mode), "ci_low": float(np.quantile(
        peak, 0.03)), "ci_high": float(np.quantile(peak, 0.97)), "n_obs": n_obs,
        "note": note(f"posterior mode of the year with the largest |coefficient| after "
                     f"{reference}; P(peak in {int(mode)}) = {counts.max() / peak.size:.2f}")})
    if fit.spec["likelihood"] == "negbin":
        ratio = summary_row("rate_ratio_post_average", np.exp(summaries["post_average"]),
                            n_obs, divergences)
        ratio.pop("divergences")
        extra.append({**ratio, "note": note("exp(average post-period coefficient): the "
                                            "geometric-mean rate ratio after the reference "
                                            "year")})
    if any(y < reference for y in years):
        for mbar in mbars:
            rm = relative_magnitude_summary(draws, years, reference, float(mbar))
            extra.append({
                "term": f"rm_Mbar_{mbar:g}", "estimate": rm["centre"], "ci_low": rm["ci_low"],
                "ci_high": rm["ci_high"], "prob_positive": rm["prob_positive"], "n_obs": n_obs,
                "note": note(
                    f"average post effect under parallel-trend violations up to Mbar = "
                    f"{mbar:g} x the largest pre-period one (Rambachan & Roth 2023, relative "
                    f"magnitudes), from the posterior: 94% interval of the identified set's "
                    f"ends; P(> 0 under every such violation) = {rm['prob_positive']:.2f}, "
                    f"P(< 0 under every such violation) = {rm['prob_negative']:.2f}")})
    out = pd.concat([*rows, pd.DataFrame(extra)], ignore_index=True)
    if prefix:
        out["term"] = prefix + out["term"]
    return out


DEFAULT_SD_MS = (0.0, 0.01, 0.02, 0.05)


def frequentist_honest_rows(freq_fit, mbars, ms=DEFAULT_SD_MS, alpha: float = 0.05,
                            grid_points: int = 101) -> pd.DataFrame:
    """Honest confidence sets of the average post effect (Rambachan & Roth 2023) from the
    frequentist event study: ``rm_Mbar_<m>`` (relative magnitudes, the conditional-least-
    favourable hybrid set) and ``sd_M_<m>`` (smoothness, the fixed-length interval), from the
    coefficients and their covariance (:mod:`models.event_study.honest`)."""
    from models.event_study.honest import conditional_cs_delta_rm, flci_delta_sd

    coefs = freq_fit.table[freq_fit.table["term"].str.startswith(TERM_PREFIX)]
    years = np.array([int(t.removeprefix(TERM_PREFIX)) for t in coefs["term"]])
    reference = freq_fit.reference
    pre, post = years < reference, years > reference
    if freq_fit.cov is None or not pre.any() or not post.any():
        return pd.DataFrame()
    if not np.array_equal(years[post] - reference, np.arange(1, post.sum() + 1)) or not (
            np.array_equal(reference - years[pre], np.arange(pre.sum(), 0, -1))):
        raise ValueError(f"honest confidence sets need consecutive event years around "
                         f"{reference}; got {years.tolist()} [rule: consecutive event years]")
    beta = coefs["estimate"].to_numpy(float)
    n_pre, n_post = int(pre.sum()), int(post.sum())
    l_vec = np.full(n_post, 1.0 / n_post)
    centre = float(l_vec @ beta[post])
    sd = float(np.sqrt(l_vec @ freq_fit.cov[np.ix_(post, post)] @ l_vec))
    level = f"{100 * (1 - alpha):g}%"
    rows = []
    for mbar in mbars:
        low, high = relative_magnitude_bounds(beta, years, reference, float(mbar))
        result = conditional_cs_delta_rm(
            beta, freq_fit.cov, n_pre, n_post, float(mbar), l_vec, alpha,
            grid_points=grid_points, grid_lb=float(low) - 20 * sd,
            grid_ub=float(high) + 20 * sd)
        extra = "; open at an end of the search grid" if result["open"] else ""
        if not np.isfinite(result["lb"]):
            extra = "; empty: every value is rejected, the restriction is at odds with the data"
        rows.append({"term": f"rm_Mbar_{mbar:g}", "estimate": centre, "ci_low": result["lb"],
                     "ci_high": result["ub"], "n_obs": freq_fit.n_obs,
                     "note": f"honest {level} confidence set of the average post effect when "
                             f"post-period violations of parallel trends are at most Mbar = "
                             f"{mbar:g} x the largest pre-period one (Rambachan & Roth 2023, "
                             f"relative magnitudes; conditional-least-favourable hybrid test "
                             f"as HonestDiD's C-LF); estimate = the average post coefficient"
                             f"{extra}"})
    for m in ms:
        result = flci_delta_sd(beta, freq_fit.cov, n_pre, n_post, float(m), l_vec, alpha)
        rows.append({"term": f"sd_M_{m:g}", "estimate": result["estimate"],
                     "ci_low": result["lb"], "ci_high": result["ub"], "n_obs": freq_fit.n_obs,
                     "note": f"honest {level} fixed-length confidence interval of the average "
                             f"post effect when the slope of the trend difference changes by "
                             f"at most M = {m:g} per year (Rambachan & Roth 2023, smoothness; "
                             f"M = 0: a linear pre-trend extrapolated); estimate = the "
                             f"interval's centre, the affine estimator it is built on"})
    return pd.DataFrame(rows)


def published_path(study: str, table: str, column: str) -> pd.DataFrame:
    """The published Treat x year coefficients with estimate +/- 1.96 SE (empty if none)."""
    from data.errors import DataError
    from data.published import load_published

    try:
        published = load_published(study)
    except (DataError, ValueError):
        return pd.DataFrame(columns=["year", "estimate", "ci_low", "ci_high"])
    rows = published[(published["table"] == table) & (published["column"] == column)
                     & published["term"].str.startswith(TERM_PREFIX)
                     & (published["printed_kind"] == "se")]
    if rows.empty:
        return pd.DataFrame(columns=["year", "estimate", "ci_low", "ci_high"])
    return pd.DataFrame({
        "year": rows["term"].str.removeprefix(TERM_PREFIX).astype(int).to_numpy(),
        "estimate": rows["estimate"].to_numpy(float),
        "ci_low": (rows["estimate"] - 1.96 * rows["printed"]).to_numpy(float),
        "ci_high": (rows["estimate"] + 1.96 * rows["printed"]).to_numpy(float),
    })


def bayesian_path(fit) -> pd.DataFrame:
    """Posterior mean and 94% HDI of each Treat x year coefficient, by year."""
    tidy = fit.tidy(auxiliary=False)
    rows = tidy[tidy["term"].str.startswith(TERM_PREFIX)]
    return pd.DataFrame({"year": rows["term"].str.removeprefix(TERM_PREFIX).astype(int),
                         "estimate": rows["estimate"], "ci_low": rows["ci_low"],
                         "ci_high": rows["ci_high"]})

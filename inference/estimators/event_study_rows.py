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
    relative_magnitude_naive_ci,
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


def frequentist_rm_rows(freq_fit, mbars) -> pd.DataFrame:
    """``rm_Mbar_<m>`` rows of the frequentist event study: the identified set at the point
    estimates and the naive interval around it
    (:func:`models.event_study.summaries.relative_magnitude_naive_ci`)."""
    coefs = freq_fit.table[freq_fit.table["term"].str.startswith(TERM_PREFIX)]
    years = [int(t.removeprefix(TERM_PREFIX)) for t in coefs["term"]]
    reference = freq_fit.reference
    if freq_fit.cov is None or not any(y < reference for y in years):
        return pd.DataFrame()
    rows = []
    for mbar in mbars:
        lb, ub, low, high = relative_magnitude_naive_ci(
            coefs["estimate"].to_numpy(), freq_fit.cov, years, reference, float(mbar))
        rows.append({"term": f"rm_Mbar_{mbar:g}", "estimate": (lb + ub) / 2, "ci_low": low,
                     "ci_high": high, "n_obs": freq_fit.n_obs,
                     "note": f"identified set of the average post effect at the estimates "
                             f"[{lb:.4f}, {ub:.4f}] (relative magnitudes, Mbar = {mbar:g}); "
                             f"interval = set +/- 1.96 se of the post average (naive: "
                             f"ignores the sampling error of the pre-period maximum; not "
                             f"HonestDiD's C-LF set)"})
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

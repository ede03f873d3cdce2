"""The sensitivity run's tables and figures, from the batch's JSON results.

``prior_grid.csv``: one row per (specification, prior alternative) refit with the prior written
out, the key estimand's posterior mean, sd, 94% HDI and P(> 0), its shift from the default fit
in units of the default's posterior sd, the convergence verdict in words and one
``claim_<id>`` column per claim of the ledger that rests on the specification.
``power_scaling.csv``: the power-scaling sequence; ``power_scaling_diagnosis.csv``: its
verdict per quantity.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

GRID_COLUMNS = ["study", "spec", "kind", "role", "alternative", "prior", "term", "mean", "sd",
                "hdi_low", "hdi_high", "prob_positive", "shift_sd", "r_hat", "ess_bulk",
                "converged", "convergence"]


def convergence_words(problems: list[str]) -> str:
    """``converged``, or ``NOT converged: ...`` with the problems."""
    return "converged" if not problems else "NOT converged: " + "; ".join(problems)


def key_row(result: dict, term: str | None) -> dict | None:
    """The summary row of ``term`` in a task result (the first row when it has none)."""
    rows = result.get("rows") or []
    for row in rows:
        if row["term"] == term:
            return row
    return rows[0] if rows else None


def grid_row(study: str, spec: str, kind: str, role: str, alternative: str, prior: str,
             result: dict | None, term: str | None, default: dict | None,
             claim_ids: list[str], why: str = "") -> dict:
    """One row of ``prior_grid.csv``; ``result`` None (with ``why``) for an alternative that
    was not fitted."""
    row: dict = {"study": study, "spec": spec, "kind": kind, "role": role,
                 "alternative": alternative, "prior": prior}
    key = key_row(result, term) if result else None
    base = key_row(default, term) if default else None
    row["term"] = key["term"] if key else term
    row.update({"mean": key["estimate"] if key else np.nan,
                "sd": key["std_error"] if key else np.nan,
                "hdi_low": key["ci_low"] if key else np.nan,
                "hdi_high": key["ci_high"] if key else np.nan,
                "prob_positive": key["prob_positive"] if key else np.nan,
                "r_hat": key["r_hat"] if key else np.nan,
                "ess_bulk": key["ess_bulk"] if key else np.nan})
    if key and base and base["std_error"]:
        row["shift_sd"] = (key["estimate"] - base["estimate"]) / base["std_error"]
    else:
        row["shift_sd"] = np.nan
    if result is None:
        row["converged"], row["convergence"] = False, f"not fitted: {why}"
    else:
        row["converged"] = not result.get("problems")
        row["convergence"] = convergence_words(result.get("problems") or [])
    for claim in claim_ids:
        value = (result or {}).get("claims", {}).get(claim)
        row[f"claim_{claim}"] = np.nan if value is None else value
    return row


def grid_frame(rows: list[dict], data_label: str) -> pd.DataFrame:
    """``prior_grid.csv`` as a frame, its claim columns after the fixed ones."""
    frame = pd.DataFrame(rows)
    claims = sorted(c for c in frame.columns if c.startswith("claim_"))
    frame = frame.reindex(columns=[*GRID_COLUMNS, *claims])
    frame["data_label"] = data_label
    return frame


def sequence_frame(study: str, spec: str, result: dict, refits: list[tuple[float, dict]],
                   data_label: str) -> pd.DataFrame:
    """The power-scaling sequence of one specification, with the refits at the scaled prior
    (method ``refit at the scaled prior``) beside the importance-weighted rows."""
    sequence = pd.DataFrame(result.get("power_scaling", {}).get("sequence", []))
    if not len(sequence):
        return sequence
    sequence = sequence.assign(method="importance weighting")
    extra = []
    for alpha, refit in refits:
        for quantity in sequence["quantity"].unique():
            row = key_row(refit, quantity)
            if row is None or row["term"] != quantity:
                continue
            extra.append({"component": "prior", "alpha": alpha, "quantity": quantity,
                          "mean": row["estimate"], "sd": row["std_error"],
                          "pareto_k": np.nan, "k_threshold": np.nan, "reliable": True,
                          "method": "refit at the scaled prior",
                          "convergence": convergence_words(refit.get("problems") or [])})
    frame = pd.concat([sequence, pd.DataFrame(extra)], ignore_index=True)
    frame.insert(0, "spec", spec)
    frame.insert(0, "study", study)
    frame["data_label"] = data_label
    return frame


def diagnosis_frame(study: str, spec: str, result: dict, refit_note: str,
                    data_label: str) -> pd.DataFrame:
    """``power_scaling_diagnosis.csv`` rows of one specification."""
    power = result.get("power_scaling", {})
    frame = pd.DataFrame(power.get("diagnosis", []))
    if len(frame):
        from models.bayes.power_scaling import diagnosis_words

        # Worded here rather than on the worker, so stored fits keep up with the wording.
        frame["diagnosis"] = [diagnosis_words(r.prior_sensitivity, r.likelihood_sensitivity,
                                              r.max_pareto_k_prior, r.max_pareto_k_likelihood,
                                              r.k_threshold) for r in frame.itertuples()]
    else:
        frame = pd.DataFrame([{"quantity": "(all)", "diagnosis": "not computed: "
                               + power.get("error", "no log_prior / log_likelihood")}])
    frame.insert(0, "spec", spec)
    frame.insert(0, "study", study)
    frame["refit"] = refit_note
    frame["data_label"] = data_label
    return frame


def _label(row) -> str:
    return "default" if row.role == "default" else f"{row.role}: {row.alternative}"


def plot_grid(frame: pd.DataFrame, path: Path, suffix: str) -> Path | None:
    """The key estimand's mean and 94% HDI under every alternative (the default's HDI shaded)
    and, beside it, the claims' probabilities; unconverged refits drawn hollow, in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fitted = frame[frame["mean"].notna()].reset_index(drop=True)
    if not len(fitted):
        return None
    claims = [c for c in fitted.columns if c.startswith("claim_") and fitted[c].notna().any()]
    figure, axes = plt.subplots(1, 2 if claims else 1, figsize=(11 if claims else 7,
                                                              1.2 + 0.38 * len(fitted)),
                                squeeze=False, sharey=True)
    ax = axes[0][0]
    y = np.arange(len(fitted))[::-1]
    default = fitted[fitted["role"] == "default"]
    if len(default):
        ax.axvspan(default["hdi_low"].iloc[0], default["hdi_high"].iloc[0], color="#dde7f5")
        ax.axvline(default["mean"].iloc[0], color="#0b3d91", lw=0.8)
    ax.axvline(0, color="#888", lw=0.6, ls=":")
    for yi, row in zip(y, fitted.itertuples(), strict=True):
        colour = "#0b3d91" if row.converged else "#999"
        ax.errorbar(row.mean, yi, xerr=[[row.mean - row.hdi_low], [row.hdi_high - row.mean]],
                    fmt="o", color=colour, mfc=colour if row.converged else "white", capsize=2)
    ax.set_yticks(y, [_label(r) for r in fitted.itertuples()], fontsize=8)
    term = fitted["term"].iloc[0]
    ax.set_xlabel(f"{term}: posterior mean and 94% HDI (hollow, grey: not converged)")
    ax.set_title(f"{fitted['spec'].iloc[0]} {term} under each prior{suffix}", fontsize=9)
    if claims:
        ax2 = axes[0][1]
        height = 0.8 / len(claims)
        for j, claim in enumerate(claims):
            ax2.barh(y + (j - (len(claims) - 1) / 2) * height, fitted[claim], height=height,
                     label=claim.removeprefix("claim_"))
        for line in (0.05, 0.95):
            ax2.axvline(line, color="#888", lw=0.6, ls=":")
        ax2.set_xlim(0, 1)
        ax2.set_xlabel("claim probability")
        ax2.legend(fontsize=7, loc="lower left")
        ax2.set_title(f"claims{suffix}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_sequence(frame: pd.DataFrame, path: Path, suffix: str, max_quantities: int = 4
                  ) -> Path | None:
    """Posterior mean and sd of each quantity against alpha as the prior and the likelihood
    are power-scaled (priorsense's ``powerscale_plot_quantities``); a hollow marker where the
    Pareto k says the weighting cannot be trusted, a cross for a refit at the scaled prior."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not len(frame):
        return None
    quantities = list(dict.fromkeys(frame["quantity"]))[:max_quantities]
    figure, axes = plt.subplots(2, len(quantities), figsize=(3.2 * len(quantities) + 0.6, 5),
                                squeeze=False)
    colours = {"prior": "#c0392b", "likelihood": "#2471a3"}
    for j, quantity in enumerate(quantities):
        rows = frame[frame["quantity"] == quantity]
        for i, statistic in enumerate(("mean", "sd")):
            ax = axes[i][j]
            for component, colour in colours.items():
                part = rows[(rows["component"] == component)
                            & (rows["method"] == "importance weighting")].sort_values("alpha")
                ax.plot(part["alpha"], part[statistic], color=colour, lw=1, label=component)
                good = part[part["reliable"].astype(bool)]
                bad = part[~part["reliable"].astype(bool)]
                ax.scatter(good["alpha"], good[statistic], color=colour, s=14)
                ax.scatter(bad["alpha"], bad[statistic], facecolors="white", edgecolors=colour,
                           s=26, label=f"{component}: Pareto k too high" if len(bad) else None)
            refits = rows[rows["method"] == "refit at the scaled prior"]
            if len(refits):
                ax.scatter(refits["alpha"], refits[statistic], marker="x", color="k", s=30,
                           label="refit at the scaled prior")
            ax.set_xscale("log")
            ticks = [0.8, 0.9, 1.0, 1.1, 1.25]
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
            ax.axvline(1.0, color="#888", lw=0.6, ls=":")
            ax.set_title(f"{quantity}: {statistic}", fontsize=9)
            if i == 1:
                ax.set_xlabel("power-scaling alpha")
    axes[0][0].legend(fontsize=7)
    figure.suptitle(f"{frame['spec'].iloc[0]}: power-scaling sequence{suffix}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path

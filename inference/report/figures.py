"""Figures drawn for the page and embedded in it as base64 PNG (the page is one file).

Every figure drawn on a synthetic run says so in its title.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

from inference.report.draws import posterior_variable
from inference.report.tables import is_missing

# Replicated data sets drawn per posterior predictive panel. 20 show the spread (brms's
# pp_check draws 10); 50 made the report's predictive panels a fifth of a warm run, each
# line paying ArviZ's KDE bandwidth search.
PPC_REPLICATES = 20


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_data_uri(fig) -> str:
    """The figure as a ``data:image/png;base64,...`` URI; the figure is closed."""
    plt = _pyplot()
    buffer = io.BytesIO()
    # zlib's fastest level: 40% less time per figure than the default (6) for 9% more bytes
    fig.savefig(buffer, format="png", dpi=80, pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def file_data_uri(path: Path) -> str:
    """A PNG file as a data URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def img(uri: str, alt: str) -> str:
    """An ``<img>`` element for a data URI."""
    return f"<figure><img src='{uri}' alt='{html.escape(alt)}'>" \
           f"<figcaption>{html.escape(alt)}</figcaption></figure>"


def specification_curve(results: pd.DataFrame, term: str, suffix: str) -> str | None:
    """The key coefficient across every specification that has it: published points,
    frequentist 95% CIs and Bayesian 94% HDIs, one line per (table, column)."""
    rows = results[results["term"].astype(str) == term]
    cells = list(dict.fromkeys(zip(rows["table"].astype(str), rows["column"].astype(str))))
    if not cells:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(cells) + 1.4))
    styles = {"published": ("D", "C3", 0.25), "frequentist": ("s", "C1", 0.0),
              "bayesian": ("o", "C0", -0.25)}
    seen = set()
    for i, (table, column) in enumerate(cells):
        here = rows[(rows["table"].astype(str) == table) & (rows["column"].astype(str) == column)]
        for source, (marker, colour, offset) in styles.items():
            row = here[here["source"] == source]
            if not len(row) or is_missing(row.iloc[0]["estimate"]):
                continue
            row = row.iloc[0]
            low, high = row.get("ci_low"), row.get("ci_high")
            if source == "frequentist" and not is_missing(row.get("std_error")):
                low = row["estimate"] - 1.96 * row["std_error"]
                high = row["estimate"] + 1.96 * row["std_error"]
            label = {"published": "published", "frequentist": "frequentist 95% CI",
                     "bayesian": "Bayesian 94% HDI"}[source] if source not in seen else None
            seen.add(source)
            faded = source == "bayesian" and not is_missing(row.get("note"))
            if not is_missing(low) and not is_missing(high):
                ax.plot([low, high], [i + offset] * 2, color=colour, lw=2,
                        alpha=0.35 if faded else 1.0)
            ax.plot(row["estimate"], i + offset, marker, color=colour, label=label,
                    mfc="white" if faded else colour)
    ax.set_yticks(range(len(cells)), [f"T{t} ({c})" for t, c in cells], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel(f"coefficient of {term}")
    ax.set_title(f"{term} across every specification{suffix}\n(hollow: Bayesian fit "
                 "not converged)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.subplots_adjust(left=0.18, right=0.98)
    return figure_data_uri(fig)


def forest(bundle, term: str, suffix: str) -> str | None:
    """``az.plot_forest`` of ``term`` over every saved posterior that has it."""
    import arviz as az

    datasets, names = [], []
    for (table, column, name) in bundle.posterior_files:
        if name:
            continue
        idata = bundle.posterior(table, column, name)
        found = posterior_variable(idata, term)
        if found is None or not found[1]:
            continue
        var, coords = found
        dim, labels = next(iter(coords.items()))
        datasets.append(idata.posterior[[var]].sel({dim: labels[0]}).rename({var: term}))
        names.append(f"T{table} ({column})")
    if not datasets:
        return None
    plt = _pyplot()
    axes = az.plot_forest(datasets, model_names=names, var_names=[term], combined=True,
                          hdi_prob=0.94, figsize=(7, 0.3 * len(datasets) + 1.5))
    axes[0].set_title(f"posterior of {term}, 94% HDI (ArviZ forest){suffix}", fontsize=9)
    axes[0].axvline(0, color="grey", lw=0.8)
    return figure_data_uri(plt.gcf())


def group_forest(draws: dict[str, np.ndarray], title: str) -> str | None:
    """``az.plot_forest`` of the group slopes of one pooled model."""
    import arviz as az

    if not draws:
        return None
    plt = _pyplot()
    dataset = az.convert_to_dataset({k: v[None, :] for k, v in draws.items()})
    axes = az.plot_forest(dataset, combined=True, hdi_prob=0.94,
                          figsize=(6, 0.45 * len(draws) + 1.2))
    axes[0].set_title(title, fontsize=9)
    return figure_data_uri(plt.gcf())


def rank_plot(idata, var: str, coords: dict, title: str) -> str | None:
    """``az.plot_rank`` of one variable: flat histograms mean well-mixed chains."""
    import arviz as az

    plt = _pyplot()
    try:
        axes = az.plot_rank(idata, var_names=[var], coords=coords, figsize=(6, 2.2))
    except (KeyError, ValueError, TypeError):
        plt.close("all")
        return None
    np.ravel(axes)[0].figure.suptitle(title, fontsize=8)
    return figure_data_uri(np.ravel(axes)[0].figure)


def rank_grid(entries: list[tuple], title: str) -> str | None:
    """One figure of ``az.plot_rank`` panels, one per (idata, var, coords, label): drawn into a
    shared grid because saving a figure per fit would cost most of a rebuild."""
    import arviz as az

    if not entries:
        return None
    plt = _pyplot()
    ncols = 3
    nrows = -(-len(entries) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(11, 1.9 * nrows), squeeze=False)
    for ax, (idata, var, coords, label) in zip(axes.ravel(), entries):
        try:
            # Vertical lines of each chain's deviation from uniform ranks: the same reading
            # as the bars at a third of the drawing time for a grid of every fit.
            az.plot_rank(idata, var_names=[var], coords=coords, ax=ax, kind="vlines")
        except (KeyError, ValueError, TypeError):
            ax.text(0.5, 0.5, "rank plot unavailable", ha="center", transform=ax.transAxes)
        ax.set_title(f"{label}: {var} {list(coords.values())[0] if coords else ''}",
                     fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_xlabel("")
    for ax in axes.ravel()[len(entries):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    # Fixed spacing: tight_layout measures every tick label and would dominate the rebuild.
    fig.subplots_adjust(left=0.04, right=0.99, top=1 - 0.5 / (1.9 * nrows + 0.5),
                        bottom=0.25 / nrows, hspace=0.55, wspace=0.15)
    return figure_data_uri(fig)


def trace_plot(idata, var: str, coords: dict, title: str) -> str | None:
    """``az.plot_trace`` of one variable of a flagged fit."""
    import arviz as az

    plt = _pyplot()
    try:
        axes = az.plot_trace(idata, var_names=[var], coords=coords, figsize=(7, 2.2))
    except (KeyError, ValueError, TypeError):
        plt.close("all")
        return None
    np.ravel(axes)[0].figure.suptitle(title, fontsize=8)
    return figure_data_uri(np.ravel(axes)[0].figure)


def _replicate_lines(ax, replicates: np.ndarray, observed: np.ndarray, counts: bool) -> None:
    """Density (KDE, Silverman's bandwidth: ``arviz.kde``) or, for counts, empirical CDF lines
    of each replicated data set (rows of ``replicates``), of the data and of their mean."""
    import arviz as az
    from matplotlib.collections import LineCollection

    if counts:
        grid = np.unique(np.concatenate([replicates.ravel(), observed]))

        def shares(values):  # the share of values at most each grid point
            return np.searchsorted(np.sort(values), grid, side="right") / values.size

        curves = np.array([shares(values) for values in replicates])
        # Steps: each share holds from its value to the next.
        segments = [np.column_stack([np.repeat(grid, 2)[1:], np.repeat(c, 2)[:-1]])
                    for c in curves]
        lines = [(grid, shares(observed)), (grid, curves.mean(axis=0))]
        style = {"drawstyle": "steps-post"}
    else:
        # Each line on its own support, as ArviZ draws them; the mean on a common grid.
        kdes = [az.kde(values, bw="silverman") for values in replicates]
        segments = [np.column_stack(kde) for kde in kdes]
        grid = np.linspace(min(x.min() for x, _ in kdes), max(x.max() for x, _ in kdes), 256)
        mean = np.mean([np.interp(grid, x, d, left=0.0, right=0.0) for x, d in kdes], axis=0)
        lines = [az.kde(observed, bw="silverman"), (grid, mean)]
        style = {}
    ax.add_collection(LineCollection(segments, colors="C0", alpha=0.25, linewidths=0.5,
                                     label="Posterior predictive"))
    ax.plot(*lines[0], color="k", linewidth=1.2, zorder=3, label="Observed", **style)
    ax.plot(*lines[1], color="C1", linestyle="--", linewidth=1.2, zorder=2,
            label="Posterior predictive mean", **style)
    ax.autoscale_view()


def ppc_plot(idata, title: str) -> str | None:
    """Posterior predictive check where the fit saved posterior predictive draws (None
    otherwise): :data:`PPC_REPLICATES` replicated data sets against the data, one panel per
    replicated variable (an IV fit has two, mediation one per equation), as ArviZ's
    ``plot_ppc`` draws them (densities; cumulative shares for counts, whose share of zeros
    is then the height at 0) with the replicates as one line collection."""
    if "posterior_predictive" not in idata.groups() or "observed_data" not in idata.groups():
        return None
    names = [n for n in idata.posterior_predictive.data_vars if n in idata.observed_data]
    if not names:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(names), squeeze=False,
                             figsize=(6, 2.5) if len(names) == 1 else (10, 2.8))
    rng = np.random.default_rng(0)
    for axis, name in zip(axes.ravel(), names, strict=True):
        values = idata.posterior_predictive[name]
        flat = np.asarray(values.values).reshape(values.sizes["chain"] * values.sizes["draw"],
                                                 -1)
        observed = np.asarray(idata.observed_data[name].values, dtype=float).ravel()
        picks = rng.choice(flat.shape[0], size=min(PPC_REPLICATES, flat.shape[0]),
                           replace=False)
        counts = values.dtype.kind == "i"
        try:
            if observed.size < 2 or not np.all(np.isfinite(flat[picks])):
                raise ValueError("too few or non-finite values to draw")
            _replicate_lines(axis, flat[picks].astype(float), observed, counts)
        except (ValueError, FloatingPointError):
            plt.close(fig)
            return None
        axis.set_title(str(name), fontsize=8)
        axis.legend(fontsize=6)
        if not counts:
            axis.set_yticks([])  # density heights mean nothing to a reader; shares do
        # Counts with a long tail: a log scale past 1 keeps the zeros and the tail in view.
        if counts and float(values.max()) > 50:
            axis.set_xscale("symlog", linthresh=1.0)
            axis.set_xlim(left=-0.5)
    fig.suptitle(title, fontsize=8)
    fig.subplots_adjust(top=0.8, bottom=0.12)
    return figure_data_uri(fig)


_PPC_WORDS = {"mean": "mean", "sd": "sd", "skewness": "skewness", "kurtosis": "kurtosis",
              "share_zero": "share of zeros", "variance/mean": "variance/mean"}


def ppc_summary(idata) -> str:
    """The posterior predictive p-values of a fit in words: per replicated variable, the
    share of replicates whose statistic is at least the data's, and which are extreme."""
    from models.bayes.predictive import EXTREME_P, ppc_table

    table = ppc_table(idata)
    if not len(table):
        return ""
    parts, flagged = [], []
    for variable, rows in table.groupby("variable", sort=False):
        values = ", ".join(f"{_PPC_WORDS.get(r.statistic, r.statistic)} {r.p_value:.2f}"
                           for r in rows.itertuples())
        parts.append(f"<b>{html.escape(str(variable))}</b>: {html.escape(values)}")
        for r in rows[rows["extreme"]].itertuples():
            side = "above" if r.p_value < 0.5 else "below"
            flagged.append(f"the {_PPC_WORDS.get(r.statistic, r.statistic)} of "
                           f"{html.escape(str(variable))} ({r.observed:.3g}) lies {side} that "
                           f"of {max(r.p_value, 1 - r.p_value):.0%} of the replicates "
                           f"(their mean {r.replicated_mean:.3g})")
    n = int(table["n_replicates"].iloc[0])
    text = (f"<p class='ppc'>Share of the {n} replicates whose statistic is at least the "
            f"data's (posterior predictive p-value; near 0 or 1, beyond {EXTREME_P:g}, the "
            f"model does not reproduce it): {'; '.join(parts)}.")
    if flagged:
        text += " Not reproduced: " + "; ".join(flagged) + "."
    else:
        text += " Every statistic is within the replicates' range."
    sd_high = table[(table["statistic"] == "sd") & (table["p_value"] > 1 - EXTREME_P)]
    if len(sd_high) and "unit_sd" not in idata.posterior:
        text += (" This model's unit and year effects have a flat prior: their posterior "
                 "spread adds about 2 r sigma^2 / n to the replicates' variance (r effects, "
                 "n observations), so an sd above the data's is expected when the errors are "
                 "large beside the effects.")
    return text + "</p>"


def overlay(draws_a: np.ndarray, draws_b: np.ndarray, labels: tuple[str, str],
            title: str) -> str:
    """Two posteriors of one quantity overlaid (``az.plot_dist``)."""
    import arviz as az

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 2.4))
    az.plot_dist(draws_a, ax=ax, color="C0", label=labels[0])
    az.plot_dist(draws_b, ax=ax, color="C3", label=labels[1])
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    return figure_data_uri(fig)

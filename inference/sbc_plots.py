"""The figures of a simulation-based calibration: rank histograms and ECDF differences, one
panel per parameter, each with the band a uniform rank distribution stays inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from models.bayes.provenance import write_atomically
from models.bayes.uniformity import BAND_ALPHA, ecdf_test, histogram_bins, rank_counts


def _grid(n_panels: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, n_panels)
    rows = int(np.ceil(n_panels / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return plt, fig, axes.flat


def _ranked(ranks: pd.DataFrame, name: str) -> tuple[np.ndarray, int]:
    part = ranks[(ranks["parameter"] == name) & ranks["converged"]]
    n_draws = int(ranks.loc[ranks["parameter"] == name, "ranked_draws"].iloc[0])
    return part["rank"].to_numpy(dtype=int), n_draws


def _legend_above(fig, ax) -> None:
    """The legend of ``ax``'s labelled artists in the figure's top margin, beside the title:
    inside a panel it would cover bars or the ECDF wherever it went."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, fontsize=8, loc="upper right", frameon=False)


def _save(plt, fig, path: Path) -> Path:
    # The top margin holds the title and the legend; tight_layout alone would let the panels
    # run up into them.
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.35 / fig.get_figheight()))
    written = write_atomically(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)
    return written


def plot_rank_histograms(ranks: pd.DataFrame, parameters: tuple[str, ...], family: str,
                         path: Path) -> Path:
    """Histogram of each parameter's ranks with the central 99% range of a bin's count under
    uniformity (Binomial(N, 1 / bins)), written to ``path``."""
    plt, fig, axes = _grid(len(parameters))
    for ax, name in zip(axes, parameters, strict=False):
        values, n_draws = _ranked(ranks, name)
        bins = max(histogram_bins(values.size, n_draws), 2)
        counts = rank_counts(values, n_draws, bins) if values.size else np.zeros(bins)
        edges = np.linspace(0, n_draws + 1, bins + 1)
        low, high = stats.binom.interval(0.99, max(values.size, 1), 1.0 / bins)
        ax.axhspan(low, high, color="0.85", label="99% range if uniform")
        ax.axhline(values.size / bins, color="0.5", lw=0.8)
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="C0",
               edgecolor="white")
        ax.set_title(f"{name} ({values.size} ranked)", fontsize=10)
        ax.set_xlabel(f"rank of the truth among {n_draws} draws")
    _legend_above(fig, axes[0])
    fig.suptitle(f"SBC rank histograms, {family}: SIMULATED data", fontsize=11)
    return _save(plt, fig, path)


def plot_ecdf_differences(ranks: pd.DataFrame, parameters: tuple[str, ...], family: str,
                          path: Path) -> Path:
    """ECDF of each parameter's scaled ranks minus the uniform CDF, with the simultaneous
    95% band of :func:`models.bayes.uniformity.ecdf_test`, written to ``path``."""
    plt, fig, axes = _grid(len(parameters))
    for ax, name in zip(axes, parameters, strict=False):
        values, n_draws = _ranked(ranks, name)
        result = ecdf_test(values, n_draws)
        if values.size:
            ax.fill_between(result.z, result.lower, result.upper, step="post", color="0.85",
                            label=f"simultaneous {1 - BAND_ALPHA:.0%} band")
            ax.step(result.z, result.difference, where="post", color="C0")
        ax.axhline(0.0, color="0.5", lw=0.8)
        ax.set_title(f"{name} (ECDF p = {result.p:.3f})", fontsize=10)
        ax.set_xlabel("scaled rank z")
        ax.set_ylabel("ECDF(z) - z")
    _legend_above(fig, axes[0])
    fig.suptitle(f"SBC ECDF differences, {family}: SIMULATED data", fontsize=11)
    return _save(plt, fig, path)

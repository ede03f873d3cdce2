"""One event-study figure per outcome: published, frequentist and Bayesian paths together."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

STYLES = {
    "published": {"color": "C2", "marker": "D"},
    "frequentist": {"color": "C0", "marker": "o"},
    "Bayesian normal": {"color": "C3", "marker": "s"},
    "Bayesian negbin": {"color": "C1", "marker": "^"},
}


def plot_event_paths(paths: dict[str, pd.DataFrame], reference: int, path: str | Path,
                     title: str, ylabel: str) -> Path:
    """Coefficient paths by year, each with its interval, side by side (offset in x so the
    intervals do not hide each other); the reference year is marked at zero.

    ``paths`` maps a label (``published``, ``frequentist``, ``Bayesian`` or another) to a
    frame with ``year``, ``estimate``, ``ci_low``, ``ci_high``; the label should say which
    interval it is (95% CI, 94% HDI).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.axvline(reference + 0.5, color="grey", lw=0.8, ls=":")
    width = 0.22
    years: set[int] = {reference}
    for i, (label, frame) in enumerate(paths.items()):
        offset = (i - (len(paths) - 1) / 2) * width
        style = next((v for k, v in STYLES.items() if label.startswith(k)),
                     {"color": f"C{i + 4}", "marker": "v"})
        frame = frame[frame["year"] != reference]
        years.update(int(y) for y in frame["year"])
        ax.errorbar(frame["year"] + offset, frame["estimate"],
                    yerr=[frame["estimate"] - frame["ci_low"],
                          frame["ci_high"] - frame["estimate"]],
                    fmt=style["marker"], color=style["color"], capsize=2, ms=4, label=label)
    ax.plot([reference], [0.0], marker="x", color="black", ls="none",
            label=f"{reference} (reference) = 0")
    ax.set_xticks(sorted(years))
    ax.set_xlabel("year")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

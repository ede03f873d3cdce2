"""Small finished runs for the report tests, built without fitting anything.

A fixture run holds what a real run leaves in its folder: ``results.csv`` in the results
contract (the published rows, frequentist rows near them and Bayesian rows with R-hat and ESS),
posteriors saved with the project's own save path and provenance attributes, an estimator
figure and ``run.json``. Every claim of the study gets a posterior, so the ledger is evaluated.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from inference.claims import load_claims
from inference.results import assemble, write_results
from inference.runner import _published_rows
from models.bayes.provenance import package_versions, provenance_attributes
from models.bayes.storage import write_posterior

SYNTHETIC_LABEL = "SYNTHETIC (calibrated to the published tables; not evidence about China)"
UNCONVERGED_NOTE = ("r_hat of AI is 1.050 (above 1.01): the chains disagree, so the posterior "
                    "is not yet explored; run more tuning and draws.")
DRAWS = 200


def _bayes_row(study, table, column, term, mean, sd, note="") -> dict:
    prob = 0.5 * math.erfc(-mean / (sd * math.sqrt(2)))
    return {"study": study, "table": table, "column": column, "term": term,
            "source": "bayesian", "estimate": mean, "std_error": sd,
            "ci_low": mean - 1.88 * sd, "ci_high": mean + 1.88 * sd, "prob_positive": prob,
            "r_hat": 1.05 if note else 1.002, "ess_bulk": 300.0 if note else 900.0,
            "note": note}


def _save_posterior(folder: Path, table: str, column: str, rows: list[dict], seed: int) -> None:
    import arviz as az

    rng = np.random.default_rng(seed)
    terms = [r["term"] for r in rows]
    draws = np.stack([rng.normal(r["estimate"], r["std_error"], (2, DRAWS)) for r in rows], -1)
    idata = az.from_dict(posterior={"slope": draws, "sigma": np.abs(rng.normal(1, 0.01,
                                                                              (2, DRAWS)))},
                         sample_stats={"diverging": np.zeros((2, DRAWS), dtype=bool)},
                         coords={"coef": terms}, dims={"slope": ["coef"]})
    attrs = provenance_attributes(
        "fixture_twfe", {"sampler": "fixture", "draws": DRAWS, "tune": 0, "chains": 2,
                         "target_accept": 0.8},
        {"slope": {"prior": "normal(0, 10)", "source": "default"}}, "0" * 64, seed,
        package_versions(), {"compile_s": 0.0, "sampling_s": 0.0, "total_s": 0.0})
    write_posterior(idata, folder / f"posterior_table{table}_col{column}.nc", attrs)


def _figure(folder: Path, name: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [3, 1, 2])
    ax.set_title("LR curve (SYNTHETIC data)")
    fig.savefig(folder / name, dpi=60)
    plt.close(fig)
    return name


def fixture_run(study: str, folder: Path, *, synthetic: bool | None = None, shift: float = 0.0,
                unconverged: tuple[str, str] | None = ("2", "1"), seed: int = 1,
                label: str | None = None) -> Path:
    """Write a finished-looking run of ``study`` into ``folder``; ``shift`` moves every
    Bayesian mean by that many posterior sd (for comparisons); the ``unconverged`` cell's
    Bayesian rows carry a convergence failure. ``synthetic`` defaults to the study's own kind
    (hansen1999 is real data)."""
    folder.mkdir(parents=True, exist_ok=True)
    from inference.datasets import REAL_LABELS

    if synthetic is None:
        synthetic = study not in REAL_LABELS
    if synthetic:
        label = SYNTHETIC_LABEL
    else:
        label = label or REAL_LABELS.get(study, "user data: my_panel.csv")
    published = _published_rows(study)
    frequentist = published.copy()
    frequentist["source"] = "frequentist"
    frequentist["estimate"] = frequentist["estimate"] * 1.03
    bayes_rows: dict[tuple[str, str], list[dict]] = {}
    coefficients = published.dropna(subset=["std_error"])
    coefficients = coefficients[coefficients["std_error"] > 0]
    for r in coefficients.itertuples():
        note = UNCONVERGED_NOTE if unconverged == (str(r.table), str(r.column)) else ""
        mean = 0.98 * r.estimate + shift * r.std_error
        bayes_rows.setdefault((str(r.table), str(r.column)), []).append(
            _bayes_row(study, str(r.table), str(r.column), str(r.term), mean, r.std_error, note))
    for claim in load_claims(study):
        for ref in claim.draws.values():
            table, column, term = ref.split("/", 2)
            cell = bayes_rows.setdefault((table, column), [])
            if all(row["term"] != term for row in cell):
                mean = 0.2 + 0.01 * len(cell) + shift * 0.05
                cell.append(_bayes_row(study, table, column, term, mean, 0.05))
    for index, ((table, column), rows) in enumerate(bayes_rows.items()):
        _save_posterior(folder, table, column, rows, seed + index)
    bayesian = pd.DataFrame([row for rows in bayes_rows.values() for row in rows],
                            columns=list(published.columns))
    results = assemble([published, frequentist, bayesian], label)
    results["study"] = study
    write_results(results, folder)
    figure = _figure(folder, "lr_curve_table5_col1.png")
    meta = {"study": study, "title": f"{study} (fixture run)", "data_label": label,
            "synthetic": synthetic, "data_path": "data/files/panel.csv",
            "data_sha256": "f" * 64, "n_rows": 100, "seed": seed, "quick": True,
            "frequentist_only": False, "sampling": {"draws": DRAWS, "tune": 0, "chains": 2},
            "priors": [], "skipped": [f"{study} table X column 9: columns ['Q'] not in the data"],
            "figures": [figure], "timings": {"total_s": 1.0}}
    (folder / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder

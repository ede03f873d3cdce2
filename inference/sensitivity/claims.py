"""``claims.csv`` of a sensitivity run: every claim of the study's ledger, with its probability
under the default prior and its range across the grid, or in words why the run gives it none
(its specification was not refitted, its draws come from several specifications, the refit
has no draws of it). No claim of the ledger is left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CLAIMS_COLUMNS = ["claim_id", "claim", "rests_on", "specs", "default_probability",
                  "min_probability", "max_probability", "alternatives", "status", "data_label"]


def spec_columns(spec) -> set[str]:
    """The columns of its table that ``spec``'s rows go to: its own, and those its options
    route rows to (mediation's ``mediator_columns`` and ``joint_column``, a threshold
    model's ``se_columns``)."""
    options = spec.options
    columns = {str(spec.column)}
    for pair in (options.get("mediator_columns") or {}).values():
        columns.update(str(c) for c in pair)
    if options.get("joint_column"):
        columns.add(str(options["joint_column"]))
    columns.update(str(c) for c in (options.get("se_columns") or {}))
    return columns


def owners(study, ref: str) -> list:
    """The specifications of ``study`` whose rows hold ``ref`` (``table/column/term``)."""
    table, column, _ = ref.split("/", 2)
    return [s for s in study.specs if str(s.table) == table and column in spec_columns(s)]


def _ref(spec) -> str:
    return f"{spec.table}/{spec.column}"


def _why_not(study, claim, chosen: set[str], fitted: set[str]) -> tuple[str, list[str]]:
    """Why a claim has no probability in this run, and the specifications it rests on."""
    from inference.estimators import BAYESIAN

    found = {ref: owners(study, ref) for ref in claim.draws.values()}
    specs = list(dict.fromkeys(_ref(s) for hits in found.values() for s in hits))
    orphans = [ref for ref, hits in found.items() if not hits]
    if orphans:
        return (f"not assessed: no specification of {study.name} has the rows "
                f"{', '.join(orphans)}", specs)
    bayesian = {_ref(s) for hits in found.values() for s in hits
                if s.bayes and s.kind in BAYESIAN}
    frequentist = [s for s in specs if s not in bayesian]
    if frequentist and not bayesian:
        return (f"not assessed: {', '.join(frequentist)} has no Bayesian counterpart", specs)
    if len(specs) > 1:
        return (f"not assessed here: its draws come from {len(specs)} specifications "
                f"({', '.join(specs)}), and a grid refit changes one at a time; the study's "
                "report gives its probability under the default priors", specs)
    missing = [s for s in specs if s not in chosen]
    if missing:
        asked = " ".join(f"--spec {s}" for s in missing)
        return (f"not assessed: rests on {', '.join(missing)}, which this run did not refit "
                f"(add {asked})", specs)
    if not set(specs) & fitted:
        return f"not assessed: the default fit of {', '.join(specs)} failed", specs
    return (f"not assessed: the fit of {', '.join(specs)} has no posterior draws of "
            f"{', '.join(claim.draws.values())}", specs)


def claims_frame(study, specs, grid: pd.DataFrame, data_label: str) -> pd.DataFrame:
    """One row per claim of the ledger (:data:`CLAIMS_COLUMNS`): the probability under the
    default prior, the smallest and largest over the fitted alternatives (refits that did
    not converge included, as in ``prior_grid.csv``, where each says so), or why none."""
    from inference.claims import load_claims

    chosen = {_ref(s) for s in specs}
    fitted = set(grid.loc[(grid["role"] == "default") & grid["mean"].notna(), "spec"])
    rows = []
    for claim in load_claims(study.name):
        column = f"claim_{claim.id}"
        values = grid[["spec", "role", column]].dropna() if column in grid else pd.DataFrame()
        row = {"claim_id": claim.id, "claim": claim.text,
               "rests_on": ", ".join(claim.draws.values()), "default_probability": np.nan,
               "min_probability": np.nan, "max_probability": np.nan, "alternatives": 0,
               "data_label": data_label}
        if len(values):
            spec = str(values["spec"].iloc[0])
            default = values.loc[values["role"] == "default", column]
            others = values.loc[values["role"] != "default", column]
            row.update(specs=spec, default_probability=(float(default.iloc[0]) if len(default)
                                                        else np.nan),
                       min_probability=float(values[column].min()),
                       max_probability=float(values[column].max()), alternatives=len(others))
            row["status"] = (f"assessed on {spec}: {row['default_probability']:.2f} under the "
                             f"default prior, {row['min_probability']:.2f} to "
                             f"{row['max_probability']:.2f} over it and the {len(others)} "
                             "fitted alternatives")
        else:
            row["status"], rests = _why_not(study, claim, chosen, fitted)
            row["specs"] = ", ".join(rests)
        rows.append(row)
    return pd.DataFrame(rows, columns=CLAIMS_COLUMNS)

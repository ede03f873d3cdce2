"""The results contract: one row per (table, column, term, source).

``reports/<study>/results.csv`` has the columns of :data:`RESULT_COLUMNS` in that order, then
``data_label`` (``SYNTHETIC ...``, ``real: ...`` or ``user data: ...``), so that every number
carries the kind of data it was computed from, and ``note`` (why a number is missing or flagged).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data.published import RESULTS_COLUMNS
from models.bayes.provenance import write_atomically

RESULT_COLUMNS = list(RESULTS_COLUMNS)
EXTRA_COLUMNS = ["data_label", "note"]
SOURCES = ("published", "frequentist", "bayesian")


def result_rows(
    tidy: pd.DataFrame, *, study: str, table: str, column: str, source: str, note: str = ""
) -> pd.DataFrame:
    """Stamp a tidy estimator table with its cell coordinates and source."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not '{source}'")
    rows = tidy.copy()
    # An estimator may route rows to other tables of the paper (Hansen's tests and thresholds).
    rows["table"] = rows["table"].astype(str) if "table" in rows else table
    rows["column"] = rows["column"].astype(str) if "column" in rows else column
    rows["study"], rows["source"] = study, source
    for name in RESULT_COLUMNS + ["note"]:
        if name not in rows:
            rows[name] = np.nan if name != "note" else note
    return rows[RESULT_COLUMNS + ["note"]]


def assemble(parts: list[pd.DataFrame], data_label: str) -> pd.DataFrame:
    """Concatenate result parts into the contract's column order, sorted for reading."""
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True)
    frame["data_label"] = np.where(frame["source"] == "published", "published", data_label)
    frame["note"] = frame["note"].fillna("")
    order = {s: i for i, s in enumerate(SOURCES)}
    frame["_source_order"] = frame["source"].map(order)
    frame["_row"] = np.arange(len(frame))
    frame = frame.sort_values(["table", "column", "_row"], kind="stable")
    return frame[RESULT_COLUMNS + EXTRA_COLUMNS].reset_index(drop=True)


def write_results(frame: pd.DataFrame, out_dir: Path) -> Path:
    """Write ``results.csv`` into ``out_dir`` (created if needed), whole or not at all."""
    return write_atomically(Path(out_dir) / "results.csv",
                            lambda target: frame.to_csv(target, index=False,
                                                        float_format="%.12g"))

"""Which data a run uses: the embedded default of a study or the user's own file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from data.contracts import load_contract, validate_panel
from data.loaders import read_table
from data.synthetic import FILES_DIR, SYNTHETIC_STUDIES

REAL_LABELS = {
    "hansen1999": "real: Hansen (1999) investment panel, 565 US firms 1974-1987 (Hall & Hall)",
}
SYNTHETIC_LABEL = "SYNTHETIC (calibrated to the published tables; not evidence about China)"


@dataclass(frozen=True)
class Dataset:
    """A validated panel and the words that say what it is."""

    frame: pd.DataFrame
    label: str
    path: Path
    synthetic: bool

    @property
    def banner(self) -> str:
        if self.synthetic:
            return ("These results are computed on a SYNTHETIC panel calibrated to the published "
                    "tables. It shows the workflow and checks the models against a known truth; "
                    "it is not evidence about China.")
        return f"Data: {self.label}."


def default_data_path(study: str) -> Path:
    """The embedded default panel of ``study``."""
    if study in SYNTHETIC_STUDIES:
        return FILES_DIR / study / "panel.csv"
    raise KeyError(f"study '{study}' has no embedded default panel")


def load_dataset(study: str, path: str | Path | None, needed: list[str],
                 encoding: str | None = None) -> Dataset:
    """Read and validate the panel of ``study``: the user's file, or the embedded default.

    ``needed`` are the columns the chosen specifications read; the contract's required columns
    are always checked, optional ones when present in the file. The user's file is only read.
    """
    contract = load_contract(study)
    if path is None and study in REAL_LABELS:
        from data.hansen1999 import INVEST_FILE, load_invest_panel

        source, synthetic, label = Path(INVEST_FILE), False, REAL_LABELS[study]
        raw = load_invest_panel()
    elif path is None:
        source = default_data_path(study)
        synthetic, label = True, SYNTHETIC_LABEL
        raw = read_table(source)
    else:
        source = Path(path)
        synthetic, label = False, f"user data: {source.name}"
        raw = read_table(source, encoding)
    required = [c.name for c in contract.columns if c.required]
    optional_present = [c.name for c in contract.columns if not c.required and c.name in raw]
    columns = list(dict.fromkeys(required + optional_present))
    frame = validate_panel(raw, contract, source=str(source), needed=columns)
    frame.attrs["synthetic"] = synthetic
    return Dataset(frame=frame, label=label, path=source, synthetic=synthetic)

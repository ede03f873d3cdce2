"""Calibrated synthetic panels: one deterministic generator per study.

Each module ``data/synthetic/<study>.py`` exposes ``generate(seed) -> (panel, truth)``. The
shipped files in ``data/files/<study>/`` are what ``generate`` returns for the default seed;
``python -m data.synthetic [STUDY ...]`` writes them again. Every panel made here is synthetic:
it shows the workflow and lets each model be checked against a known truth; it is not
evidence about China.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pandas as pd

SYNTHETIC_STUDIES = ("zhao2025", "zhu2025", "fu2021", "agglo2025")
FILES_DIR = Path(__file__).resolve().parent.parent / "files"
FLOAT_FORMAT = "%.10g"


def generator(study: str):
    """The generator module of ``study``."""
    if study not in SYNTHETIC_STUDIES:
        raise KeyError(f"no synthetic generator for '{study}' (known: {SYNTHETIC_STUDIES})")
    return importlib.import_module(f"data.synthetic.{study}")


def write_default(study: str, seed: int | None = None) -> Path:
    """Generate ``study``'s panel with ``seed`` (default: the module's) and write its files."""
    module = generator(study)
    result = module.generate() if seed is None else module.generate(seed)
    panel, truth = result[0], result[1]
    folder = FILES_DIR / study
    folder.mkdir(parents=True, exist_ok=True)
    panel.to_csv(folder / "panel.csv", index=False, float_format=FLOAT_FORMAT)
    for name, extra in (result[2] if len(result) > 2 else {}).items():
        extra.to_csv(folder / name, index=False, float_format=FLOAT_FORMAT)
    (folder / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=False) + "\n")
    return folder


def load_truth(study: str) -> dict:
    """The true parameters saved beside ``study``'s shipped synthetic panel."""
    return json.loads((FILES_DIR / study / "truth.json").read_text())


def load_default_panel(study: str) -> pd.DataFrame:
    """The shipped synthetic panel of ``study`` (labelled via ``attrs['synthetic']``)."""
    frame = pd.read_csv(FILES_DIR / study / "panel.csv")
    frame.attrs["synthetic"] = True
    return frame

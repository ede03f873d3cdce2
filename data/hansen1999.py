"""Hansen's (1999) investment panel: 565 US firms, 1973-1987, with the lags his model uses.

The shipped file ``data/files/hansen1999/invest.dat`` is the real data Hansen distributed with his
threshold programs (from Hall and Hall's ``pstar.dat``): 8,475 rows, firm by firm, 15 years each,
four whitespace-separated columns ``inva vala cfa debta`` and no header.

Hansen's specification uses investment in year t and the other variables in year t-1, so the
panel built here has 14 years per firm (1974-1987) and 7,910 rows:

    I_it = inva_it,  Q_it = vala_i,t-1,  CF_it = cfa_i,t-1,  D_it = debta_i,t-1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data.errors import DataError

INVEST_FILE = Path(__file__).parent / "files" / "hansen1999" / "invest.dat"
N_FIRMS = 565
FIRST_YEAR = 1973
N_YEARS = 15
RAW_COLUMNS = ("inva", "vala", "cfa", "debta")


def read_invest_raw(path: str | Path = INVEST_FILE) -> pd.DataFrame:
    """Read ``invest.dat`` as it is distributed: one row per firm-year, 1973-1987.

    Parameters
    ----------
    path
        The whitespace-separated file with columns ``inva vala cfa debta`` and no header.

    Returns
    -------
    pandas.DataFrame
        Columns ``firm`` (1..565), ``year`` (1973..1987), ``inva``, ``vala``, ``cfa``, ``debta``;
        8,475 rows ordered by firm, then year.

    Raises
    ------
    DataError
        If the file is missing, does not have four numeric columns, or does not hold
        565 x 15 rows.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    values = np.loadtxt(path)
    if values.ndim != 2 or values.shape[1] != len(RAW_COLUMNS):
        raise DataError(f"{path}: expected {len(RAW_COLUMNS)} columns {RAW_COLUMNS}, "
                        f"found shape {values.shape}")
    if values.shape[0] != N_FIRMS * N_YEARS:
        raise DataError(f"{path}: expected {N_FIRMS * N_YEARS} rows ({N_FIRMS} firms x "
                        f"{N_YEARS} years), found {values.shape[0]}")
    frame = pd.DataFrame(values, columns=list(RAW_COLUMNS))
    frame.insert(0, "year", np.tile(np.arange(FIRST_YEAR, FIRST_YEAR + N_YEARS), N_FIRMS))
    frame.insert(0, "firm", np.repeat(np.arange(1, N_FIRMS + 1), N_YEARS))
    return frame


def load_invest_panel(path: str | Path = INVEST_FILE) -> pd.DataFrame:
    """Build Hansen's estimation panel with one-year lags of Q, CF and D.

    The model the panel serves is

        I_it = mu_i + b1 Q_it + b2 Q_it^2 + b3 Q_it^3 + b4 D_it + b5 Q_it D_it
               + sum_j theta_j CF_it I(regime j of D_it) + e_it,

    where Q, CF and D are the previous year's ``vala``, ``cfa`` and ``debta``.

    Parameters
    ----------
    path
        Location of ``invest.dat``.

    Returns
    -------
    pandas.DataFrame
        7,910 rows (565 firms x 1974..1987) with columns ``firm``, ``year``, ``I``, ``Q``,
        ``CF``, ``D``, ``Q2`` (Q^2), ``Q3`` (Q^3) and ``QD`` (Q*D).
    """
    raw = read_invest_raw(path)
    lagged = raw.groupby("firm")[["vala", "cfa", "debta"]].shift(1)
    panel = pd.DataFrame({
        "firm": raw["firm"],
        "year": raw["year"],
        "I": raw["inva"],
        "Q": lagged["vala"],
        "CF": lagged["cfa"],
        "D": lagged["debta"],
    })
    panel = panel[panel["year"] > FIRST_YEAR].reset_index(drop=True)
    panel["Q2"] = panel["Q"] ** 2
    panel["Q3"] = panel["Q"] ** 3
    panel["QD"] = panel["Q"] * panel["D"]
    return panel


def threshold_support(panel: pd.DataFrame | None = None) -> np.ndarray:
    """Sorted unique values of the threshold variable D over all 7,910 lagged rows.

    Hansen's program calls this vector ``dd`` and draws its candidate grid from it.

    Parameters
    ----------
    panel
        The frame from :func:`load_invest_panel`; read from the shipped file when omitted.
    """
    if panel is None:
        panel = load_invest_panel()
    return np.unique(panel["D"].to_numpy(dtype=float))

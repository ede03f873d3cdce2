"""Published tables of the studies, machine-readable, and their conversion to the results contract.

Each study's printed numbers live in ``data/published/<study>.csv`` with one row per printed
number that belongs to a table cell (schema and conventions: ``data/published/README.md``).
Estimates are stored with exactly the digits the paper prints, so ``load_published(study,
as_printed=True)`` gives back the strings of the print and the default call gives floats.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from data.errors import DataError

PUBLISHED_DIR = Path(__file__).parent / "published"

PUBLISHED_COLUMNS: tuple[str, ...] = (
    "study",
    "table",
    "column",
    "term",
    "estimate",
    "printed",
    "printed_kind",
    "stars",
    "ci_low",
    "ci_high",
    "p_value",
    "n_obs",
    "r_squared",
    "outcome",
    "note",
)
KEY_COLUMNS: tuple[str, ...] = ("study", "table", "column", "term")
NUMERIC_COLUMNS: tuple[str, ...] = (
    "estimate",
    "printed",
    "stars",
    "ci_low",
    "ci_high",
    "p_value",
    "n_obs",
    "r_squared",
)
TEXT_COLUMNS: tuple[str, ...] = tuple(c for c in PUBLISHED_COLUMNS if c not in NUMERIC_COLUMNS)
PRINTED_KINDS: frozenset[str] = frozenset({"t", "se", "z", "p", ""})

# Rows that record a printed YES/NO (controls, fixed effects) rather than an estimate.
INDICATOR_TERMS: frozenset[str] = frozenset(
    {"controls", "city_fe", "year_fe", "province_fe", "province_x_year_fe"}
)

RESULTS_COLUMNS: tuple[str, ...] = (
    "study",
    "table",
    "column",
    "term",
    "source",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "stat",
    "p_value",
    "prob_positive",
    "r_hat",
    "ess_bulk",
    "n_obs",
)

# Where each study's numbers were transcribed from (paths under the project's shared folder).
PUBLISHED_SOURCES: dict[str, tuple[str, ...]] = {
    "zhao2025": ("seeds/001_e6bdff8afbad2b25.txt", "seeds/000_27cb959f4684ceb3.txt"),
    "zhu2025": ("seeds/004_9fd2ca080495ab28.txt",),
    "fu2021": ("seeds/003_485385de66bcb2cd.txt",),
    "agglo2025": ("seeds/002_4d87905837aec642.txt",),
    "hansen1999": ("reference/hansen1999/PUBLISHED.md",),
}

_SCALE_TOKEN = re.compile(r"scale=([0-9.eE+-]+)")
_MAX_ROWS_SHOWN = 5


def published_studies() -> list[str]:
    """Names of the studies that have a published-table file, sorted.

    Returns
    -------
    list of str
        The stems of ``data/published/*.csv`` (a study whose paper prints no number, such as
        ``agglo2025``, is listed with a header-only file).
    """
    return sorted(path.stem for path in PUBLISHED_DIR.glob("*.csv"))


def load_published(study: str, *, as_printed: bool = False) -> pd.DataFrame:
    """Read and validate the published numbers of one study.

    Every row is one printed number :math:`\\hat\\theta_{s,k,j}` of study ``s``, table ``k``,
    column ``j`` and term, with what is printed beneath it (a t statistic
    :math:`t = \\hat\\theta / \\widehat{se}` or the standard error itself), its significance
    stars and the column's :math:`N` and :math:`R^2`.

    Parameters
    ----------
    study
        One of :func:`published_studies`.
    as_printed
        If true, every column is returned as the string stored in the file (``"0.2720"`` keeps
        its trailing zero); otherwise the numeric columns are floats (missing as NaN) and the
        text columns are strings (missing as ``""``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PUBLISHED_COLUMNS` in that order.

    Raises
    ------
    ValueError
        If ``study`` has no published-table file (the message lists the known studies).
    DataError
        If the file breaks a rule of the schema (the message names the column, rows and rule).
    """
    known = published_studies()
    if study not in known:
        raise ValueError(
            f"no published tables for study '{study}' (known studies: {', '.join(known)})"
        )
    path = PUBLISHED_DIR / f"{study}.csv"
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    validated = validate_published(raw, source=str(path), study=study)
    return raw if as_printed else validated


def validate_published(
    frame: pd.DataFrame, *, source: str = "published table", study: str | None = None
) -> pd.DataFrame:
    """Check a published-table frame against the schema and return it with numbers parsed.

    Parameters
    ----------
    frame
        Rows in the published schema, cells as strings (as read with ``dtype=str``) or numbers.
    source
        Name used in error messages (usually the file path).
    study
        If given, every row's ``study`` must equal it.

    Returns
    -------
    pandas.DataFrame
        A copy with :data:`NUMERIC_COLUMNS` as float (empty cells as NaN) and the other
        columns as stripped strings.

    Raises
    ------
    DataError
        On the first broken rule: wrong columns, empty keys, duplicate keys, unparsable numbers,
        unknown ``printed_kind``, a printed number without its kind (or the reverse), stars
        outside 0..3, p-values outside [0, 1], an interval with one bound or reversed bounds,
        non-positive or fractional ``n_obs``, :math:`R^2` outside [0, 1], or an empty estimate
        without a note saying why.
    """
    columns = tuple(frame.columns)
    if columns != PUBLISHED_COLUMNS:
        missing = [c for c in PUBLISHED_COLUMNS if c not in columns]
        extra = [c for c in columns if c not in PUBLISHED_COLUMNS]
        raise DataError(
            f"{source}: columns must be exactly {', '.join(PUBLISHED_COLUMNS)} in that order "
            f"(missing: {missing or 'none'}; unexpected: {extra or 'none'}) [rule: schema]"
        )
    out = frame.copy()
    for name in TEXT_COLUMNS:
        out[name] = _as_text(out[name])
    for name in KEY_COLUMNS:
        _require(out[name] == "", source, name, out[name], "key columns must not be empty")
    if study is not None:
        _require(out["study"] != study, source, "study", out["study"], f"must be '{study}'")
    duplicated = out.duplicated(list(KEY_COLUMNS), keep=False)
    keys = out["table"] + "/" + out["column"] + "/" + out["term"]
    _require(duplicated, source, "table/column/term", keys, "keys must be unique")

    for name in NUMERIC_COLUMNS:
        text = _as_text(frame[name])
        numbers = pd.to_numeric(text.where(text != "", None), errors="coerce").astype(float)
        _require(numbers.isna() & (text != ""), source, name, text, "must be numeric or empty")
        out[name] = numbers

    kind = out["printed_kind"]
    _require(~kind.isin(PRINTED_KINDS), source, "printed_kind", kind, "one of t, se, z, p or ''")
    has_printed = out["printed"].notna()
    _require(
        has_printed != (kind != ""),
        source,
        "printed_kind",
        kind,
        "a printed number needs its kind, and a kind needs a printed number",
    )
    _require(
        (kind == "se") & (out["printed"] < 0),
        source,
        "printed",
        out["printed"],
        "a printed standard error must not be negative",
    )
    _require(
        (kind == "p") & ((out["printed"] < 0) | (out["printed"] > 1)),
        source,
        "printed",
        out["printed"],
        "a printed p-value must lie in [0, 1]",
    )
    stars = out["stars"]
    _require(
        stars.notna() & (~stars.isin([0.0, 1.0, 2.0, 3.0])),
        source,
        "stars",
        stars,
        "stars must be 0, 1, 2 or 3 (empty where the significance level is not reported)",
    )
    p_value = out["p_value"]
    _require((p_value < 0) | (p_value > 1), source, "p_value", p_value, "must lie in [0, 1]")
    one_bound = out["ci_low"].isna() != out["ci_high"].isna()
    _require(one_bound, source, "ci_low/ci_high", out["ci_low"], "give both bounds or neither")
    _require(
        out["ci_low"] > out["ci_high"],
        source,
        "ci_low/ci_high",
        out["ci_low"],
        "ci_low must not exceed ci_high",
    )
    n_obs = out["n_obs"]
    _require(
        n_obs.notna() & ((n_obs <= 0) | (n_obs != np.round(n_obs))),
        source,
        "n_obs",
        n_obs,
        "must be a positive whole number",
    )
    r2 = out["r_squared"]
    _require((r2 < 0) | (r2 > 1), source, "r_squared", r2, "must lie in [0, 1]")
    _require(
        out["estimate"].isna() & (out["note"] == ""),
        source,
        "estimate",
        out["estimate"],
        "an empty estimate needs a note saying why nothing is printed",
    )
    return out


def published_to_results(
    frame: pd.DataFrame, *, include_indicators: bool = False, rescale: bool = False
) -> pd.DataFrame:
    """Turn published rows into rows of the results contract with ``source = "published"``.

    Where a t (or z) statistic is printed under an estimate, the standard error is recovered as
    :math:`\\widehat{se} = |\\hat\\theta / t|`; where a standard error is printed, the statistic
    is :math:`t = \\hat\\theta / \\widehat{se}`. A printed standard error that rounds to zero
    (``0.00``) carries no usable precision, so both ``std_error`` and ``stat`` are left NaN
    there, as they are for a printed t of zero.

    Parameters
    ----------
    frame
        Output of :func:`load_published` (parsed or ``as_printed``); it is validated first.
    include_indicators
        Keep the YES/NO rows of controls and fixed effects (estimate 1 or 0); dropped by default
        because they are specification flags, not estimates.
    rescale
        Multiply estimate, standard error and interval by the factor of a ``scale=...`` token
        in ``note`` (Hansen's :math:`Q^2` and :math:`Q^3` coefficients are printed scaled by
        :math:`10^{-3}` and :math:`10^{-6}`). By default the printed scale is kept.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RESULTS_COLUMNS`; ``prob_positive``, ``r_hat`` and ``ess_bulk`` are NaN.

    Raises
    ------
    DataError
        If ``frame`` breaks the published schema (see :func:`validate_published`).
    """
    # Validating here also parses a frame read ``as_printed`` (strings) into numbers.
    frame = validate_published(frame, source="published_to_results input")
    rows = frame if include_indicators else frame[~frame["term"].isin(INDICATOR_TERMS)]
    estimate = pd.to_numeric(rows["estimate"], errors="raise").astype(float).to_numpy()
    printed = pd.to_numeric(rows["printed"], errors="raise").astype(float).to_numpy()
    kind = rows["printed_kind"].to_numpy()

    is_stat = np.isin(kind, ["t", "z"])
    is_se = kind == "se"
    usable_stat = is_stat & (printed != 0)
    usable_se = is_se & (printed > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        std_error = np.where(
            usable_se, printed, np.where(usable_stat, np.abs(estimate / printed), np.nan)
        )
        stat = np.where(is_stat, printed, np.where(usable_se, estimate / printed, np.nan))

    p_value = pd.to_numeric(rows["p_value"], errors="raise").astype(float).to_numpy()
    p_value = np.where(np.isnan(p_value) & (kind == "p"), printed, p_value)
    ci_low = pd.to_numeric(rows["ci_low"], errors="raise").astype(float).to_numpy()
    ci_high = pd.to_numeric(rows["ci_high"], errors="raise").astype(float).to_numpy()

    if rescale:
        factor = rows["note"].map(_scale_factor).to_numpy()
        estimate, std_error = estimate * factor, std_error * factor
        ci_low, ci_high = ci_low * factor, ci_high * factor

    nan = np.full(len(rows), np.nan)
    results = pd.DataFrame(
        {
            "study": rows["study"].to_numpy(),
            "table": rows["table"].astype(str).to_numpy(),
            "column": rows["column"].astype(str).to_numpy(),
            "term": rows["term"].to_numpy(),
            "source": "published",
            "estimate": estimate,
            "std_error": std_error,
            "ci_low": ci_low,
            "ci_high": ci_high,
            "stat": stat,
            "p_value": p_value,
            "prob_positive": nan,
            "r_hat": nan,
            "ess_bulk": nan,
            "n_obs": pd.to_numeric(rows["n_obs"], errors="raise").astype(float).to_numpy(),
        }
    )
    return results.loc[:, list(RESULTS_COLUMNS)].reset_index(drop=True)


def _as_text(series: pd.Series) -> pd.Series:
    """Cells as stripped strings, missing cells as ``""`` (works for string and float columns)."""
    return series.astype(object).where(series.notna(), "").astype(str).str.strip()


def _scale_factor(note: str) -> float:
    match = _SCALE_TOKEN.search(note)
    return float(match.group(1)) if match else 1.0


def _require(broken: pd.Series, source: str, column: str, values: pd.Series, rule: str) -> None:
    """Raise a DataError naming the first broken rows (counted from 1 after the header)."""
    mask = np.asarray(broken.fillna(False), dtype=bool)
    if not mask.any():
        return
    positions = np.flatnonzero(mask)
    shown = ", ".join(str(p + 1) for p in positions[:_MAX_ROWS_SHOWN])
    more = (
        f" and {len(positions) - _MAX_ROWS_SHOWN} more" if len(positions) > _MAX_ROWS_SHOWN else ""
    )
    examples = ", ".join(repr(v) for v in values[mask].head(_MAX_ROWS_SHOWN).tolist())
    raise DataError(
        f"{source}: column '{column}' breaks a rule at row(s) {shown}{more} "
        f"(values: {examples}) [rule: {rule}]"
    )

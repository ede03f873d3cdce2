"""Data contracts: the columns, types, units, ranges and panel keys a study's data must meet.

Each study's contract is declared as data in ``data/schemas/<study>.toml``. ``validate_panel``
checks a frame against it and returns a cleaned copy (numeric columns as float, keys as given);
the first rule a frame breaks stops it with a :class:`~data.errors.DataError` that names the
column, the first offending rows (counted from 1, the first row after the header) and the rule.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data.errors import DataError

SCHEMA_DIR = Path(__file__).parent / "schemas"
MAX_ROWS_SHOWN = 5


@dataclass(frozen=True)
class ColumnRule:
    """One column of a contract.

    ``kind`` is ``"float"``, ``"int"``, ``"category"`` or ``"id"``; ``varies_within`` marks a
    regressor that must vary within at least one unit (a unit-constant regressor is absorbed by
    unit effects and cannot be estimated).
    """

    name: str
    kind: str
    description: str = ""
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] = ()
    required: bool = True
    varies_within: bool = False


@dataclass(frozen=True)
class DataContract:
    """The contract of one study's panel: keys, columns and rules."""

    study: str
    unit: str
    time: str
    description: str
    columns: tuple[ColumnRule, ...]
    keys: tuple[str, ...] = ()

    @property
    def row_keys(self) -> list[str]:
        """The columns that identify a row: ``keys`` when declared, else (unit, time)."""
        return list(self.keys) if self.keys else [self.unit, self.time]

    def column(self, name: str) -> ColumnRule:
        for rule in self.columns:
            if rule.name == name:
                return rule
        raise KeyError(f"{self.study} contract has no column '{name}'")

    @property
    def numeric_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.kind in ("float", "int")]


def available_contracts() -> list[str]:
    """Names of the studies that have a contract file."""
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.toml"))


def load_contract(study: str) -> DataContract:
    """Read ``data/schemas/<study>.toml`` into a :class:`DataContract`."""
    path = SCHEMA_DIR / f"{study}.toml"
    if not path.exists():
        known = ", ".join(available_contracts())
        raise DataError(f"no data contract for study '{study}' (known: {known})")
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    columns = tuple(
        ColumnRule(
            name=name,
            kind=spec["kind"],
            description=spec.get("description", ""),
            unit=spec.get("unit", ""),
            minimum=spec.get("min"),
            maximum=spec.get("max"),
            allowed=tuple(spec.get("allowed", ())),
            required=spec.get("required", True),
            varies_within=spec.get("varies_within", False),
        )
        for name, spec in raw["columns"].items()
    )
    return DataContract(
        study=raw["study"],
        unit=raw["unit"],
        time=raw["time"],
        description=raw.get("description", ""),
        columns=columns,
        keys=tuple(raw.get("keys", ())),
    )


def _rows(mask: np.ndarray | pd.Series) -> str:
    """Describe the first offending rows, counted from 1 after the header."""
    positions = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(p + 1) for p in positions[:MAX_ROWS_SHOWN])
    more = f" and {len(positions) - MAX_ROWS_SHOWN} more" if len(positions) > MAX_ROWS_SHOWN else ""
    return f"row{'s' if len(positions) > 1 else ''} {shown}{more}"


def _values(series: pd.Series, mask: np.ndarray | pd.Series) -> str:
    values = series[np.asarray(mask)].head(MAX_ROWS_SHOWN).tolist()
    return ", ".join(repr(v) for v in values)


def _as_numeric(frame: pd.DataFrame, rule: ColumnRule, source: str) -> pd.Series:
    raw = frame[rule.name]
    if pd.api.types.is_bool_dtype(raw):
        raw = raw.astype(float)
    numbers = pd.to_numeric(raw, errors="coerce")
    unparsable = numbers.isna() & raw.notna()
    if unparsable.any():
        raise DataError(
            f"{source}: column '{rule.name}' must be numeric ({rule.description or rule.kind}); "
            f"{_rows(unparsable)} hold non-numeric values ({_values(raw, unparsable)}) "
            "[rule: numeric type]"
        )
    numbers = numbers.astype(float)
    missing = ~np.isfinite(numbers.to_numpy())
    if missing.any():
        raise DataError(
            f"{source}: column '{rule.name}' has missing or non-finite values at {_rows(missing)} "
            f"({_values(raw, missing)}) [rule: finite values]"
        )
    if rule.kind == "int" and (numbers != np.round(numbers)).any():
        bad = numbers != np.round(numbers)
        raise DataError(
            f"{source}: column '{rule.name}' must hold whole numbers; {_rows(bad)} hold "
            f"{_values(raw, bad)} [rule: integer type]"
        )
    if rule.minimum is not None and (numbers < rule.minimum).any():
        bad = numbers < rule.minimum
        raise DataError(
            f"{source}: column '{rule.name}' ({rule.unit or rule.description}) must be >= "
            f"{rule.minimum}; {_rows(bad)} hold {_values(raw, bad)} [rule: allowed range]"
        )
    if rule.maximum is not None and (numbers > rule.maximum).any():
        bad = numbers > rule.maximum
        raise DataError(
            f"{source}: column '{rule.name}' ({rule.unit or rule.description}) must be <= "
            f"{rule.maximum}; {_rows(bad)} hold {_values(raw, bad)} [rule: allowed range]"
        )
    return numbers


def _as_category(frame: pd.DataFrame, rule: ColumnRule, source: str) -> pd.Series:
    raw = frame[rule.name]
    missing = raw.isna()
    if missing.any():
        raise DataError(
            f"{source}: column '{rule.name}' has missing values at {_rows(missing)} "
            "[rule: no missing keys or groups]"
        )
    values = raw.astype(str)
    if rule.allowed:
        bad = ~values.isin(rule.allowed)
        if bad.any():
            raise DataError(
                f"{source}: column '{rule.name}' must be one of {list(rule.allowed)}; "
                f"{_rows(bad)} hold {_values(raw, bad)} [rule: allowed categories]"
            )
    return values


def validate_panel(
    frame: pd.DataFrame,
    contract: DataContract,
    source: str = "data",
    needed: list[str] | None = None,
) -> pd.DataFrame:
    """Check ``frame`` against ``contract`` and return a validated copy.

    Parameters
    ----------
    frame
        The user's panel; it is not modified.
    contract
        The study's contract.
    source
        Name used in error messages (usually the file path).
    needed
        Columns to check; defaults to every required column of the contract. Columns the user
        gave beyond the contract are kept unchanged.

    Raises
    ------
    DataError
        On the first broken rule: a missing column, a non-numeric or non-finite value, a value
        out of range, a duplicate (unit, time) key, an empty frame, or a regressor without
        within-unit variation.
    """
    if frame.shape[0] == 0:
        raise DataError(f"{source}: no data rows [rule: non-empty panel]")
    names = needed if needed is not None else [c.name for c in contract.columns if c.required]
    for key in reversed(contract.row_keys):
        if key not in names:
            names = [key, *names]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column{'s' if len(missing) > 1 else ''} {missing} required by the "
            f"{contract.study} data contract (present: {list(frame.columns)[:20]}) "
            "[rule: required columns]"
        )
    out = frame.copy()
    for name in names:
        rule = contract.column(name)
        if rule.kind in ("float", "int"):
            out[name] = _as_numeric(frame, rule, source)
        elif rule.kind == "category":
            out[name] = _as_category(frame, rule, source)
        else:
            missing_keys = frame[name].isna()
            if missing_keys.any():
                raise DataError(
                    f"{source}: key column '{name}' has missing values at {_rows(missing_keys)} "
                    "[rule: no missing keys]"
                )
    keys = contract.row_keys
    duplicated = out.duplicated(keys, keep=False)
    if duplicated.any():
        first = out.loc[duplicated, keys].head(MAX_ROWS_SHOWN).to_dict("records")
        raise DataError(
            f"{source}: duplicate ({', '.join(keys)}) keys at {_rows(duplicated)} "
            f"({first}) [rule: one row per ({', '.join(keys)})]"
        )
    for name in names:
        rule = contract.column(name)
        if not rule.varies_within:
            continue
        spread = out.groupby(contract.unit, sort=False)[name].agg(lambda s: s.max() - s.min())
        if not (spread > 1e-12).any():
            raise DataError(
                f"{source}: column '{name}' does not vary within any {contract.unit}; unit "
                f"effects absorb it, so its slope cannot be estimated [rule: within-unit variation]"
            )
    return out

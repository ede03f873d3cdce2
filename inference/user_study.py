"""User-defined studies: ``python -m inference run path/to/my_study.toml --data my.csv``.

A study file has the grammar of ``inference/studies/*.toml`` (``study``, ``title``, ``unit``,
``time``, a ``[defaults]`` table and one ``[[spec]]`` per column; see the README's template).
It is checked before anything runs: a broken file stops with an error naming the file, the
spec and the key. The user's data must hold every column the specs read; its contract is
derived from the file (unit and time keys, numeric outcomes and regressors).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from data.errors import DataError
from inference.registry import STUDIES, Study, load_study_from_mapping

LIST_KEYS = ("regressors", "effects", "controls")
STRING_KEYS = ("table", "column", "kind", "outcome", "vcov", "sample", "label")


class StudyFileError(DataError):
    """A study file that breaks the grammar."""


def is_study_file(name: str | Path) -> bool:
    """Whether ``name`` points to a study file rather than a shipped study."""
    return str(name).endswith(".toml")


def load_study_file(path: str | Path) -> Study:
    """Read and check a user's study file (errors name the file, the spec and the key)."""
    from inference.estimators import FREQUENTIST

    path = Path(path)
    if not path.exists():
        raise StudyFileError(f"study file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise StudyFileError(f"{path}: not valid TOML: {exc}") from None
    for key in ("study", "unit", "time"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise StudyFileError(f"{path}: top-level key '{key}' is missing or not a string")
    if raw["study"] in STUDIES:
        raise StudyFileError(f"{path}: key 'study' = '{raw['study']}' is a shipped study; "
                             "give yours another name")
    specs = raw.get("spec")
    if not isinstance(specs, list) or not specs:
        raise StudyFileError(f"{path}: no [[spec]] table: a study needs at least one")
    defaults = raw.get("defaults", {})
    for index, entry in enumerate(specs, start=1):
        merged = {**defaults, **entry}
        where = (f"{path}, spec {index} (table {merged.get('table', '?')} column "
                 f"{merged.get('column', '?')})")
        for key in ("table", "column", "outcome", "regressors"):
            if key not in merged:
                raise StudyFileError(f"{where}: key '{key}' is missing")
        for key in STRING_KEYS:
            if key in merged and not isinstance(merged[key], str | int):
                raise StudyFileError(f"{where}: key '{key}' must be a string")
        for key in LIST_KEYS:
            if key in merged and (not isinstance(merged[key], list)
                                  or not all(isinstance(v, str) for v in merged[key])):
                raise StudyFileError(f"{where}: key '{key}' must be a list of column names")
        kind = merged.get("kind", "twfe")
        if kind not in FREQUENTIST:
            raise StudyFileError(f"{where}: key 'kind' = '{kind}' is not one of "
                                 f"{sorted(FREQUENTIST)}")
        if "bayes" in merged and not isinstance(merged["bayes"], bool):
            raise StudyFileError(f"{where}: key 'bayes' must be true or false")
        if "winsorize" in merged and not (isinstance(merged["winsorize"], int | float)
                                          and 0 <= merged["winsorize"] < 0.5):
            raise StudyFileError(f"{where}: key 'winsorize' must be a share in [0, 0.5)")
    return load_study_from_mapping(raw)


def load_user_dataset(study: Study, path: str | Path | None):
    """The user's panel for a user study, checked against a contract derived from the specs."""
    from data.contracts import ColumnRule, DataContract, validate_panel
    from data.loaders import read_table
    from inference.datasets import Dataset

    if path is None:
        raise StudyFileError(f"study '{study.name}' is defined by a file and has no embedded "
                             "panel: give yours with --data")
    path = Path(path)
    raw = read_table(path)
    needed = list(dict.fromkeys(c for s in study.specs for c in s.columns))
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: the study's specs read column(s) {missing} that the file "
                        f"lacks (present: {list(raw.columns)[:20]}) [rule: required columns]")
    numeric = {s.outcome for s in study.specs} | {x for s in study.specs for x in s.regressors}
    rules = [ColumnRule(study.unit, "id"), ColumnRule(study.time, "id")]
    rules += [ColumnRule(c, "float") for c in needed
              if c in numeric and c not in (study.unit, study.time)]
    contract = DataContract(study=study.name, unit=study.unit, time=study.time,
                            description=f"columns read by {study.name}", columns=tuple(rules))
    frame = validate_panel(raw, contract, source=str(path), needed=[r.name for r in rules])
    frame.attrs["synthetic"] = False
    return Dataset(frame=frame, label=f"user data: {path.name}", path=path, synthetic=False)

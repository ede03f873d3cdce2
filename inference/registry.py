"""The study registry: every published specification declared as data.

Each study has ``inference/studies/<study>.toml`` with a ``[defaults]`` table and one
``[[spec]]`` per published column. A regressor list may contain ``"@controls"``, which expands
to the study's default controls. A top-level ``derive`` list names functions
(``"package.module:function"``, each ``frame -> frame`` adding columns) that build constructed
measures from the raw panel before any specification runs; ``summary_names`` maps a printed
variable of the descriptive table to its data column where the two differ. Fields beyond the
common ones (instruments, threshold variables, mediators, ...) are kept in ``Spec.options`` for
the estimator that needs them.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

STUDY_DIR = Path(__file__).parent / "studies"
STUDIES = ("zhao2025", "zhu2025", "fu2021", "agglo2025", "hansen1999")
# Options that name data columns (the rest are settings such as "demean" or "n_boot").
COLUMN_OPTIONS = (
    "regime", "threshold_variable", "instruments", "endogenous", "mediators", "group",
)
COMMON_FIELDS = {
    "table", "column", "kind", "outcome", "regressors", "effects", "vcov", "sample",
    "winsorize", "bayes", "label", "controls",
}


@dataclass(frozen=True)
class Spec:
    """One published column: what to regress on what, on which sample, with which errors."""

    study: str
    table: str
    column: str
    kind: str
    outcome: str
    regressors: tuple[str, ...]
    effects: tuple[str, ...]
    vcov: str
    sample: str | None = None
    winsorize: float | None = None
    bayes: bool = False
    label: str = ""
    options: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.study} table {self.table} column {self.column}"

    @property
    def columns(self) -> list[str]:
        """Data columns this specification reads."""
        names = [self.outcome, *self.regressors]
        for effect in self.effects:
            names.extend(effect.split("^"))
        names.extend(_sample_rule_names(self.sample))
        for key in COLUMN_OPTIONS:
            value = self.options.get(key)
            if isinstance(value, str):
                names.append(value)
            elif isinstance(value, list):
                names.extend(v for v in value if isinstance(v, str))
        return list(dict.fromkeys(names))


def _sample_rule_names(rule: str | None) -> list[str]:
    """Column names a ``DataFrame.query`` sample rule reads (``municipality == 0`` ->
    ``["municipality"]``), so that a spec whose rule needs a missing column is listed as not
    run instead of failing halfway through the study."""
    if not rule:
        return []
    try:
        tree = ast.parse(rule.replace("`", ""), mode="eval")
    except SyntaxError:
        return []
    return [node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
            and node.id not in ("True", "False", "None", "and", "or", "not", "in")]


@dataclass(frozen=True)
class Study:
    """A study's metadata and its specifications."""

    name: str
    title: str
    unit: str
    time: str
    specs: tuple[Spec, ...]
    derive: tuple[str, ...] = ()
    summary_names: dict[str, str] = field(default_factory=dict)

    def tables(self) -> list[str]:
        return list(dict.fromkeys(s.table for s in self.specs))


def load_study(name: str) -> Study:
    """Read the registry file of study ``name``."""
    path = STUDY_DIR / f"{name}.toml"
    if not path.exists():
        raise KeyError(f"unknown study '{name}' (known: {', '.join(STUDIES)})")
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    return load_study_from_mapping(raw)


def load_study_from_mapping(raw: dict) -> Study:
    """A study from the parsed contents of a study file (shipped or the user's own)."""
    name = raw["study"]
    defaults = raw.get("defaults", {})
    controls = list(defaults.get("controls", []))
    specs = []
    for entry in raw.get("spec", []):
        merged = {**defaults, **entry}
        regressors = []
        for name_ in merged.get("regressors", []):
            regressors.extend(controls if name_ == "@controls" else [name_])
        specs.append(
            Spec(
                study=raw["study"],
                table=str(merged["table"]),
                column=str(merged["column"]),
                kind=merged.get("kind", "twfe"),
                outcome=merged.get("outcome", ""),
                regressors=tuple(regressors),
                effects=tuple(merged.get("effects", [])),
                vcov=merged.get("vcov", "hetero"),
                sample=merged.get("sample"),
                winsorize=merged.get("winsorize"),
                bayes=bool(merged.get("bayes", True)),
                label=merged.get("label", ""),
                options={k: v for k, v in merged.items() if k not in COMMON_FIELDS},
            )
        )
    return Study(
        name=raw["study"], title=raw.get("title", name), unit=raw["unit"], time=raw["time"],
        specs=tuple(specs), derive=tuple(raw.get("derive", [])),
        summary_names=dict(raw.get("summary_names", {})),
    )

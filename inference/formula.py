"""Panel formulas of the ``fit`` command: ``"y ~ x1 + x2 | unit + time"``.

The part before ``~`` is the outcome, the terms joined by ``+`` after it the regressors, and the
terms after ``|`` the absorbed effects: ``| unit`` gives one-way (unit) effects, ``| unit + time``
two-way effects. The first effect is the panel unit, the second the period.

An instrumented block ``[d1 + d2 ~ z1 + z2]`` among the regressors (``--model iv``) names the
endogenous regressors and their excluded instruments: ``"y ~ x1 + [d ~ z1 + z2] | unit + time"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _is_name(term: str) -> bool:
    """A column name a formula can hold: a Python identifier (so ``城市`` or ``AI指数`` too,
    which pyfixest and PyMC accept), dots allowed."""
    return term.replace(".", "_").isidentifier()


class FormulaError(ValueError):
    """A formula that does not follow ``y ~ x1 + x2 | unit [+ time]``."""


@dataclass(frozen=True)
class PanelFormula:
    """A parsed panel formula."""

    outcome: str
    regressors: tuple[str, ...]
    unit: str
    time: str | None
    endogenous: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()

    @property
    def effects(self) -> tuple[str, ...]:
        return (self.unit,) if self.time is None else (self.unit, self.time)

    @property
    def exogenous(self) -> tuple[str, ...]:
        """The regressors that are not instrumented."""
        return tuple(r for r in self.regressors if r not in self.endogenous)

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys([self.outcome, *self.regressors, *self.instruments,
                                   *self.effects]))


def _terms(text: str, where: str, formula: str) -> list[str]:
    terms = [t.strip() for t in text.split("+")]
    for term in terms:
        if not term:
            raise FormulaError(f"formula '{formula}': an empty term in the {where}")
        if not _is_name(term):
            raise FormulaError(
                f"formula '{formula}': '{term}' in the {where} is not a name a formula can "
                "hold: names are letters (of any script), digits, '_' and '.', not starting "
                "with a digit. Rename such a column in the data, and write transformations "
                "such as logs or interactions into the data first.")
    return terms


def parse_formula(formula: str) -> PanelFormula:
    """Parse ``"y ~ x1 + x2 | unit + time"`` (or ``| unit``) into its parts.

    Raises
    ------
    FormulaError
        When ``~`` or ``|`` is missing, a term is not a plain column name, more than two
        effects are given, or a column appears twice.
    """
    outside = re.sub(r"\[[^\]]*\]", "", formula)  # the instrumented block has its own '~'
    if outside.count("~") != 1 or formula.split("~", 1)[0].count("[") > 0:
        raise FormulaError(f"formula '{formula}' needs exactly one '~' (y ~ x | unit + time)")
    left, right = formula.split("~", 1)
    if right.count("|") != 1:
        raise FormulaError(
            f"formula '{formula}' needs '| unit' or '| unit + time' after the regressors")
    regressors_text, effects_text = right.split("|")
    outcome = _terms(left, "outcome", formula)
    if len(outcome) != 1:
        raise FormulaError(f"formula '{formula}': one outcome before '~', not {outcome}")
    regressors_text, endogenous, instruments = _instrumented_block(regressors_text, formula)
    regressors = _terms(regressors_text, "regressors", formula) if regressors_text.strip(
        " +") else []
    regressors += endogenous
    if not regressors:
        raise FormulaError(f"formula '{formula}': no regressor after '~'")
    effects = _terms(effects_text, "effects", formula)
    if len(effects) > 2:
        raise FormulaError(
            f"formula '{formula}': at most two effects (unit and time), not {effects}")
    every = [*outcome, *regressors, *instruments, *effects]
    repeated = sorted({c for c in every if every.count(c) > 1})
    if repeated:
        raise FormulaError(f"formula '{formula}': column(s) {repeated} appear more than once")
    return PanelFormula(outcome=outcome[0], regressors=tuple(regressors), unit=effects[0],
                        time=effects[1] if len(effects) == 2 else None,
                        endogenous=tuple(endogenous), instruments=tuple(instruments))


def _instrumented_block(text: str, formula: str) -> tuple[str, list[str], list[str]]:
    """Take ``[d1 + d2 ~ z1 + z2]`` out of the regressor text: (rest, endogenous, instruments)."""
    if text.count("[") != text.count("]") or text.count("[") > 1:
        raise FormulaError(f"formula '{formula}': at most one instrumented block "
                           "'[endogenous ~ instruments]' among the regressors")
    if "[" not in text:
        if "~" in text:
            raise FormulaError(f"formula '{formula}': write instruments as "
                               "'[endogenous ~ instruments]'")
        return text, [], []
    start, end = text.index("["), text.index("]")
    block = text[start + 1: end]
    if block.count("~") != 1:
        raise FormulaError(f"formula '{formula}': the block '[{block}]' needs one '~' "
                           "between the endogenous regressors and their instruments")
    endogenous_text, instruments_text = block.split("~")
    endogenous = _terms(endogenous_text, "endogenous regressors", formula)
    instruments = _terms(instruments_text, "instruments", formula)
    rest = (text[:start] + text[end + 1:]).strip()
    rest = re.sub(r"\+\s*\+", "+", rest).strip(" +")
    return rest, endogenous, instruments

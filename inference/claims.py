"""The claims ledger: each study's verbal claims as data, each tied to a posterior quantity.

``inference/studies/<study>_claims.toml`` holds one ``[[claim]]`` per claim::

    [[claim]]
    id = "east_strongest"
    text = "The effect is stronger in the east"
    evidence = ["7/1/AI", "7/2/AI", "7/3/AI"]      # table/column/term the paper would cite
    condition = "east > central and east > west"   # over posterior draws
    draws = { east = "7/region_pooled/AI[east]", central = "7/region_pooled/AI[central]",
              west = "7/region_pooled/AI[west]" }

A condition is comparisons (``>``, ``<``, chained) of draw names or numbers joined by ``and``.
Names from one fit share their draws; names from different fits are separate posteriors, whose
draws are paired as independent. A name without saved draws falls back to a normal
approximation from the Bayesian row of ``results.csv``; a name without either leaves the claim
without a posterior probability, and the verdict says why.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data.errors import DataError

CLAIMS_DIR = Path(__file__).parent / "studies"
CLAIM_COLUMNS = ["claim_id", "claim", "frequentist_evidence", "posterior_quantity",
                 "probability", "method", "verdict", "data_label", "headline"]
SUPPORT, AGAINST = 0.95, 0.05
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ClaimsError(DataError):
    """A claims file that breaks the grammar; the message names the file, claim and key."""


@dataclass(frozen=True)
class Claim:
    """One verbal claim and the posterior quantity that tests it."""

    id: str
    text: str
    condition: str
    draws: dict[str, str] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()


def claims_path(study: str) -> Path:
    """Where the claims ledger of ``study`` lives."""
    return CLAIMS_DIR / f"{study}_claims.toml"


def _split_ref(ref: str) -> tuple[str, str, str]:
    table, column, term = ref.split("/", 2)
    return table, column, term


def _parse_condition(condition: str) -> list[list[str]]:
    """Each ``and`` part as [operand, op, operand, op, ...]."""
    parts = []
    for part in re.split(r"\s+and\s+", condition.strip()):
        tokens = re.split(r"\s*([<>])\s*", part.strip())
        if len(tokens) < 3 or len(tokens) % 2 == 0 or not all(tokens[::2]):
            raise ValueError(f"cannot read the comparison {part!r}")
        parts.append(tokens)
    return parts


def load_claims(study: str, path: str | Path | None = None) -> list[Claim]:
    """The claims of ``study`` (empty when it has no claims file), checked against the grammar;
    a broken file raises :class:`ClaimsError` naming the file, the claim and the key."""
    path = Path(path) if path else claims_path(study)
    if not path.exists():
        return []
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ClaimsError(f"{path}: not valid TOML: {exc}") from None
    claims = []
    for index, entry in enumerate(raw.get("claim", []), start=1):
        where = f"{path}, claim {entry.get('id', index)!r}"
        for key in ("id", "text", "condition"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ClaimsError(f"{where}: key '{key}' is missing or not a string")
        draws = entry.get("draws", {})
        if not isinstance(draws, dict):
            raise ClaimsError(f"{where}: key 'draws' must be a table of name = 'T/C/term'")
        for name, ref in draws.items():
            if not NAME.match(name) or not isinstance(ref, str) or ref.count("/") < 2:
                raise ClaimsError(f"{where}: draws.{name} = {ref!r} is not 'table/column/term'")
        try:
            parts = _parse_condition(entry["condition"])
        except ValueError as exc:
            raise ClaimsError(f"{where}: key 'condition': {exc}") from None
        for tokens in parts:
            for operand in tokens[::2]:
                if operand not in draws and not _is_number(operand):
                    raise ClaimsError(f"{where}: key 'condition' names {operand!r}, which is "
                                      "not in 'draws'")
        evidence = entry.get("evidence", [])
        if not isinstance(evidence, list) or any(str(e).count("/") < 2 for e in evidence):
            raise ClaimsError(f"{where}: key 'evidence' must list 'table/column/term' strings")
        claims.append(Claim(id=entry["id"], text=entry["text"], condition=entry["condition"],
                            draws=dict(draws), evidence=tuple(map(str, evidence))))
    return claims


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _row(results: pd.DataFrame, ref: str, source: str) -> pd.Series | None:
    table, column, term = _split_ref(ref)
    rows = results[(results["table"].astype(str) == table)
                   & (results["column"].astype(str) == column)
                   & (results["term"].astype(str) == term) & (results["source"] == source)]
    return rows.iloc[0] if len(rows) else None


def _evidence_text(results: pd.DataFrame, refs: tuple[str, ...]) -> str:
    from inference.report.tables import fmt, stars

    lines = []
    for ref in refs:
        table, column, term = _split_ref(ref)
        bits = []
        for source, word in (("published", "paper"), ("frequentist", "here")):
            row = _row(results, ref, source)
            if row is not None:
                t = "" if row["stat"] != row["stat"] else f", t {row['stat']:.2f}"
                bits.append(f"{word} {fmt(row['estimate'])}{stars(row['p_value'], row['stat'])}"
                            f"{t}")
        if bits:
            lines.append(f"T{table}({column}) {term}: " + "; ".join(bits))
    return " | ".join(lines)


def _draws_for(bundle, ref: str, rng: np.random.Generator) -> tuple[np.ndarray | None, str]:
    """Draws of a reference and how they were obtained ('posterior draws', 'normal
    approximation'), or (None, why not)."""
    from inference.report.draws import term_draws

    table, column, term = _split_ref(ref)
    files = [k for k in bundle.posterior_files if k[:2] == (table, column)]
    # A cell's main fit is the one without a model suffix; the others are alternatives.
    files.sort(key=lambda k: k[2] != "")
    for key in files:
        values = term_draws(bundle.posterior(*key), term)
        if values is not None:
            return values, "posterior draws"
    row = _row(bundle.results, ref, "bayesian")
    if row is not None and row["std_error"] == row["std_error"] and row["std_error"] > 0:
        return rng.normal(row["estimate"], row["std_error"], 4000), "normal approximation"
    return None, f"no posterior of {term} in table {table} column {column}"


def _unconverged(results: pd.DataFrame, table: str, column: str) -> bool:
    """Whether the Bayesian fit of a cell carries a convergence failure."""
    rows = results[(results["table"].astype(str) == table)
                   & (results["column"].astype(str) == column)
                   & (results["source"] == "bayesian")]
    notes = rows["note"].fillna("").astype(str)
    return bool((notes.str.strip() != "").any())


def _probability(claim: Claim, draws: dict[str, np.ndarray]) -> float:
    size = min(len(v) for v in draws.values()) if draws else 1
    values = {k: v[:size] for k, v in draws.items()}
    holds = np.ones(size, dtype=bool)
    for tokens in _parse_condition(claim.condition):
        operands = [values[t] if t in values else np.full(size, float(t)) for t in tokens[::2]]
        for left, op, right in zip(operands, tokens[1::2], operands[1:]):
            holds &= (left > right) if op == ">" else (left < right)
    return float(holds.mean())


def claim_probability(claim: Claim, draws: dict[str, np.ndarray]) -> float:
    """P(condition) over paired draws: the share of draws (``{name: values}``, cut to the
    shortest) at which every comparison of ``claim.condition`` holds."""
    return _probability(claim, draws)


def verdict(probability: float | None, synthetic: bool, why: str = "",
            unconverged: list[str] | None = None) -> str:
    """The verdict in words; on synthetic data it says it checks the workflow, not China; a
    probability from a fit that did not converge is not read as support or contradiction."""
    if probability is None:
        text = f"not assessed: {why}"
    elif unconverged:
        text = (f"not reliable: the fit of {', '.join(unconverged)} did NOT converge (R-hat, "
                f"ESS or divergences); the posterior gives it {probability:.2f}, to be rerun "
                "with more draws before it is read")
    elif probability >= SUPPORT:
        text = f"supported: the posterior gives it {probability:.2f}"
    elif probability <= AGAINST:
        text = f"contradicted: the posterior gives it {probability:.2f}"
    else:
        text = f"uncertain: the posterior gives it {probability:.2f}"
    if synthetic:
        text += " (SYNTHETIC data: this checks the workflow, not China)"
    return text


def evaluate_claims(bundle, claims: list[Claim] | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per claim (:data:`CLAIM_COLUMNS`): the paper's and this run's frequentist
    evidence, the posterior probability of the condition, how it was computed, the verdict."""
    claims = load_claims(bundle.study) if claims is None else claims
    rng = np.random.default_rng(seed)
    rows = []
    for claim in claims:
        draws, methods, why = {}, set(), ""
        fits = {tuple(ref.split("/")[:2]) for ref in claim.draws.values()}
        for name, ref in claim.draws.items():
            values, how = _draws_for(bundle, ref, rng)
            if values is None:
                why = how
                break
            draws[name], _ = values, methods.add(how)
        if why and bundle.meta.get("frequentist_only"):
            why = "no posterior (a --frequentist-only run)"
        probability = None if why else _probability(claim, draws)
        method = "; ".join(sorted(methods))
        if len(fits) > 1 and not why:
            method += "; separate models, draws paired as independent"
        unconverged = sorted({f"table {t} column {c}" for t, c in fits
                              if _unconverged(bundle.results, t, c)})
        rows.append({"claim_id": claim.id, "claim": claim.text,
                     "frequentist_evidence": _evidence_text(bundle.results, claim.evidence),
                     "posterior_quantity": f"P({claim.condition})",
                     "probability": probability, "method": method if not why else "",
                     "verdict": verdict(probability, bundle.synthetic, why, unconverged),
                     "data_label": bundle.data_label,
                     "headline": next(iter(claim.draws.values()), "")})
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)

"""The layout holds: no import circle (counting imports inside functions), one subpackage per
model family with few plain modules beside them, modules small enough to read, the layers in
one direction, and entry points that name what their modules define."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "inference", "data")
MAX_LINES = 600
MAX_PLAIN_MODULES_IN_MODELS = 8
FAMILIES = ("bayes", "panel", "threshold", "iv", "heterogeneity", "mediation", "event_study",
            "gmm")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its body (functions included).
    A subpackage's own ``__init__`` importing from its parent package is not an edge back."""
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".") if is_package else name.split(".")[:-1]
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                resolved = _resolve(target)
                parent_package = resolved is not None and name.startswith(resolved + ".")
                if resolved and resolved != name and not parent_package:
                    edges[name].add(resolved)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges)))
    for node in edges:
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(planted) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle():
    found = cycles(import_graph())
    assert not found, "modules import each other in a loop: " + "; ".join(
        " <-> ".join(component) for component in found)


def test_the_graph_sees_imports_inside_functions():
    # models.panel.bayes imports the compile cache only inside fit_bayes_twfe.
    assert "models.panel.compiled" in import_graph()["models.panel.bayes"]


def test_layers_point_one_way():
    """models use nothing of inference and only data's error type; the data layer (but its
    synthetic generators, which use DEA and the threshold search) uses no model."""
    edges = import_graph()
    for name, targets in edges.items():
        if name.startswith("models"):
            assert not {t for t in targets if t.startswith("inference")}, name
            assert {t for t in targets if t.startswith("data")} <= {"data.errors"}, name
        if name.startswith("data") and not name.startswith("data.synthetic"):
            assert not {t for t in targets if t.startswith(("models", "inference"))}, name


def test_few_plain_modules_beside_the_families():
    plain = sorted(p.name for p in (ROOT / "models").glob("*.py"))
    assert len(plain) <= MAX_PLAIN_MODULES_IN_MODELS, plain
    for family in FAMILIES:
        assert (ROOT / "models" / family / "__init__.py").is_file(), family


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith(("models",
                                                                            "inference"))))
def test_module_is_small_enough_to_read(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines; split it by responsibility"


def test_module_names_do_not_repeat_their_folder():
    for name in MODULES:
        parts = name.split(".")
        if len(parts) >= 3:
            assert not parts[-1].startswith(parts[-2] + "_"), name


@pytest.mark.parametrize("family", FAMILIES)
def test_entry_points_name_what_their_modules_define(family):
    package = importlib.import_module(f"models.{family}")
    assert package.__all__, family
    for name in package.__all__:
        obj = getattr(package, name)
        module = package.ENTRY_POINTS[name]
        defined_in = getattr(obj, "__module__", None)
        if defined_in is not None and not isinstance(obj, int | float | str):
            assert defined_in == f"models.{family}.{module}", (name, defined_in)
        assert name in vars(importlib.import_module(f"models.{family}.{module}")), name
    with pytest.raises(AttributeError, match="no attribute"):
        package.not_an_entry_point  # noqa: B018


def test_the_frequentist_half_loads_without_the_samplers():
    code = ("import sys, models.panel.fe, models.threshold.hansen, models.iv.tsls, "
            "models.heterogeneity.interacted, models.mediation.three_step, "
            "models.event_study.twfe, inference.registry\n"
            "from models.threshold import fit_panel_threshold\n"
            "print(sorted({'numba', 'pymc', 'pytensor', 'nutpie'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "[]"

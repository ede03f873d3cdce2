"""Fresh Python processes that compile a model with their recipes in a test's folder: what a
warm run on another process sees of what an earlier one stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

_PREAMBLE = """
import json, sys
sys.path.insert(0, {root!r})
from models.bayes import graph_recipe, nutpie_compile
graph_recipe.recipe_path = lambda digest: __import__("pathlib").Path({folder!r}) / (digest + ".pkl")
if {forbid}:
    def refuse(*args, **kwargs):
        raise AssertionError("compiled anew")
    nutpie_compile._compile_graphs = refuse
"""


def child_source(body: str, folder: Path, forbid: bool) -> str:
    """``body`` run after the recipes are sent to ``folder`` and, with ``forbid``, compiling
    a model the long way (without a stored recipe) raises."""
    return _PREAMBLE.format(root=str(ROOT), folder=str(folder), forbid=forbid) + body


def child_environment() -> dict[str, str]:
    """The test's environment with a fixed hash seed, so both processes generate the same
    code."""
    return {**os.environ, "PYTHONHASHSEED": "0"}


def store_then_load(body: str, folder: Path) -> list:
    """Run ``body`` in a process that stores its recipes, then in one that must load them;
    the JSON each printed last."""
    results = []
    for forbid in (False, True):
        done = subprocess.run([sys.executable, "-c", child_source(body, folder, forbid)],
                              capture_output=True, text=True, timeout=600,
                              env=child_environment())
        assert done.returncode == 0, done.stderr[-2000:]
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results

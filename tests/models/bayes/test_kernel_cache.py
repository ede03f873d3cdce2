"""numba's cache of the kernels is checked against the source of their whole subpackage: every
cached kernel uses the project's locators, their stamp follows any numba file of the
subpackage, and no kernel calls a kernel of another subpackage (which the stamp would miss)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path

from models.bayes import kernel_cache

MODELS = Path(kernel_cache.__file__).resolve().parents[1]
ROOT = MODELS.parent
KERNEL = re.compile(r"(njit|cfunc)\([^)]*cache=True")


def _kernel_modules() -> list[str]:
    """Every module under models/ whose source compiles a kernel with numba's cache."""
    names = []
    for path in sorted(MODELS.rglob("*.py")):
        if KERNEL.search(path.read_text()):
            names.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return names


def _cached_kernels(module) -> list:
    from numba.core.caching import NullCache
    from numba.core.ccallback import CFunc
    from numba.core.dispatcher import Dispatcher

    found = []
    for value in vars(module).values():
        if isinstance(value, Dispatcher | CFunc) and value.__module__ == module.__name__:
            if not isinstance(value._cache, NullCache):
                found.append(value)
    return found


def test_every_cached_kernel_uses_the_subpackage_stamp():
    modules = _kernel_modules()
    assert "models.threshold.row_kernels" in modules and "models.panel.kernels" in modules
    n_kernels = 0
    for name in modules:
        for kernel in _cached_kernels(import_module(name)):
            locator = kernel._cache._impl.locator
            assert isinstance(locator, kernel_cache.LOCATORS), (name, kernel)
            directory = Path(import_module(name).__file__).parent
            assert locator.get_source_stamp() == (
                "subpackage-sha256", kernel_cache.subpackage_stamp(directory))
            n_kernels += 1
    assert n_kernels >= 30


def test_the_stamp_follows_every_numba_file_of_the_directory_and_no_other(tmp_path):
    (tmp_path / "callee.py").write_text("import numba\n\nA = 1\n")
    (tmp_path / "caller.py").write_text("import numba\nfrom callee import A\n")
    (tmp_path / "notes.py").write_text("B = 2\n")

    def stamp():
        kernel_cache._STAMPS.pop(tmp_path.resolve(), None)
        return kernel_cache.subpackage_stamp(tmp_path)

    before = stamp()
    (tmp_path / "notes.py").write_text("B = 3\n")  # no numba: no kernel can be in it
    assert stamp() == before
    (tmp_path / "callee.py").write_text("import numba\n\nA = 2\n")  # the same size
    changed = stamp()
    assert changed != before
    (tmp_path / "callee.py").write_text("import numba\n\nA = 1\n")
    assert stamp() == before


def test_outside_the_project_numba_keeps_its_own_locators(tmp_path):
    script = tmp_path / "elsewhere.py"
    script.write_text(
        "import numba\n"
        "import models.threshold.row_kernels  # installs the project's locators\n"
        "@numba.njit(cache=True)\n"
        "def twice(x):\n"
        "    return 2 * x\n"
        "print(type(twice._cache._impl.locator).__module__)\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                           "NUMBA_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numba.core.caching"


def test_no_kernel_module_imports_a_kernel_module_of_another_subpackage():
    modules = set(_kernel_modules())
    for name in modules:
        tree = ast.parse((ROOT / Path(*name.split("."))).with_suffix(".py").read_text())
        own = name.split(".")[1]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                assert node.module.split(".")[1] == own, (name, node.module)

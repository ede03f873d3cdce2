"""numba's on-disk cache of the project's kernels, checked against the source of every kernel
file of their subpackage rather than their own file alone.

numba accepts a cached function when the modification time and size of the file that defines
it are those it recorded, and looks at nothing else. A kernel that calls a kernel of another
file carries the callee's compiled code inside its own cache entry, so after a change to the
callee's file alone (an edit, a ``git pull`` that touches one file) numba kept loading the
caller with the old callee: the threshold model's log density went on running the row kernels
of before an edit until ``kernels.py`` itself changed.

The locators here stamp a cache entry with a digest of the contents of every file of the
kernel's subpackage (its directory) that uses numba, so a change to any of them recompiles
the subpackage's kernels on next use, and only those. Calls between kernels never cross a
subpackage, which a test checks. Where the entries live is numba's choice as before:
``$NUMBA_CACHE_DIR`` when it is set, else the ``__pycache__`` beside the source; clearing a
cache means deleting the ``*.nbi`` and ``*.nbc`` files there.

Every module that defines a cached kernel calls :func:`install` before its first
``cache=True``; installing twice is harmless, and functions outside ``models/`` keep numba's
own locators.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from numba.core import caching

_MODELS = Path(__file__).resolve().parents[1]


def _numba_class(name: str):
    """numba's class ``name``, which older releases spell with a leading underscore."""
    return getattr(caching, name, None) or getattr(caching, f"_{name}")

_STAMPS: dict[Path, str] = {}


def subpackage_stamp(directory: Path) -> str:
    """sha256 of the names and contents of the ``.py`` files in ``directory`` that use numba,
    computed once per process (the source a process has imported does not change under it)."""
    directory = Path(directory).resolve()
    if directory not in _STAMPS:
        digest = hashlib.sha256()
        for path in sorted(directory.glob("*.py")):
            source = path.read_bytes()
            if b"numba" in source:
                digest.update(path.name.encode() + b"\0" + source)
        _STAMPS[directory] = digest.hexdigest()
    return _STAMPS[directory]


def is_project_file(py_file: str) -> bool:
    """Whether ``py_file`` lies under ``models/``."""
    try:
        Path(py_file).resolve().relative_to(_MODELS)
    except (ValueError, OSError):
        return False
    return True


class _SubpackageStamp:
    """Mixin for numba's file-backed locators: the stamp is the subpackage's digest, and the
    locator declines functions outside the project (numba's next locator takes them)."""

    _py_file: str

    def get_source_stamp(self):
        return ("subpackage-sha256", subpackage_stamp(Path(self._py_file).parent))

    @classmethod
    def from_function(cls, py_func, py_file):
        if not is_project_file(py_file):
            return None
        return super().from_function(py_func, py_file)


class UserDirLocator(_SubpackageStamp, _numba_class("UserProvidedCacheLocator")):
    """``$NUMBA_CACHE_DIR``, when set."""


class InTreeLocator(_SubpackageStamp, _numba_class("InTreeCacheLocator")):
    """The ``__pycache__`` beside the source, when writable."""


class UserWideLocator(_SubpackageStamp, _numba_class("UserWideCacheLocator")):
    """numba's per-user cache folder, when the source tree is read-only."""


LOCATORS = (UserDirLocator, InTreeLocator, UserWideLocator)


def install() -> None:
    """Put :data:`LOCATORS` ahead of numba's own, in numba's order of preference."""
    classes = _numba_class("CacheImpl")._locator_classes
    if classes[:len(LOCATORS)] != list(LOCATORS):
        classes[:] = list(LOCATORS) + [c for c in classes if c not in LOCATORS]

"""Comparing a regenerated record (a truth.json) with the shipped one.

Floating-point results of numpy and BLAS differ in the last bits across processors, so floats
are compared to a relative tolerance that still catches any real change; integers, strings,
booleans, keys and lengths must match exactly.
"""

from __future__ import annotations

import json
import math
from typing import Any

RTOL = 1e-10
ATOL = 1e-12


def assert_records_match(fresh: Any, shipped: Any, where: str = "record",
                         rtol: float = RTOL, atol: float = ATOL) -> None:
    """Fail naming the first path at which ``fresh`` and ``shipped`` differ."""
    fresh = json.loads(json.dumps(fresh))
    _compare(fresh, shipped, where, rtol, atol)


def _compare(fresh: Any, shipped: Any, where: str, rtol: float, atol: float) -> None:
    if isinstance(shipped, dict):
        assert isinstance(fresh, dict), f"{where}: {type(fresh).__name__}, expected a mapping"
        assert list(fresh) == list(shipped), f"{where}: keys {list(fresh)} != {list(shipped)}"
        for key in shipped:
            _compare(fresh[key], shipped[key], f"{where}.{key}", rtol, atol)
    elif isinstance(shipped, list):
        assert isinstance(fresh, list), f"{where}: {type(fresh).__name__}, expected a list"
        assert len(fresh) == len(shipped), f"{where}: length {len(fresh)} != {len(shipped)}"
        for i, (a, b) in enumerate(zip(fresh, shipped, strict=True)):
            _compare(a, b, f"{where}[{i}]", rtol, atol)
    elif isinstance(shipped, float) and not isinstance(fresh, bool) and isinstance(
            fresh, int | float):
        assert math.isclose(fresh, shipped, rel_tol=rtol, abs_tol=atol) or (
            math.isnan(fresh) and math.isnan(shipped)), f"{where}: {fresh!r} != {shipped!r}"
    else:
        assert type(fresh) is type(shipped) and fresh == shipped, (
            f"{where}: {fresh!r} != {shipped!r}")

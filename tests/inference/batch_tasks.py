"""Small task functions for the batch tests: workers import them by name."""

from __future__ import annotations

import time

import numpy as np


def least_squares(seed: int, n: int = 200, pause: float = 0.0) -> dict:
    """OLS slope of a simulated y = 1 + 2 x + e: a deterministic function of ``seed``."""
    time.sleep(pause)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 1.0 + 2.0 * x + rng.normal(size=n)
    slope = np.polyfit(x, y, 1)[0]
    return {"seed": seed, "slope": float(slope)}


def fails(seed: int) -> dict:
    raise ValueError(f"simulated failure for seed {seed}")

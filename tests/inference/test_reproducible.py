"""The same command on the same machine writes a byte-identical results.csv.

pyfixest orders absorbed effects by iterating a set of their names, so without a fixed hash
seed the last digits of its estimates changed from one process to the next (fu2021's Open
coefficient: 0x1.5a56bdd192953p-30 against 0x1.5a56bb8f49c79p-30); ``python -m inference``
fixes the seed for its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_two_runs_give_byte_identical_results(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    outputs = []
    for name in ("first", "second"):
        out = tmp_path / name
        subprocess.run([sys.executable, "-m", "inference", "run", "fu2021",
                        "--frequentist-only", "--seed", "1", "--out", str(out)],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        outputs.append((out / "results.csv").read_bytes())
    assert outputs[0] == outputs[1]

"""The benchmark's measurements: a child's peak memory is its own, not the parent's, and the
bench command refuses an unknown section."""

from __future__ import annotations

import numpy as np

from benchmarks.measure import folder_size_mb, python_command, run_measured
from inference.cli import main


def test_peak_memory_is_the_commands_own():
    ballast = np.ones(300 * 2**20 // 8)  # 300 MB held by this process while the child runs
    small = run_measured(python_command("-c", "import time; time.sleep(0.5)"))
    large = run_measured(python_command(
        "-c", "import time; b = bytearray(400 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
              "time.sleep(0.5)"))
    assert ballast.sum() > 0
    assert small["returncode"] == 0 and large["returncode"] == 0
    assert small["peak_mb"] < 100
    assert 400 <= large["peak_mb"] < 500
    assert large["seconds"] >= 0.5


def test_failed_command_is_reported():
    measured = run_measured(python_command("-c", "import sys; print('boom'); sys.exit(4)"))
    assert measured["returncode"] == 4 and "boom" in measured["output"]


def test_folder_size(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 1_500_000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"x" * 500_000)
    assert folder_size_mb(tmp_path) == 2.0


def test_bench_refuses_an_unknown_section(capsys):
    assert main(["bench", "--sections", "twfe,speed"]) == 2
    assert "unknown benchmark section(s) ['speed']" in capsys.readouterr().err

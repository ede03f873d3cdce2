"""Wall time, peak memory and disk use of one command, each in its own process.

The peak resident memory is the largest sum of the resident memory of the command's process
and its children, sampled every 50 ms. The kernel's own account (``ru_maxrss``) cannot be used:
a child forked from this process starts with this process's pages counted, so every command
would show at least what this process holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_measured(command: list[str], env: dict[str, str] | None = None,
                 timeout: float | None = None) -> dict:
    """Run ``command`` from the repository root; its wall time (s), peak resident memory (MB),
    exit status and the last lines of its output."""
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as output:
        process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **(env or {})},
                                   stdout=output, stderr=subprocess.STDOUT, text=True)
        deadline = None if timeout is None else started + timeout
        peak = 0
        while process.poll() is None:
            peak = max(peak, _resident_bytes(process.pid))
            if deadline is not None and time.perf_counter() > deadline:
                process.kill()
                process.wait()
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        output.seek(0)
        tail = output.read()[-4000:]
    return {"seconds": seconds, "peak_mb": peak / 2**20, "returncode": process.returncode,
            "output": tail}


def _resident_bytes(pid: int) -> int:
    import psutil

    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue  # it ended between the listing and the reading
    return total


def folder_size_mb(path: str | Path) -> float:
    """Bytes of every file under ``path``, in MB (10**6 bytes)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 1e6


def python_command(*arguments: str) -> list[str]:
    """This interpreter running ``arguments``."""
    return [sys.executable, *arguments]

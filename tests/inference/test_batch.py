"""The Dask batch engine: a local cluster and a scheduler at an address both run a batch, each
result is stored as it finishes, and a rerun reuses what is stored."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from inference.batch import BatchError, ResultStore, Task, run_batch, task_key

REPO = Path(__file__).resolve().parents[2]


def tasks(seeds, function="tests.inference.batch_tasks:least_squares"):
    return [Task(key=task_key("ols", s), function=function, kwargs={"seed": s},
                 label=f"seed {s}") for s in seeds]


def expected_slope(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=200)
    y = 1.0 + 2.0 * x + rng.normal(size=200)
    return np.polyfit(x, y, 1)[0]


def test_local_cluster_runs_and_rerun_reuses(tmp_path):
    lines = []
    results = run_batch(tasks(range(6)), tmp_path, workers=2, progress=lines.append)
    assert [r["seed"] for r in results.values()] == list(range(6))
    for result in results.values():
        assert result["slope"] == pytest.approx(expected_slope(result["seed"]), rel=1e-12)
    assert len(list(tmp_path.glob("*.json"))) == 6
    assert any("2 Dask worker(s)" in line for line in lines)

    again = []
    rerun = run_batch(tasks(range(8)), tmp_path, workers=1, progress=again.append)
    assert "6 finished before (reused), 2 to run" in again[0]
    assert {k: rerun[k] for k in results} == results


def test_failures_are_named_and_not_stored(tmp_path):
    batch = tasks([1, 2]) + tasks([3], function="tests.inference.batch_tasks:fails")
    with pytest.raises(BatchError, match="seed 3: ValueError: simulated failure"):
        run_batch(batch, tmp_path, workers=1, progress=lambda _: None)
    store = ResultStore(tmp_path)
    assert store.read(batch[0].key)["seed"] == 1
    assert store.read(batch[2].key) is None


def test_duplicate_keys_refused(tmp_path):
    with pytest.raises(ValueError, match="same key"):
        run_batch(tasks([1, 1]), tmp_path, workers=1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_scheduler_at_an_address(tmp_path):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {"PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--dashboard-address", ":0"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
         "--nworkers", "1", "--no-dashboard"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        lines = []
        while True:
            try:
                results = run_batch(tasks(range(3)), tmp_path, scheduler=address,
                                    progress=lines.append)
                break
            except ValueError:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        assert [r["seed"] for r in results.values()] == [0, 1, 2]
        assert any(address in line for line in lines)
    finally:
        worker.terminate()
        scheduler.terminate()
        worker.wait(30)
        scheduler.wait(30)


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("inference.batch.CONNECT_TIMEOUT_S", 2)
    with pytest.raises(ValueError, match="cannot reach the Dask scheduler"):
        run_batch(tasks([1]), tmp_path, scheduler=f"tcp://127.0.0.1:{free_port()}")

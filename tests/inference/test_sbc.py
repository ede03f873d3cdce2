"""The sbc command: bad input gets one clear line, a small batch writes every output, a batch
killed midway resumes to the same ranks as an uninterrupted one, and (slow tier) the TWFE and
partial-pooling models are calibrated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inference import sbc
from inference.cli import main
from models.bayes.calibration import RANKED_DRAWS

REPO = Path(__file__).resolve().parents[2]
SIMS = 12


def command(out: Path, sims: int = SIMS) -> list[str]:
    return [sys.executable, "-m", "inference", "sbc", "twfe", "--sims", str(sims), "--quick",
            "--workers", "1", "--out", str(out)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted quick TWFE run of 12 simulations."""
    out = tmp_path_factory.mktemp("sbc") / "reference"
    done = subprocess.run(command(out), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out, done.stdout


@pytest.mark.parametrize("argv, message", [
    (["sbc", "nosuch", "--sims", "3"], "unknown calibration family 'nosuch'"),
    (["sbc", "absent", "--sims", "3"], "has no calibration yet: module models.absent"),
])
def test_bad_family_is_one_line(argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sbc.FAMILIES, "absent", "models.absent.calibration:AbsentCalibration")
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_zero_simulations_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sbc", "twfe", "--sims", "0"])
    assert exit_info.value.code == 2
    assert "0 must be at least 1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--sims must be at least 1"):
        sbc.run_sbc("twfe", 0)


def test_small_batch_writes_every_output(reference):
    out, stdout = reference
    for name in ("sbc_ranks.csv", "sbc_summary.csv", "sbc_rank_histograms.png",
                 "sbc_ecdf_difference.png"):
        assert (out / name).stat().st_size > 0, name
    assert len(list((out / ".batch").glob("*.json"))) == SIMS
    ranks = pd.read_csv(out / "sbc_ranks.csv")
    parameters = sbc.family_class("twfe").parameters
    assert len(ranks) == SIMS * len(parameters)
    assert (ranks["data"].str.startswith("SIMULATED")).all()
    assert np.isfinite(ranks["truth"]).all()
    converged = ranks[ranks["converged"]]
    # A fit that did not converge is reported with its problems and never ranked.
    assert ranks.loc[~ranks["converged"], "rank"].isna().all()
    problems = ranks["problems"].fillna("").astype(str)
    assert (problems[~ranks["converged"]].str.len() > 0).all()
    assert (problems[ranks["converged"]] == "").all()
    assert converged["rank"].between(0, RANKED_DRAWS).all()
    summary = pd.read_csv(out / "sbc_summary.csv")
    assert summary["parameter"].tolist() == list(parameters)
    assert ((summary["ranked"] + summary["not_converged"]) == SIMS).all()
    expected = converged.groupby("parameter")["hdi_covers"].mean()
    for row in summary.itertuples():
        assert row.hdi_coverage == pytest.approx(expected[row.parameter])
        assert row.coverage_low <= row.hdi_coverage <= row.coverage_high
    assert "SIMULATED data sets" in stdout and "wall time" in stdout
    assert "1 worker(s)" in stdout


def test_killed_batch_resumes_to_the_same_ranks(reference, tmp_path):
    out = tmp_path / "killed"
    store = out / ".batch"
    process = subprocess.Popen(command(out), cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if store.exists() and len(list(store.glob("*.json"))) >= 3:
                break
            time.sleep(0.02)
    finally:
        # The Dask scheduler and worker are children of the command: kill the whole group.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    stored = len(list(store.glob("*.json")))
    assert 3 <= stored < SIMS, f"{stored} results stored when the batch was killed"
    assert not (out / "sbc_ranks.csv").exists()

    rerun = subprocess.run(command(out), cwd=REPO, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{stored} finished before (reused), {SIMS - stored} to run" in rerun.stdout
    resumed = pd.read_csv(out / "sbc_ranks.csv")
    uninterrupted = pd.read_csv(reference[0] / "sbc_ranks.csv")
    pd.testing.assert_frame_equal(resumed, uninterrupted)


def check_calibrated(summary: pd.DataFrame, simulations: int) -> None:
    """Every parameter uniform by both tests (p > 0.01), the 94% HDI covering the truth as
    often as a binomial allows (exact test, p > 0.01), and few fits not converged."""
    print(summary.drop(columns="data").to_string())
    assert (summary["not_converged"] <= simulations // 10).all()
    for row in summary.itertuples():
        assert row.chisquare_p > 0.01, row
        assert row.ecdf_p > 0.01, row
        assert row.coverage_p > 0.01, row


@pytest.mark.slow
@pytest.mark.parametrize("family, simulations", [("twfe", 200), ("heterogeneity", 100)])
def test_family_is_calibrated(family, simulations, tmp_path):
    outcome = sbc.run_sbc(family, simulations, out=tmp_path / family)
    check_calibrated(outcome.summary, simulations)

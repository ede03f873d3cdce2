"""Several studies in one command run as a Dask batch: each study's results equal a single
run's, a rerun skips finished studies, and a study whose folder lost its finished run reruns."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from inference.cli import main


def read(folder):
    return pd.read_csv(folder / "results.csv").sort_values(
        ["table", "column", "term", "source"]).reset_index(drop=True)


def test_two_studies_on_two_workers(tmp_path, capsys):
    out = tmp_path / "batch"
    assert main(["run", "fu2021", "hansen1999", "--frequentist-only", "--out", str(out),
                 "--workers", "2"]) == 0
    single = tmp_path / "single"
    assert main(["run", "fu2021", "--frequentist-only", "--out", str(single)]) == 0
    batch, alone = read(out / "fu2021"), read(single)
    pd.testing.assert_frame_equal(batch.drop(columns=["estimate", "std_error"]),
                                  alone.drop(columns=["estimate", "std_error"]))
    for column in ("estimate", "std_error"):
        assert batch[column].to_numpy() == pytest.approx(alone[column].to_numpy(), rel=1e-7,
                                                         nan_ok=True)
    assert (out / "hansen1999" / "index.html").exists()
    capsys.readouterr()

    assert main(["run", "fu2021", "hansen1999", "--frequentist-only", "--out", str(out),
                 "--workers", "1"]) == 0
    assert "2 finished before (reused), 0 to run" in capsys.readouterr().out

    marker = out / "hansen1999" / "run.json"
    marker.write_text(json.dumps({"status": "interrupted"}))
    assert main(["run", "fu2021", "hansen1999", "--frequentist-only", "--out", str(out),
                 "--workers", "1"]) == 0
    assert "1 finished before (reused), 1 to run" in capsys.readouterr().out
    assert json.loads(marker.read_text())["status"] == "complete"


def test_batch_options_need_several_studies(capsys):
    assert main(["run", "fu2021", "--frequentist-only", "--workers", "2"]) == 2
    assert "give more than one STUDY" in capsys.readouterr().err


def test_data_belongs_to_one_study(tmp_path, capsys):
    data = tmp_path / "panel.csv"
    data.write_text("a,b\n1,2\n")
    assert main(["run", "fu2021", "hansen1999", "--frequentist-only", "--data", str(data),
                 "--out", str(tmp_path / "o")]) == 2
    assert "--data gives one study's panel" in capsys.readouterr().err

"""Bad arguments, unsafe output folders, specifications that cannot run and interruptions:
each gets a clear message or a documented result, never a traceback or a lost file."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from inference.cli import main
from inference.datasets import default_data_path
from inference.outputs import MARKER, check_output_folder, start_run
from models.bayes.provenance import write_atomically


@pytest.mark.parametrize("seed", ["-1", "12345678901234567890123", "1.5"])
def test_a_seed_out_of_range_is_an_argument_error(seed, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "zhao2025", "--frequentist-only", "--seed", seed])
    assert stop.value.code == 2
    assert "--seed" in capsys.readouterr().err


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("keep me")
    assert main(["run", "zhao2025", "--frequentist-only", "--out", str(target)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_a_priors_path_that_is_not_a_file_is_refused_even_without_sampling(tmp_path, make,
                                                                            capsys):
    priors = tmp_path / "priors.toml"
    if make == "directory":
        priors.mkdir()
    data = tmp_path / "panel.csv"
    pd.read_csv(default_data_path("zhao2025")).to_csv(data, index=False)
    code = main(["fit", "--data", str(data), "--formula", "Inn ~ AI | city + year",
                 "--out", str(tmp_path / "out"), "--frequentist-only", "--priors", str(priors)])
    assert code == 2
    error = capsys.readouterr().err
    assert str(priors) in error and ("not found" in error or "directory" in error)


def test_an_input_named_like_an_output_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    data = out / "results.csv"
    pd.read_csv(default_data_path("zhao2025")).to_csv(data, index=False)
    before = data.read_bytes()
    code = main(["run", "zhao2025", "--frequentist-only", "--data", str(data), "--out", str(out)])
    assert code == 2
    assert "would be overwritten" in capsys.readouterr().err
    assert data.read_bytes() == before
    # The same file elsewhere is fine as input.
    assert check_output_folder(tmp_path / "elsewhere", [("--data", data)]).is_dir()


def test_specs_that_cannot_run_are_listed_and_the_rest_is_written(tmp_path, capsys,
                                                                 monkeypatch):
    """An unbalanced panel without the optional `municipality` column: the threshold specs
    (balanced panels only) and the rule `municipality == 0` cannot run; everything else does,
    results.csv is written, and --strict turns the list into exit status 3."""
    import inference.estimators.mediation as mediation

    # On an unbalanced panel every cluster-bootstrap replicate of the mediation spec is a full
    # refit (about 0.3 s); five replicates keep this test in the fast tier.
    monkeypatch.setattr(mediation, "QUICK_BOOTSTRAP", 5)
    frame = pd.read_csv(default_data_path("zhao2025")).drop(columns=["municipality"])
    frame = frame.drop(index=[0])  # one city loses one year
    data = tmp_path / "unbalanced.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "out"
    code = main(["run", "zhao2025", "--frequentist-only", "--quick", "--data", str(data),
                 "--out", str(out), "--strict"])
    captured = capsys.readouterr()
    assert code == 3
    assert "strict:" in captured.err and "not run" in captured.err
    assert "municipality" in captured.err and "must be balanced" in captured.err
    results = pd.read_csv(out / "results.csv")
    frequentist = results[results["source"] == "frequentist"]
    assert {"2", "3"} <= set(frequentist["table"].astype(str))  # the baseline tables ran
    marker = json.loads((out / MARKER).read_text())
    assert marker["status"] == "complete" and marker["not_run"]


def test_an_interrupted_run_says_so_and_marks_its_folder(tmp_path, monkeypatch, capsys):
    import inference.runner as runner

    out = tmp_path / "out"

    def interrupted(name, options, progress=print):
        check_output_folder(out, [])
        start_run(out, f"run {name}")
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_study", interrupted)
    assert main(["run", "zhao2025", "--frequentist-only", "--out", str(out)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert json.loads((out / MARKER).read_text())["status"] == "interrupted"


def test_a_failed_write_leaves_neither_the_file_nor_a_partial_one(tmp_path):
    target = tmp_path / "posterior.nc"

    def half_written(path):
        path.write_bytes(b"CDF\x01 half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, half_written)
    assert list(tmp_path.iterdir()) == []
    write_atomically(target, lambda path: path.write_bytes(b"whole"))
    assert target.read_bytes() == b"whole" and len(list(tmp_path.iterdir())) == 1


def test_a_new_run_clears_an_earlier_runs_outputs_only_in_a_run_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "posterior_table2_col1.nc").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    start_run(out, "run zhao2025")  # no marker yet: nothing is removed
    assert (out / "posterior_table2_col1.nc").exists()
    start_run(out, "run zhao2025")  # a run's folder now: its old outputs go, the user's stay
    assert not (out / "posterior_table2_col1.nc").exists()
    assert (out / "notes.txt").read_text() == "mine"

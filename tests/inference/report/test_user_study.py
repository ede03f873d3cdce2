"""User-defined studies: a study file in the registry's grammar runs on the user's data; a bad
file stops with an error naming the file, the spec and the key."""

from __future__ import annotations

import pandas as pd
import pytest

from inference.cli import main
from inference.datasets import default_data_path

STUDY = """study = "my_provinces"
title = "My provinces"
unit = "province"
time = "year"

[defaults]
outcome = "ln_innovation_efficiency"
effects = ["province", "year"]
vcov = "cluster:province"
controls = ["Gro", "Urb", "Open"]

[[spec]]
table = "A"
column = "1"
label = "baseline"
regressors = ["AI", "@controls"]
"""


@pytest.fixture()
def panel(tmp_path):
    path = tmp_path / "my.csv"
    pd.read_csv(default_data_path("fu2021")).to_csv(path, index=False)
    return path


def test_a_study_file_runs_on_the_users_data_and_rebuilds(tmp_path, panel):
    study = tmp_path / "my_study.toml"
    study.write_text(STUDY, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", str(study), "--data", str(panel), "--frequentist-only",
                 "--out", str(out)]) == 0
    results = pd.read_csv(out / "results.csv", dtype=str)
    assert set(results["study"]) == {"my_provinces"}
    assert (results["term"] == "AI").sum() == 1
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "baseline" in page and "synthetic-banner" not in page
    assert main(["report", str(study), "--from", str(out), "--out", str(tmp_path / "re")]) == 0
    assert (tmp_path / "re" / "index.html").exists()


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('regressors = ["AI", "@controls"]', 'regressors = "AI"'),
     "spec 1 (table A column 1): key 'regressors' must be a list of column names"),
    (lambda t: t.replace('label = "baseline"', 'kind = "magic"'),
     "spec 1 (table A column 1): key 'kind' = 'magic' is not one of"),
    (lambda t: t.replace('unit = "province"\n', ''), "top-level key 'unit' is missing"),
    (lambda t: t.replace('column = "1"\n', ''), "spec 1 (table A column ?): key 'column'"),
    (lambda t: t.replace('"my_provinces"', '"zhao2025"'), "is a shipped study"),
    (lambda t: t + "[[spec\n", "not valid TOML"),
])
def test_a_bad_study_file_names_file_spec_and_key(tmp_path, panel, capsys, edit, message):
    study = tmp_path / "bad_study.toml"
    study.write_text(edit(STUDY), encoding="utf-8")
    assert main(["run", str(study), "--data", str(panel), "--frequentist-only",
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(study) in err and message in err and "Traceback" not in err


def test_a_study_file_needs_data_with_its_columns(tmp_path, panel, capsys):
    study = tmp_path / "my_study.toml"
    study.write_text(STUDY.replace('"AI", "@controls"', '"AI_missing", "@controls"'),
                     encoding="utf-8")
    assert main(["run", str(study), "--frequentist-only", "--out", str(tmp_path / "o")]) == 2
    assert "give yours with --data" in capsys.readouterr().err
    assert main(["run", str(study), "--data", str(panel), "--frequentist-only",
                 "--out", str(tmp_path / "o")]) == 2
    assert "['AI_missing']" in capsys.readouterr().err

"""Fixture runs shared by the report tests: built once per session, no sampling."""

from __future__ import annotations

import pytest

from inference.report import build_report
from tests.inference.report.fixture_runs import fixture_run

STUDIES = ("zhao2025", "zhu2025", "fu2021", "agglo2025", "hansen1999")


@pytest.fixture(scope="session")
def built_runs(tmp_path_factory) -> dict:
    """study -> folder of a fixture run with its report built."""
    folders = {}
    for study in STUDIES:
        folder = fixture_run(study, tmp_path_factory.mktemp(study))
        build_report(study, folder, progress=lambda _m: None)
        folders[study] = folder
    return folders


@pytest.fixture(scope="session")
def user_data_run(tmp_path_factory):
    """A real --frequentist-only run of fu2021 on a user file (a copy of the default panel):
    its report must carry no synthetic banner."""
    import pandas as pd

    from inference.datasets import default_data_path
    from inference.runner import RunOptions, run_study

    folder = tmp_path_factory.mktemp("fu2021_user")
    data = folder / "my_provinces.csv"
    pd.read_csv(default_data_path("fu2021")).to_csv(data, index=False)
    out = folder / "run"
    run_study("fu2021", RunOptions(data=data, out=out, frequentist_only=True, seed=3),
              progress=lambda _m: None)
    return out

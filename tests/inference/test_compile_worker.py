"""The compiling helper's process fits every Bayesian specification briefly, the last
first, into its own folder, and goes on past one that fails."""

from __future__ import annotations

from inference import compile_worker
from inference.estimators import BAYESIAN
from inference.registry import load_study


def test_specifications_go_last_first_briefly_and_past_failures(tmp_path, monkeypatch):
    calls = []

    def fit(sample, spec, settings):
        calls.append((spec.key, len(sample), dict(settings.sampling), settings.out_dir))
        if spec.key == failing:
            raise ValueError("not identified")

    study = load_study("zhao2025")
    expected = [s.key for s in reversed(study.specs) if s.bayes and s.kind in BAYESIAN]
    failing = expected[1]
    for kind in list(BAYESIAN):
        monkeypatch.setitem(BAYESIAN, kind, fit)
    failed = compile_worker.compile_study("zhao2025", {"seed": 1}, tmp_path,
                                          progress=lambda _: None)
    assert [c[0] for c in calls] == expected
    assert failed == [failing]
    assert all(c[2] == compile_worker.AHEAD_SAMPLING and c[3] == tmp_path for c in calls)
    # each specification gets its own sample: Table 3 (4) drops the four municipalities
    rows = {key: n for key, n, _, _ in calls}
    assert rows["zhao2025 table 2 column 6"] == 3252
    assert rows["zhao2025 table 3 column 4"] == 3204


def test_the_helper_stops_where_the_run_has_passed(tmp_path, monkeypatch):
    calls = []
    for kind in list(BAYESIAN):
        monkeypatch.setitem(BAYESIAN, kind, lambda sample, spec, settings: calls.append(spec))
    study = load_study("zhao2025")
    reached = 21  # the run is at Table 5 (1): the helper does 29 down to 22, then stops
    (tmp_path / "reached").write_text(str(reached))
    compile_worker.compile_study("zhao2025", {"seed": 1}, tmp_path, progress=lambda _: None)
    after = [s.key for s in study.specs[reached:] if s.bayes and s.kind in BAYESIAN]
    assert [s.key for s in calls] == list(reversed(after)) and len(after) >= 5


def test_options_travel_to_another_process_unchanged(tmp_path):
    import json
    from pathlib import Path

    from inference.runner import RunOptions

    options = RunOptions(data=tmp_path / "panel.csv", out=tmp_path / "out", seed=7, quick=True,
                         priors=("slope=normal(0,1)",), prior_file=Path("p.toml"), draws=50)
    fields = json.loads(json.dumps(options.as_fields()))
    assert fields["data"] == str(tmp_path / "panel.csv") and fields["priors"] == \
        ["slope=normal(0,1)"]
    assert RunOptions.from_fields(fields) == options

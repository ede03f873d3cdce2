"""The compiling helper's marks: a digest of what the compiled models depend on, and a run
that finished its fits marking the caches filled for it."""

from __future__ import annotations

import pandas as pd

from inference import compile_ahead
from inference.registry import load_study


def test_digest_follows_the_specifications_priors_and_data_shape():
    study = load_study("zhao2025")
    columns = pd.Index(["Inn", "AI"])
    base = compile_ahead.cache_digest(study, (3252, 2), columns, None, False)
    assert base == compile_ahead.cache_digest(study, (3252, 2), columns, None, False)
    others = {
        compile_ahead.cache_digest(study, (3253, 2), columns, None, False),
        compile_ahead.cache_digest(study, (3252, 2), columns, ["slope=normal(0,1)"], False),
        compile_ahead.cache_digest(study, (3252, 2), columns, None, True),
        compile_ahead.cache_digest(load_study("zhu2025"), (3252, 2), columns, None, False),
    }
    assert base not in others and len(others) == 4


def test_a_mark_says_the_caches_are_filled(tmp_path, monkeypatch):
    monkeypatch.setattr(compile_ahead, "marks_folder", lambda: tmp_path / "marks")
    assert not compile_ahead.caches_filled("zhao2025", "abc")
    compile_ahead.mark_filled("zhao2025", "abc")
    assert compile_ahead.caches_filled("zhao2025", "abc")
    assert not compile_ahead.caches_filled("zhao2025", "abd")
    assert not compile_ahead.caches_filled("zhu2025", "abc")


def test_the_run_waits_only_for_the_model_the_helper_is_compiling(tmp_path):
    import subprocess
    import sys
    import threading

    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    helper = compile_ahead.Helper(process, tmp_path)
    try:
        compile_ahead.write_index(tmp_path / compile_ahead.WORKING, 3)
        assert helper.reached(4) < 0.1  # the helper is behind the run: no wait
        assert compile_ahead.read_index(tmp_path / compile_ahead.REACHED) == 4
        timer = threading.Timer(0.5, compile_ahead.write_index,
                                (tmp_path / compile_ahead.WORKING, 2))
        timer.start()
        waited = helper.reached(3)  # the helper is compiling 3: wait till it moves on
        timer.join()
        assert 0.4 < waited < 5.0
    finally:
        helper.stop()
    assert process.poll() is not None and not tmp_path.exists()

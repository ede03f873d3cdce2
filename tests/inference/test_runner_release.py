"""A run lets an estimator drop the fits it keeps once no specification of its kind is left."""

from __future__ import annotations

from inference import runner
from inference.estimators import RELEASE
from inference.estimators import threshold as threshold_estimator


def test_kinds_are_released_after_their_last_specification(monkeypatch):
    calls = []
    monkeypatch.setitem(runner.RELEASE, "threshold", lambda: calls.append("threshold"))
    last_of_kind = {"twfe": 3, "threshold": 2}
    runner._release_kinds(last_of_kind, before=2)
    assert calls == [] and last_of_kind == {"twfe": 3, "threshold": 2}
    runner._release_kinds(last_of_kind, before=3)
    assert calls == ["threshold"] and last_of_kind == {"twfe": 3}
    runner._release_kinds(last_of_kind, before=4)  # twfe keeps nothing: nothing to call
    assert calls == ["threshold"] and last_of_kind == {}


def test_threshold_release_empties_its_fit_cache(monkeypatch):
    monkeypatch.setitem(threshold_estimator._FIT_CACHE, ("key",), object())
    assert RELEASE["threshold"] is threshold_estimator.release
    RELEASE["threshold"]()
    assert threshold_estimator._FIT_CACHE == {}

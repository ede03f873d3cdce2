"""The tolerant record comparison catches real changes and forgives last-bit noise."""

import pytest

from tests.records import assert_records_match

SHIPPED = {"seed": 7, "label": "SYNTHETIC", "estimands": {"1/1": {"estimand": 0.2665859141071392,
                                                                  "n": 2858}}, "ok": True}


def test_last_bit_noise_passes():
    fresh = {"seed": 7, "label": "SYNTHETIC", "estimands": {"1/1": {"estimand": 0.26658591410713917,
                                                                    "n": 2858}}, "ok": True}
    assert_records_match(fresh, SHIPPED)


@pytest.mark.parametrize(("path", "value"), [
    (("estimands", "1/1", "estimand"), 0.2665859141071392 * (1 + 1e-8)),
    (("estimands", "1/1", "n"), 2859),
    (("seed",), 7.0),
    (("label",), "synthetic"),
    (("ok",), 1),
])
def test_a_real_change_fails_naming_where(path, value):
    import copy

    fresh = copy.deepcopy(SHIPPED)
    target = fresh
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(AssertionError, match=path[-1]):
        assert_records_match(fresh, SHIPPED)


def test_a_missing_key_fails():
    fresh = {k: v for k, v in SHIPPED.items() if k != "ok"}
    with pytest.raises(AssertionError, match="keys"):
        assert_records_match(fresh, SHIPPED)

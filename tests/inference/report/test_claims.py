"""The claims ledger's grammar and arithmetic: conditions over draws, bad files named."""

from __future__ import annotations

import numpy as np
import pytest

from inference.claims import Claim, ClaimsError, _probability, load_claims, verdict


def test_every_study_claim_file_loads():
    counts = {s: len(load_claims(s)) for s in ("zhao2025", "zhu2025", "fu2021", "agglo2025")}
    assert counts == {"zhao2025": 10, "zhu2025": 4, "fu2021": 3, "agglo2025": 4}
    assert load_claims("hansen1999") == []


def test_condition_probability_over_draws():
    rng = np.random.default_rng(0)
    draws = {"a": rng.normal(1.0, 1.0, 100_000), "b": np.zeros(100_000),
             "c": rng.normal(-1.0, 1.0, 100_000)}
    chained = Claim(id="x", text="x", condition="a > b > c", draws={})
    # P(a > 0) * P(c < 0) with independent draws: 0.8413^2
    assert _probability(chained, draws) == pytest.approx(0.8413 ** 2, abs=0.01)
    joined = Claim(id="y", text="y", condition="a > 0.5 and c < -0.5", draws={})
    assert _probability(joined, draws) == pytest.approx(0.6915 ** 2, abs=0.01)


def test_verdict_words():
    assert verdict(0.99, False).startswith("supported")
    assert verdict(0.01, False).startswith("contradicted")
    assert verdict(0.5, True).endswith("(SYNTHETIC data: this checks the workflow, not China)")
    assert verdict(None, False, "no posterior").startswith("not assessed: no posterior")
    shaky = verdict(0.99, True, unconverged=["table 2 column 6"])
    assert shaky.startswith("not reliable: the fit of table 2 column 6 did NOT converge")
    assert "supported" not in shaky


def test_a_claim_on_an_unconverged_fit_is_not_called_supported(tmp_path):
    from inference.claims import evaluate_claims
    from inference.report import load_run
    from tests.inference.report.fixture_runs import fixture_run

    claims = evaluate_claims(load_run(fixture_run("zhao2025", tmp_path, unconverged=("2", "6"))))
    first = claims.set_index("claim_id").loc["ai_raises_innovation"]
    assert first["probability"] == 1.0 and first["verdict"].startswith("not reliable")
    others = claims[claims["claim_id"] != "ai_raises_innovation"]
    assert not others["verdict"].str.startswith("not reliable").any()


@pytest.mark.parametrize("body, message", [
    ('[[claim]]\nid = "a"\ntext = "t"\n', "claim 'a': key 'condition' is missing"),
    ('[[claim]]\nid = "a"\ntext = "t"\ncondition = "x > 0"\n',
     "claim 'a': key 'condition' names 'x', which is not in 'draws'"),
    ('[[claim]]\nid = "a"\ntext = "t"\ncondition = "x > 0"\ndraws = { x = "2/6" }\n',
     "claim 'a': draws.x = '2/6' is not 'table/column/term'"),
    ('[[claim]]\nid = "a"\ntext = "t"\ncondition = "x >"\ndraws = { x = "2/6/AI" }\n',
     "claim 'a': key 'condition': cannot read the comparison"),
    ("[[claim]\n", "not valid TOML"),
])
def test_bad_claims_file_names_file_claim_and_key(tmp_path, body, message):
    path = tmp_path / "mine_claims.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ClaimsError) as caught:
        load_claims("mine", path)
    assert str(path) in str(caught.value) and message in str(caught.value)

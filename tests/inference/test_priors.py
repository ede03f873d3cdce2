"""One priors file for every model: TWFE roles, the group sd of partial pooling and the IV
roles are read together, each checked by the parser of the model it belongs to."""

from __future__ import annotations

import pytest

from inference.priors import priors_for, read_prior_entries
from models.bayes.panel_priors import PanelPriors
from models.bayes.priors import PriorSpecError
from models.heterogeneity.priors import HeterogeneityPriors
from models.iv.bayes import IVPriors

PRIORS_TOML = """
[priors]
sigma = { family = "halfnormal", sigma = 2 }
group_sd = "halfnormal(0.2)"
first_stage = "normal(0, 3)"
first_stage_sigma = "halfnormal(1.5)"
rho = "lkj(2)"

[priors.slope]
AI = "normal(0, 0.5)"
"""


def test_file_and_command_line_reach_every_model(tmp_path):
    path = tmp_path / "priors.toml"
    path.write_text(PRIORS_TOML, encoding="utf-8")
    entries = read_prior_entries(path, ["group_sd.AI=halfnormal(0.1)", "slope.Eco=normal(0, 2)"])
    panel = PanelPriors.from_mapping(priors_for(entries, "panel"))
    assert str(panel.sigma) == "halfnormal(2)"
    assert str(dict(panel.slope_terms)["AI"]) == "normal(0, 0.5)"
    assert str(dict(panel.slope_terms)["Eco"]) == "normal(0, 2)"
    pooling = HeterogeneityPriors.parse(priors_for(entries, "heterogeneity"))
    assert str(pooling.group_sd) == "halfnormal(0.2)"
    assert str(dict(pooling.group_sd_terms)["AI"]) == "halfnormal(0.1)"
    iv = IVPriors.parse(priors_for(entries, "iv"))
    assert str(iv.first_stage) == "normal(0, 3)"
    assert str(iv.first_stage_sigma) == "halfnormal(1.5)"
    assert iv.rho_eta == 2.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('grup_sd = "halfnormal(1)"', "'grup_sd'.*unknown name"),
        ('group_sd = "normal(0, 1)"', "positive half-line"),
        ('rho = "normal(0, 1)"', "lkj"),
    ],
)
def test_bad_entries_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(PriorSpecError, match=message) as error:
        read_prior_entries(path)
    assert "bad.toml" in str(error.value)


def test_each_family_gets_only_its_own_roles(tmp_path):
    path = tmp_path / "priors.toml"
    path.write_text(PRIORS_TOML, encoding="utf-8")
    entries = read_prior_entries(path)
    assert set(priors_for(entries, "panel")) == {"sigma", "slope"}
    assert set(priors_for(entries, "heterogeneity")) == {"sigma", "slope", "group_sd"}
    assert set(priors_for(entries, "iv")) == {"sigma", "slope", "first_stage",
                                               "first_stage_sigma", "rho"}
    assert priors_for(["rho=lkj(2)", "slope.AI=normal(0, 1)"], "panel") == [
        "slope.AI=normal(0, 1)"]
    assert priors_for({"rho": "lkj(2)"}, "panel") is None
    # A TWFE prior object is the family's own: passed through untouched.
    own = PanelPriors.from_mapping({"sigma": "halfnormal(1)"})
    assert priors_for(own, "panel") is own


def test_a_twfe_model_refuses_another_familys_role():
    with pytest.raises(PriorSpecError, match="'rho'"):
        PanelPriors.from_mapping({"rho": "lkj(2)"})


def test_mediation_roles_reach_the_mediation_model_only():
    from models.mediation.priors import MediationPriors

    entries = read_prior_entries(None, ["confounding_rho=normal(0, 0.2)", "slope=normal(0, 1)",
                                        "mediator_corr=lkj(4)"])
    mediation = MediationPriors.parse(priors_for(entries, "mediation"))
    assert mediation.confounding.params == (0.0, 0.2) and mediation.corr_eta == 4.0
    assert mediation.slope.params == (("mu", 0.0), ("sigma", 1.0))
    assert priors_for(entries, "iv") == {"slope": "normal(0, 1)"}
    with pytest.raises(PriorSpecError, match=r"command line.*confounding_rho.*correlation"):
        read_prior_entries(None, ["confounding_rho=halfnormal(1)"])

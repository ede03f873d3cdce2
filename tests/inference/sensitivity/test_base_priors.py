"""--priors FILE.toml is the base of the grid: the default row is fitted under the user's
priors and relative alternatives are built around them, which the table says."""

from __future__ import annotations

import pytest

from inference.sensitivity.grid import base_priors
from models.bayes.priors import PriorSpecError


def test_base_priors_flattens_term_tables_and_names_a_bad_entry(tmp_path):
    path = tmp_path / "priors.toml"
    path.write_text('[priors]\nunit_sd = "halfnormal(0.5)"\n[priors.slope]\nAI = '
                    '"normal(0, 1)"\n', encoding="utf-8")
    assert base_priors(path) == {"unit_sd": "halfnormal(0.5)", "slope.AI": "normal(0, 1)"}
    assert base_priors(None) == {}
    path.write_text('[priors]\nslop = "normal(0, 1)"\n', encoding="utf-8")
    with pytest.raises(PriorSpecError, match="'slop'.*unknown name"):
        base_priors(path)


def test_grid_is_built_around_the_user_priors(tmp_path, monkeypatch):
    """With the stand-in fit whose posterior is exact: the user's slope prior normal(0, 1)
    makes the default row that posterior, and ``scale = 0.1`` becomes normal(0, 0.1), not
    the default's normal(0, 0.2)."""
    import inference.sensitivity.run as run
    from inference.sensitivity import SensitivityOptions, run_sensitivity
    from tests.inference.sensitivity_tasks import posterior

    monkeypatch.setattr(run, "TASK", "tests.inference.sensitivity_tasks:fake_refit")
    priors = tmp_path / "priors.toml"
    priors.write_text('[priors]\n"slope.AI" = "normal(0, 1)"\n', encoding="utf-8")
    grid = tmp_path / "grid.toml"
    grid.write_text("[defaults]\nreplace = true\n[slope.AI]\ntight = { scale = 0.1 }\n",
                    encoding="utf-8")
    out = run_sensitivity(SensitivityOptions(study="zhao2025", specs=("2/6",), grid=grid,
                                             out=tmp_path / "out", workers=1, priors=priors),
                          progress=lambda _line: None)
    table = out.grid.set_index("alternative")
    assert table.loc["default", "mean"] == pytest.approx(posterior(1.0)[0], rel=1e-12)
    assert table.loc["tight", "prior"] == "slope.AI=normal(0, 0.1)"
    assert table.loc["tight", "mean"] == pytest.approx(posterior(0.1)[0], rel=1e-12)
    assert table["prior_base"].eq(f"--priors {priors}: slope.AI=normal(0, 1)").all()
    assert "--priors" in (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    claims = out.claims.set_index("claim_id")
    assert claims.loc["ai_raises_innovation", "default_probability"] == 0.99
    assert claims.loc["va_weakens", "status"].startswith("not assessed: rests on 5/2")


def test_cli_names_a_bad_priors_file_with_status_2(tmp_path, capsys):
    from inference.cli import main

    path = tmp_path / "priors.toml"
    path.write_text('[priors]\nunit_sd = "halfnormal(-1)"\n', encoding="utf-8")
    assert main(["sensitivity", "zhao2025", "--spec", "2/6", "--priors", str(path),
                 "--out", str(tmp_path / "o")]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error:") and str(path) in message and "unit_sd" in message
    assert "\n" not in message
    assert not (tmp_path / "o").exists()   # nothing fitted, no folder made

"""The TWFE estimator against linearmodels on the same data, to 1e-8."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from linearmodels.panel import PanelOLS

from inference.datasets import default_data_path
from models.panel.fe import fit_twfe

REGRESSORS = ["AI", "Eco", "Huc", "Edu", "Fis", "Gov"]


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(default_data_path("zhao2025"))


def _linearmodels(panel, cov_type, **kwargs):
    data = panel.set_index(["city", "year"])
    model = PanelOLS(data["Inn"], data[REGRESSORS], entity_effects=True, time_effects=True)
    return model.fit(cov_type=cov_type, **kwargs)


def test_slopes_and_clustered_se_equal_linearmodels(panel):
    ours = fit_twfe(panel, "Inn", REGRESSORS, ["city", "year"], vcov="cluster:city").tidy()
    ours = ours.set_index("term")
    peer = _linearmodels(panel, "clustered", cluster_entity=True)
    np.testing.assert_allclose(ours.loc[REGRESSORS, "estimate"], peer.params[REGRESSORS],
                               rtol=1e-8)
    # Same clustered sandwich: the two packages differ only by one small-sample constant.
    ratio = ours.loc[REGRESSORS, "std_error"] / peer.std_errors[REGRESSORS]
    assert np.ptp(ratio.to_numpy()) < 1e-8
    assert 0.9 < ratio.iloc[0] < 1.1


def test_xtreg_constant_equals_linearmodels_with_year_dummies(panel):
    ours = fit_twfe(panel, "Inn", REGRESSORS, ["city", "year"], vcov="iid").tidy()
    ours = ours.set_index("term")
    dummies = pd.get_dummies(panel["year"], prefix="y", drop_first=True, dtype=float)
    data = pd.concat([panel, dummies], axis=1).set_index(["city", "year"])
    exog = data[REGRESSORS + list(dummies.columns)].assign(const=1.0)
    peer = PanelOLS(data["Inn"], exog, entity_effects=True).fit(cov_type="unadjusted")
    np.testing.assert_allclose(ours.loc["Constant", "estimate"], peer.params["const"],
                               rtol=1e-8)
    np.testing.assert_allclose(ours.loc[REGRESSORS, "estimate"], peer.params[REGRESSORS],
                               rtol=1e-8)
    np.testing.assert_allclose(ours.loc["Constant", "std_error"], peer.std_errors["const"],
                               rtol=1e-6)


def test_constant_with_province_by_year_effects_follows_reghdfe(panel):
    """Table 3 column (5): with city effects nested in provinces, province x year dummies are
    collinear with the city effects, so the constant is reghdfe's mean(y) - mean(x)'b."""
    sample = panel[panel["municipality"] == 0]
    ours = fit_twfe(sample, "Inn", REGRESSORS, ["city", "province^year"]).tidy()
    ours = ours.set_index("term")
    cells = sample["province"].astype(str) + "|" + sample["year"].astype(str)
    dummies = pd.get_dummies(cells, dtype=float)
    design = pd.concat([sample[REGRESSORS], dummies], axis=1).to_numpy(float)
    unit_means = pd.DataFrame(design).groupby(sample["city"].to_numpy()).transform("mean")
    y = sample["Inn"].to_numpy(float)
    y_within = y - sample.groupby("city")["Inn"].transform("mean").to_numpy()
    coef = np.linalg.lstsq(design - unit_means.to_numpy(), y_within, rcond=None)[0]
    slopes = coef[:len(REGRESSORS)]
    np.testing.assert_allclose(ours.loc[REGRESSORS, "estimate"], slopes, atol=1e-8)
    expected = y.mean() - sample[REGRESSORS].mean().to_numpy() @ slopes
    assert ours.loc["Constant", "estimate"] == pytest.approx(expected, abs=1e-10)
    assert np.isnan(ours.loc["Constant", "std_error"])
    assert "reghdfe" in ours.loc["Constant", "note"]


def _small_panel(seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"unit": np.repeat(np.arange(20), 5), "year": np.tile(np.arange(5), 20)})
    frame["x"] = rng.normal(size=len(frame))
    frame["y"] = 0.5 * frame["x"] + rng.normal(size=len(frame))
    return frame


def test_a_collinear_regressor_is_refused_naming_it():
    import pytest

    frame = _small_panel()
    frame["x_twice"] = 2.0 * frame["x"]
    frame["trend"] = frame["year"] * 0.1  # varies by year only: absorbed by the year effect
    for extra in ("x_twice", "trend"):
        with pytest.raises(ValueError, match=f"'{extra}'.*collinear"):
            fit_twfe(frame, "y", ["x", extra], ["unit", "year"], vcov="iid")
    # Without it the fit runs, and the estimate is the one a silent drop would have hidden.
    assert fit_twfe(frame, "y", ["x"], ["unit", "year"]).table["term"].tolist()[0] == "x"


def test_one_unit_is_refused_before_the_demeaning():
    import pytest

    frame = _small_panel()
    with pytest.raises(ValueError, match="'unit' has 1 level"):
        fit_twfe(frame[frame["unit"] == 0], "y", ["x"], ["unit", "year"])
    with pytest.raises(ValueError, match=r"\['nope'\] not in the data"):
        fit_twfe(frame, "y", ["x", "nope"], ["unit", "year"])


def test_a_treatment_in_few_clusters_is_flagged_beside_its_error():
    frame = _small_panel()
    frame["treat_post"] = ((frame["unit"] == 3) & (frame["year"] >= 2)).astype(int)
    fit = fit_twfe(frame, "y", ["x", "treat_post"], ["unit", "year"], vcov="cluster:unit")
    notes = dict(zip(fit.table["term"], fit.table["note"], strict=True))
    assert "rests on 1 of 20 clusters with treat_post = 1" in notes["treat_post"]
    assert notes["x"] == ""  # a continuous regressor is not a treatment
    spread = frame.assign(treat_post=((frame["unit"] < 12) & (frame["year"] >= 2)).astype(int))
    fit = fit_twfe(spread, "y", ["x", "treat_post"], ["unit", "year"], vcov="cluster:unit")
    assert "note" not in fit.table or not fit.table["note"].fillna("").any()


def test_dropped_singletons_are_said():
    import pandas as pd

    frame = _small_panel()
    lone = frame.iloc[[0]].assign(unit=99)  # a unit seen in one year only
    fit = fit_twfe(pd.concat([frame, lone], ignore_index=True), "y", ["x"], ["unit", "year"])
    assert fit.n_obs == len(frame)
    assert all("1 row(s) whose effect level is observed once" in n for n in fit.table["note"])

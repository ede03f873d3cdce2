"""Arellano & Bond (1991) Table 4 and Blundell & Bond's (1998) system GMM on the employment
panel, against the printed reproductions in ``data/files/reference/abdata/printed.csv``
(Roodman 2009, sections 3.3-3.4, and Stata's ``xtabond`` manual, Example 4; sources in the
README beside it): coefficients, robust and Windmeijer SEs, AR(1), AR(2), Sargan, Hansen,
instrument counts, each at the precision printed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from models.gmm.estimate import fit_dynamic_gmm

ABDATA = Path(__file__).resolve().parents[3] / "data" / "files" / "reference" / "abdata"
ALL_YEARS = [f"yr{y}" for y in range(1976, 1985)]
# yr1976, yr1977 and yr1984 are collinear with the others in the differenced sample.
YEAR_REGRESSORS = [f"yr{y}" for y in range(1978, 1984)]
LAGS = {"w": [0, 1], "k": [0, 1, 2], "ys": [0, 1, 2]}
EXOGENOUS = ["w", "L1.w", "k", "L1.k", "L2.k", "ys", "L1.ys", "L2.ys"]


@pytest.fixture(scope="module")
def abdata() -> pd.DataFrame:
    return pd.read_csv(ABDATA / "abdata.csv")


@pytest.fixture(scope="module")
def printed() -> pd.DataFrame:
    return pd.read_csv(ABDATA / "printed.csv", comment="#", dtype={"value": str},
                       keep_default_na=False)


def _table(printed: pd.DataFrame, model: str) -> dict[tuple[str, str], tuple[float, float]]:
    """(quantity, term) -> (value, half a unit in the last printed digit)."""
    out = {}
    rows = printed[printed["model"] == model]
    for quantity, term, text in rows[["quantity", "term", "value"]].itertuples(index=False):
        decimals = len(text.split(".")[1]) if "." in text else 0
        out[(quantity, term)] = (float(text), 0.5 * 10.0 ** -decimals + 1e-12)
    return out


def _close(actual: float, expected: tuple[float, float], what: str) -> None:
    value, tolerance = expected
    assert abs(actual - value) <= tolerance, f"{what}: {actual} against printed {value}"


def _check(fit, table, names: dict[str, str] | None = None, system: bool = False) -> None:
    names = names or {}
    for term, estimate, se in zip(fit.terms, fit.beta, fit.std_errors, strict=True):
        term = names.get(term, term)
        _close(estimate, table[("coef", term)], f"coef {term}")
        _close(se, table[("se", term)], f"se {term}")
    assert (fit.n_obs_level if system else fit.n_obs_diff) == table[("n_obs", "")][0]
    assert fit.n_units == table[("n_groups", "")][0]
    assert fit.n_instruments == table[("n_instruments", "")][0]


def _check_tests(fit, table, tests=("sargan", "hansen")) -> None:
    for order in (1, 2):
        _close(fit.ar[order][0], table[(f"ar{order}", "")], f"AR({order})")
        _close(fit.ar[order][1], table[(f"ar{order}_p", "")], f"AR({order}) p")
    for name, (stat, df, p) in ((t, getattr(fit, t)) for t in tests):
        _close(stat, table[(name, "")], name)
        _close(p, table[(f"{name}_p", "")], f"{name} p")
        assert df == table[(f"{name}_df", "")][0]


def _one_step(abdata, gmm, iv, small=False):
    return fit_dynamic_gmm(abdata, "n", ["w", "k", "ys", *YEAR_REGRESSORS], outcome_lags=2,
                           lags=LAGS, gmm=gmm, iv=iv, unit="id", time="year", level=False,
                           time_dummies=False, collapse=False, steps=1,
                           exogenous_regressors=False, small=small)


def test_column_a1_one_step_robust_matches_roodman(abdata, printed):
    """gmm(L.n) iv(w L.w L(0/2).(k ys) yr*) nolevel robust: the nine differenced year
    dummies sum to zero, so 41 instruments and 25 over-identifying restrictions, not 42/26."""
    table = _table(printed, "a1_onestep_robust")
    fit = _one_step(abdata, {"n": (2, None)}, [*EXOGENOUS, *ALL_YEARS])
    _check(fit, table)
    _check_tests(fit, table)


def test_gmm_style_wages_and_capital_small_match_roodman(abdata, printed):
    """gmm(L.(n w k)) iv(L(0/2).ys yr*) nolevel robust small: 90 instruments, SEs with
    xtabond2's G / (G - 1) N / (N - K + 1)."""
    table = _table(printed, "gmm_nwk_onestep_robust_small")
    fit = _one_step(abdata, {"n": (2, None), "w": (2, None), "k": (2, None)},
                    ["ys", "L1.ys", "L2.ys", *ALL_YEARS], small=True)
    _check(fit, table)
    _check_tests(fit, table)


def test_column_a2_two_step_windmeijer_matches_stata_xtabond(abdata, printed):
    table = _table(printed, "a2_twostep_windmeijer")
    years = [f"yr{y}" for y in range(1980, 1985)]
    exogenous = [*EXOGENOUS, *years, "trend"]
    fit = fit_dynamic_gmm(abdata.assign(trend=abdata["year"]), "n", ["w", "k", "ys", *years,
                                                                    "trend"],
                          outcome_lags=2, lags=LAGS, gmm={"n": (2, None)}, iv=exogenous,
                          unit="id", time="year", level=False, time_dummies=False,
                          collapse=False, steps=2, exogenous_regressors=False)
    _check(fit, table, {"trend": "year"})
    # The same model with Roodman's year dummies: the ten slopes of n, w, k and ys agree.
    dummies = fit_dynamic_gmm(abdata, "n", ["w", "k", "ys", *YEAR_REGRESSORS], outcome_lags=2,
                              lags=LAGS, gmm={"n": (2, None)}, iv=[*EXOGENOUS, *ALL_YEARS],
                              unit="id", time="year", level=False, time_dummies=False,
                              collapse=False, steps=2, exogenous_regressors=False)
    assert abs(dummies.beta[:10] - fit.beta[:10]).max() < 1e-9


def _system(abdata):
    years = [f"yr{y}" for y in range(1977, 1984)]
    return fit_dynamic_gmm(abdata, "n", ["w", "k", *years], outcome_lags=1,
                           lags={"w": [0, 1], "k": [0, 1]},
                           gmm={"n": (2, None), "w": (2, None), "k": (2, None)},
                           iv_level=ALL_YEARS, unit="id", time="year", level=True,
                           time_dummies=False, collapse=False, steps=1,
                           exogenous_regressors=False, small=True)


def test_blundell_bond_system_one_step_matches_roodman(abdata, printed):
    """gmm(L.(n w k)) iv(yr*, eq(level)) robust small: 13 coefficients and SEs, 891
    level observations, 113 instruments, AR(1), AR(2), Sargan and Hansen (100 df). The Sargan
    statistic divides by half the mean squared differenced residual over the 891 level
    observations; the mean squared level residual (the fixed effect inside) gives 137.01."""
    table = _table(printed, "system_onestep_robust_small")
    fit = _system(abdata)
    _check(fit, table, {"_con": "_cons"}, system=True)
    _check_tests(fit, table)

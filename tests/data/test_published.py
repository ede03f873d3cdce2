"""Published tables: schema rules, transcription against the source texts, conversion to results."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data.errors import DataError
from data.published import (
    INDICATOR_TERMS,
    PUBLISHED_COLUMNS,
    PUBLISHED_SOURCES,
    RESULTS_COLUMNS,
    load_published,
    published_studies,
    published_to_results,
    validate_published,
)

STUDIES = ["agglo2025", "fu2021", "hansen1999", "zhao2025", "zhu2025"]
REPO = Path(__file__).resolve().parents[2]
# Two-sided normal critical values for the 10%, 5% and 1% levels (stars 1, 2, 3).
CRITICAL = (1.6449, 1.9600, 2.5758)
# Sources that print significance stars (fu2021's news text states levels in words).
STARS_IN_PRINT = {"zhao2025", "zhu2025"}


def _shared_root() -> Path | None:
    candidates = [os.environ.get("PUBLISHED_SOURCES_ROOT"), REPO / "shared", "/work/shared"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "seeds").is_dir():
            return Path(candidate)
    return None


def _source_text(study: str) -> str:
    root = _shared_root()
    if root is None:
        pytest.skip("source texts (shared/seeds, shared/reference) are not available here")
    return "\n".join((root / rel).read_text(encoding="utf-8") for rel in PUBLISHED_SOURCES[study])


def _row(frame: pd.DataFrame, table: str, column: str, term: str) -> pd.Series:
    hit = frame[(frame["table"] == table) & (frame["column"] == column) & (frame["term"] == term)]
    assert len(hit) == 1, (table, column, term)
    return hit.iloc[0]


def _number_pattern(text: str) -> str:
    """A printed number that is not part of a longer number."""
    lead = r"(?<![\d.])" if text.startswith("-") else r"(?<![\d.\-])"
    return lead + re.escape(text) + r"(?![\d])"


# ---------------------------------------------------------------- schema


def test_studies_listed():
    assert published_studies() == STUDIES


def test_unknown_study_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="no published tables for study 'nosuch'.*zhao2025"):
        load_published("nosuch")


@pytest.mark.parametrize("study", STUDIES)
def test_schema(study):
    raw = load_published(study, as_printed=True)
    parsed = load_published(study)
    assert tuple(raw.columns) == PUBLISHED_COLUMNS
    assert (raw["study"] == study).all()
    assert not raw.duplicated(["study", "table", "column", "term"]).any()
    stars = parsed["stars"].dropna()
    assert stars.isin([0, 1, 2, 3]).all()
    for name in ("estimate", "printed", "ci_low", "ci_high", "p_value", "n_obs", "r_squared"):
        text = raw[name]
        parsed_ok = pd.to_numeric(text.where(text != "", None), errors="coerce").notna()
        assert ((text == "") | parsed_ok).all(), name
    assert parsed["printed_kind"].isin(["t", "se", "z", "p", ""]).all()


def test_agglo2025_is_header_only():
    frame = load_published("agglo2025")
    assert frame.empty and tuple(frame.columns) == PUBLISHED_COLUMNS


def test_row_counts():
    counts = {study: len(load_published(study)) for study in STUDIES}
    assert counts == {
        "agglo2025": 0,
        "fu2021": 10,
        "hansen1999": 94,
        "zhao2025": 203,
        "zhu2025": 125,
    }


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: pd.concat([f, f.iloc[[0]]]), "keys must be unique"),
        (lambda f: f.assign(stars=f["stars"].where(f.index != 3, "4")), "stars must be"),
        (lambda f: f.assign(estimate=f["estimate"].where(f.index != 2, "0.27x")), "numeric"),
        (lambda f: f.assign(printed_kind=f["printed_kind"].where(f.index != 80, "")), "kind"),
        (lambda f: f.assign(printed_kind=f["printed_kind"].where(f.index != 80, "sd")), "one of"),
        (lambda f: f.drop(columns="note"), "columns must be exactly"),
        (lambda f: f.assign(r_squared=f["r_squared"].where(f.index != 50, "1.2")), "r_squared"),
    ],
)
def test_validation_names_the_broken_rule(mutate, message):
    frame = load_published("zhao2025", as_printed=True).reset_index(drop=True)
    assert frame.loc[80, "printed_kind"] == "t"
    with pytest.raises(DataError, match=message):
        validate_published(mutate(frame).reset_index(drop=True))


# ---------------------------------------------------------------- against the source texts


def test_every_number_occurs_in_its_source():
    """Each estimate occurs in the source text as printed (digits and stars), with the number
    printed beneath it (t, SE or p) and its interval bounds right after it."""
    checked: dict[tuple[str, str], int] = {}
    for study in STUDIES:
        frame = load_published(study, as_printed=True)
        if frame.empty:
            continue
        text = _source_text(study)
        for _, row in frame.iterrows():
            if row["term"] in INDICATOR_TERMS:
                word = re.search(r"printed (\w+)", row["note"]).group(1)
                assert word in text, (study, row["table"], row["term"], word)
                continue
            if row["estimate"] == "":
                continue
            pattern = _number_pattern(row["estimate"])
            if study in STARS_IN_PRINT and row["stars"] not in ("", "0"):
                pattern += r"\*{" + row["stars"] + r"}(?!\*)"
            followers = [row[name] for name in ("printed", "ci_low", "ci_high") if row[name]]
            found = False
            for match in re.finditer(pattern, text):
                after = text[match.end() : match.end() + 60]
                if all(re.search(_number_pattern(f), after) for f in followers):
                    found = True
                    break
            assert found, (study, row["table"], row["column"], row["term"], row["estimate"])
            key = (study, row["table"])
            checked[key] = checked.get(key, 0) + 1
    assert sum(checked.values()) >= 25
    tables = {
        (study, table)
        for study in STUDIES
        for table, group in load_published(study).groupby("table")
        if group["estimate"].notna().any()
    }
    assert set(checked) == tables


def test_the_two_prints_of_zhao_table_2_disagree_only_where_noted():
    _source_text("zhao2025")  # skips where the source texts are not available
    chinese_path, ocr_path = (_shared_root() / rel for rel in PUBLISHED_SOURCES["zhao2025"])
    chinese, ocr = chinese_path.read_text(encoding="utf-8"), ocr_path.read_text(encoding="utf-8")
    frame = load_published("zhao2025", as_printed=True)
    table2 = frame[(frame["table"] == "2") & ~frame["term"].isin(INDICATOR_TERMS)]
    assert len(table2) == 27
    missing = [r["estimate"] for _, r in table2.iterrows() if r["estimate"] not in ocr]
    assert missing == ["2.5929"]
    assert "2.5920" in ocr and "2.5920" not in chinese and "2.5929" in chinese
    note = table2[table2["estimate"] == "2.5929"]["note"].item()
    assert "2.5920" in note


# ---------------------------------------------------------------- known cells


def test_known_cells():
    zhao = load_published("zhao2025")
    ai = _row(zhao, "2", "6", "AI")
    assert (ai["estimate"], ai["printed"], ai["printed_kind"], ai["stars"]) == (
        0.2720,
        5.59,
        "t",
        3,
    )
    assert (ai["n_obs"], ai["r_squared"], ai["outcome"]) == (3252, 0.854, "Inn")
    assert _row(zhao, "2", "3", "Constant")["estimate"] == 2.5929
    assert _row(zhao, "4", "2", "kp_rk_lm")["p_value"] == 0.0
    assert _row(zhao, "4", "2", "kp_rk_wald_f")["estimate"] == 332.769
    assert _row(zhao, "4", "2", "stock_yogo_10pct")["estimate"] == 16.38
    assert _row(zhao, "4", "3", "selection_ratio")["estimate"] == 3.1357
    assert _row(zhao, "4", "1", "IV")["outcome"] == "AI"
    assert [_row(zhao, "5", "1", f"gamma_{i}")["estimate"] for i in (1, 2)] == [3.6636, 6.1821]
    assert _row(zhao, "5", "2", "gamma_1")["estimate"] == 15.6482
    assert _row(zhao, "5", "3", "gamma_1")["estimate"] == 2.1637
    assert _row(zhao, "3", "5", "province_x_year_fe")["estimate"] == 1
    assert _row(zhao, "3", "4", "province_fe")["estimate"] == 0

    zhu = load_published("zhu2025")
    assert _row(zhu, "5", "3", "Treat_x_2019")["estimate"] == -0.285
    assert _row(zhu, "4", "4", "M_AI_firm")["estimate"] == 0.559
    assert _row(zhu, "facts", "firms", "top5_share_pct")["estimate"] == 41.5
    assert not (zhu["term"] == "Treat_x_2015").any()  # the reference year is not printed

    fu = load_published("fu2021")
    assert _row(fu, "region", "central", "AI")["stars"] == 3
    assert math.isnan(_row(fu, "region", "west", "AI")["estimate"])

    hansen = load_published("hansen1999")
    g1 = _row(hansen, "3", "1", "gamma_1")
    assert (g1["estimate"], g1["ci_low"], g1["ci_high"]) == (0.0157, 0.0139, 0.0181)
    g2 = _row(hansen, "3", "1", "gamma_2_ci99")
    assert (g2["ci_low"], g2["ci_high"]) == (0.5190, 0.5693)
    assert _row(hansen, "2", "double", "F_double")["p_value"] == 0.017


def test_t_converted_to_standard_error():
    results = published_to_results(load_published("zhao2025"))
    assert tuple(results.columns) == RESULTS_COLUMNS
    assert (results["source"] == "published").all()
    ai = results[(results["table"] == "2") & (results["column"] == "6") & (results["term"] == "AI")]
    assert ai["std_error"].item() == pytest.approx(0.2720 / 5.59)
    assert ai["std_error"].item() == pytest.approx(0.04866, abs=5e-6)
    assert ai["stat"].item() == 5.59
    assert ai["n_obs"].item() == 3252
    const = results[
        (results["table"] == "5") & (results["column"] == "1") & (results["term"] == "Constant")
    ]
    assert const["std_error"].item() == pytest.approx(3.927 / 4.74)
    kp = results[(results["table"] == "4") & (results["term"] == "kp_rk_lm")]
    assert kp["p_value"].item() == 0.0 and math.isnan(kp["std_error"].item())
    assert not results["term"].isin(INDICATOR_TERMS).any()


def test_standard_error_converted_to_stat():
    results = published_to_results(load_published("zhu2025"))
    net = results[
        (results["table"] == "5") & (results["column"] == "3") & (results["term"] == "Treat_x_2019")
    ]
    assert net["std_error"].item() == 0.073
    assert net["stat"].item() == pytest.approx(-0.285 / 0.073)
    firm = results[(results["table"] == "1") & (results["column"] == "1")]
    assert firm["stat"].item() == pytest.approx(12.5)
    zero_se = results[(results["table"] == "1") & (results["column"] == "2")]
    assert np.isnan(zero_se["std_error"].item()) and np.isnan(zero_se["stat"].item())
    with_flags = published_to_results(load_published("zhu2025"), include_indicators=True)
    assert len(with_flags) == len(load_published("zhu2025"))
    from_strings = published_to_results(load_published("zhu2025", as_printed=True))
    pd.testing.assert_frame_equal(from_strings, results)


def test_hansen_scaling_and_p_values():
    printed = published_to_results(load_published("hansen1999"))
    rescaled = published_to_results(load_published("hansen1999"), rescale=True)
    pick = (printed["table"] == "5") & (printed["column"] == "OLS")
    q2 = pick & (printed["term"] == "Q2_lag")
    q3 = pick & (printed["term"] == "Q3_lag")
    assert printed.loc[q2, "estimate"].item() == -0.198
    assert rescaled.loc[q2, "estimate"].item() == pytest.approx(-0.198e-3)
    assert rescaled.loc[q2, "std_error"].item() == pytest.approx(0.026e-3)
    assert rescaled.loc[q3, "estimate"].item() == pytest.approx(1.047e-6)
    cf = pick & (printed["term"] == "CF_regime2")
    assert rescaled.loc[cf, "estimate"].item() == 0.098
    white = (printed["column"] == "White") & (printed["term"] == "CF_regime3")
    assert printed.loc[white, "std_error"].item() == 0.031
    single = printed["term"] == "F_single"
    assert printed.loc[single, "p_value"].item() == 0.003


# ---------------------------------------------------------------- internal consistency


def _star_range(estimate: float, printed: float, kind: str, est_text: str, pr_text: str):
    """Smallest and largest |t| compatible with the rounding of the printed numbers."""

    def half_unit(text: str) -> float:
        decimals = len(text.split(".")[1]) if "." in text else 0
        return 0.5 * 10.0 ** (-decimals)

    if kind == "t":
        h = half_unit(pr_text)
        return max(abs(printed) - h, 0.0), abs(printed) + h
    he, hs = half_unit(est_text), half_unit(pr_text)
    low_se, high_se = max(printed - hs, 0.0), printed + hs
    low = max(abs(estimate) - he, 0.0) / high_se
    high = math.inf if low_se == 0 else (abs(estimate) + he) / low_se
    return low, high


@pytest.mark.parametrize("study", ["zhao2025", "zhu2025"])
def test_stars_agree_with_the_printed_t_or_se(study):
    raw = load_published(study, as_printed=True)
    parsed = load_published(study)
    tested = 0
    for i in parsed.index[parsed["printed_kind"].isin(["t", "se"])]:
        stars = int(parsed.at[i, "stars"])
        low, high = _star_range(
            parsed.at[i, "estimate"],
            parsed.at[i, "printed"],
            parsed.at[i, "printed_kind"],
            raw.at[i, "estimate"],
            raw.at[i, "printed"],
        )
        # the star level is feasible when the |t| interval meets [crit_s, crit_{s+1})
        lower_edge = 0.0 if stars == 0 else CRITICAL[stars - 1]
        upper_edge = math.inf if stars == 3 else CRITICAL[stars]
        assert high >= lower_edge and low < upper_edge, (study, raw.loc[i].to_dict())
        tested += 1
    assert tested > 50


def test_signs_of_t_and_estimate_agree_except_where_noted():
    frame = load_published("zhao2025")
    rows = frame[frame["printed_kind"] == "t"]
    disagree = rows[np.sign(rows["estimate"]) != np.sign(rows["printed"])]
    assert list(zip(disagree["table"], disagree["column"], disagree["term"])) == [
        ("5", "1", "Constant")
    ]
    assert "without a minus sign" in disagree["note"].item()


def test_zhao_sample_sizes_add_up():
    frame = load_published("zhao2025")
    n7 = frame[(frame["table"] == "7") & (frame["term"] == "AI")].set_index("column")["n_obs"]
    assert n7[["1", "2", "3"]].sum() == 3252
    assert n7[["4", "5"]].sum() == 3252
    assert n7[["6", "7"]].sum() == 3252
    assert _row(frame, "3", "1", "AI")["n_obs"] == 271 * 9
    assert _row(frame, "3", "4", "AI")["n_obs"] == 267 * 12
    moments = frame[frame["table"] == "1"].pivot(index="term", columns="column", values="estimate")
    assert len(moments) == 9
    assert ((moments["min"] <= moments["mean"]) & (moments["mean"] <= moments["max"])).all()
    assert (moments["sd"] > 0).all() and (moments["n"] == 3252).all()


def test_hansen_tables_are_coherent():
    frame = load_published("hansen1999")
    shares = frame[frame["table"] == "4"].groupby("column")["estimate"].sum()
    assert len(shares) == 14 and shares.between(99, 101).all()
    quantiles = frame[frame["table"] == "1"].pivot(
        index="term", columns="column", values="estimate"
    )
    order = ["min", "q25", "median", "q75", "max"]
    assert (quantiles[order].diff(axis=1).iloc[:, 1:] >= 0).all().all()
    tests = frame[frame["table"] == "2"]
    for col in ("single", "double", "triple"):
        crit = [_row(tests, "2", col, f"F_{col}_crit{lv}")["estimate"] for lv in (10, 5, 1)]
        assert crit == sorted(crit)
    for term in ("gamma_1", "gamma_2"):
        ci95, ci99 = _row(frame, "3", "1", term), _row(frame, "3", "1", f"{term}_ci99")
        assert ci99["ci_low"] <= ci95["ci_low"] <= ci95["estimate"] <= ci95["ci_high"]
        assert ci95["ci_high"] <= ci99["ci_high"]

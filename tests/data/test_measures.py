"""Location quotient and knowledge variety against hand computations and identities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy as scipy_entropy

from data.errors import DataError
from data.measures.knowledge_variety import ipc_section, variety_from_counts, variety_panel
from data.measures.location_quotient import location_quotient


def employment_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "city": ["a", "b", "a", "b"],
            "year": [2020, 2020, 2021, 2021],
            "ai_employment": [10.0, 10.0, 30.0, 10.0],
            "total_employment": [100.0, 300.0, 100.0, 300.0],
        }
    )


def test_location_quotient_by_hand():
    # 2020: national AI share 20/400 = 0.05; a: 0.10/0.05 = 2, b: (1/30)/0.05 = 2/3.
    # 2021: national share 40/400 = 0.10; a: 0.30/0.10 = 3, b: (1/30)/0.10 = 1/3.
    lq = location_quotient(employment_frame())
    np.testing.assert_allclose(lq, [2.0, 2 / 3, 3.0, 1 / 3])


def test_location_quotient_employment_weighted_mean_is_one():
    rng = np.random.default_rng(5)
    total = rng.uniform(1e4, 1e6, 60)
    frame = pd.DataFrame(
        {
            "year": np.repeat([2019, 2020, 2021], 20),
            "total_employment": total,
            "ai_employment": total * rng.uniform(0.001, 0.02, 60),
        }
    )
    frame["LQ"] = location_quotient(frame)
    weighted = frame.groupby("year").apply(
        lambda g: np.average(g["LQ"], weights=g["total_employment"]), include_groups=False
    )
    np.testing.assert_allclose(weighted, 1.0, rtol=1e-12)


def test_location_quotient_with_national_totals():
    national = pd.DataFrame(
        {"year": [2020, 2021], "ai_employment": [50.0, 80.0], "total_employment": [1e3, 1e3]}
    )
    lq = location_quotient(employment_frame(), national=national)
    np.testing.assert_allclose(lq, [0.10 / 0.05, (1 / 30) / 0.05, 0.30 / 0.08, (1 / 30) / 0.08])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ai_employment": [200.0, 10.0, 30.0, 10.0]}, "exceeds 'total_employment' at rows 1"),
        ({"total_employment": [100.0, 0.0, 100.0, 300.0]}, "not positive at rows 2"),
        ({"ai_employment": [10.0, -1.0, 30.0, 10.0]}, "negative at rows 2"),
        ({"ai_employment": [10.0, 10.0, np.nan, 10.0]}, "non-numeric values at rows 3"),
    ],
)
def test_location_quotient_rejects_bad_rows(change, message):
    frame = employment_frame().assign(**change)
    with pytest.raises(DataError, match=message):
        location_quotient(frame)


def test_location_quotient_names_missing_column():
    with pytest.raises(DataError, match="missing column 'total_employment'"):
        location_quotient(employment_frame().drop(columns="total_employment"))


def test_variety_by_hand():
    # Four equal classes in two sections: UV = 1 bit, RV = 1 bit, entropy = 2 bits.
    result = variety_from_counts([5, 5, 5, 5], ["A", "A", "B", "B"])
    assert result == pytest.approx(
        {"unrelated_variety": 1.0, "related_variety": 1.0, "entropy": 2.0}
    )
    # p = (1/4, 1/4, 1/2): P_A = P_B = 1/2, UV = 1; H_A = 1, H_B = 0, RV = 1/2; entropy 1.5.
    result = variety_from_counts([2, 2, 4], ["A", "A", "B"])
    assert result == pytest.approx(
        {"unrelated_variety": 1.0, "related_variety": 0.5, "entropy": 1.5}
    )
    # Everything in one class: no variety at all.
    assert variety_from_counts([0, 7, 0], ["A", "A", "B"]) == pytest.approx(
        {"unrelated_variety": 0.0, "related_variety": 0.0, "entropy": 0.0}
    )


def random_patents(seed: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    classes = [f"{s}{k:02d}X" for s in "ABCDEFGH" for k in range(5)]
    rows = []
    for city in ("c1", "c2", "c3"):
        for year in (2020, 2021):
            counts = rng.poisson(rng.gamma(0.6, 20, len(classes)))
            counts[rng.integers(len(classes))] += 1
            rows += [(city, year, c, n) for c, n in zip(classes, counts)]
    return pd.DataFrame(rows, columns=["city", "year", "ipc_class", "count"])


def test_variety_decomposition_identity_and_peer_entropy():
    patents = random_patents()
    panel = variety_panel(patents)
    np.testing.assert_allclose(
        panel["related_variety"] + panel["unrelated_variety"], panel["entropy"], rtol=1e-12
    )
    for (city, year), group in patents.groupby(["city", "year"]):
        row = panel[(panel["city"] == city) & (panel["year"] == year)].iloc[0]
        assert row["entropy"] == pytest.approx(scipy_entropy(group["count"], base=2), rel=1e-12)
        section_counts = group.groupby(group["ipc_class"].map(ipc_section))["count"].sum()
        assert row["unrelated_variety"] == pytest.approx(
            scipy_entropy(section_counts, base=2), rel=1e-12
        )
        scalar = variety_from_counts(group["count"], group["ipc_class"].map(ipc_section))
        assert row["related_variety"] == pytest.approx(scalar["related_variety"], rel=1e-12)
        assert row["patents"] == group["count"].sum()


def test_variety_ignores_listed_zero_classes():
    patents = random_patents()
    with_zeros = variety_panel(patents)
    without = variety_panel(patents[patents["count"] > 0])
    pd.testing.assert_frame_equal(with_zeros, without)


def test_variety_rejects_bad_counts():
    patents = random_patents()
    patents.loc[3, "count"] = -1
    with pytest.raises(DataError, match="rows 4 are not"):
        variety_panel(patents)
    repeated = pd.concat([random_patents().iloc[:2], random_patents().iloc[:1]])
    with pytest.raises(DataError, match="repeated"):
        variety_panel(repeated)
    empty = random_patents().assign(count=0)
    with pytest.raises(DataError, match="every class count is zero"):
        variety_panel(empty)

"""Table 1 exported as variable x statistic, the published number beside the data's."""

from __future__ import annotations

import pandas as pd

from inference.report.export import write_moments


def test_table_one_exports_published_beside_data(tmp_path):
    rows = [
        ("Inn", "n", "published", 3252.0), ("Inn", "n", "frequentist", 3252.0),
        ("Inn", "mean", "published", 7.621), ("Inn", "mean", "frequentist", 7.6213),
        ("AI", "mean", "published", 4.859), ("AI", "mean", "frequentist", 4.8801),
        ("AI", "median", "frequentist", 4.906),
    ]
    results = pd.DataFrame([{"table": "1", "term": t, "column": c, "source": s, "estimate": v}
                            for t, c, s, v in rows])
    tex, md = write_moments(results, tmp_path, "SYNTHETIC (test)")
    text = md.read_text()
    assert "| Inn | P 3252<br>D 3252 | P 7.621<br>D 7.621 |" in text
    assert "| AI |  | P 4.859<br>D 4.880 | D 4.906 |" in text
    assert "SYNTHETIC (test)" in text
    latex = tex.read_text()
    assert r"\toprule" in latex and "Inn [P] & 3252 & 7.621 &" in latex
    assert write_moments(results[results["table"] == "2"], tmp_path / "none", "x") == []

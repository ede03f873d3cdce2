"""The report draws a posterior predictive check for every saved fit with replicates: one
figure per fit (all its replicated variables), titled with the data label, and the
p-values in words."""

from __future__ import annotations

import html
import re

import pytest

from inference.report import build_report
from tests.inference.report.fixture_runs import fixture_run


def _family_replicates() -> dict:
    """family -> InferenceData with posterior_predictive and observed_data, drawn by each
    family's own predictive function at known parameters."""
    from models.panel.marginal import add_observed_data
    from models.panel.predictive import add_posterior_predictive
    from tests.models.heterogeneity import test_predictive as pooled
    from tests.models.heterogeneity.test_bayes import simulate_panel as pooled_panel
    from tests.models.iv import test_predictive as iv
    from tests.models.mediation import test_predictive as mediation
    from tests.models.panel import test_predictive as twfe
    from tests.models.threshold import test_predictive as threshold
    from tests.models.threshold.test_bayes import simulate_panel as threshold_panel

    design, eta = twfe._count_panel(3, zero_share=0.3)
    counts = twfe._point_fit(design, {**twfe._additive_truth(design, eta), "alpha": 3.0})
    add_posterior_predictive(counts, design, seed=1, likelihood="negbin")
    add_observed_data(counts, design)
    return {
        "threshold": threshold._sharp(threshold_panel(n_units=60, seed=3))[0],
        "iv": iv._at_truth(iv.simulate(1))[0],
        "mediation": mediation._at_truth(mediation.simulate(1))[0],
        "pooled": pooled._at_truth(pooled_panel(seed=21), sigma=0.5)[0],
        "negbin": counts,
    }


@pytest.fixture(scope="module")
def families() -> dict:
    return _family_replicates()


@pytest.fixture(scope="module")
def ppc_run(tmp_path_factory, families):
    """A fixture run of zhao2025 whose first posteriors carry each family's replicates."""
    import arviz as az

    folder = fixture_run("zhao2025", tmp_path_factory.mktemp("ppc"))
    files = sorted(folder.glob("posterior_table*.nc"))
    assigned = {}
    for (family, source), path in zip(families.items(), files, strict=False):
        idata = az.from_netcdf(path)
        idata.posterior = idata.posterior.load()
        idata.add_groups({"posterior_predictive": source.posterior_predictive,
                          "observed_data": source.observed_data})
        temporary = path.with_suffix(".tmp")
        idata.to_netcdf(str(temporary))
        temporary.replace(path)
        assigned[family] = path
    build_report("zhao2025", folder, progress=lambda _m: None)
    return folder, assigned


def _cell(path) -> str:
    table, column = re.match(r"posterior_table(.+?)_col([^_.]+)", path.name).groups()
    return f"table {table} column {column}"


def _png_width(uri: str) -> int:
    import base64
    import struct

    data = base64.b64decode(uri.split(",", 1)[1])
    return struct.unpack(">I", data[16:20])[0]


def test_each_family_gets_one_figure_with_a_panel_per_replicated_variable(families):
    from inference.report.figures import ppc_plot

    widths = {family: _png_width(ppc_plot(idata, f"{family} (SYNTHETIC data)"))
              for family, idata in families.items()}
    # 6 inches at 80 dpi for one variable; 10 inches for IV (y, x) and mediation (y, m1, m2).
    assert widths == {"threshold": 480, "iv": 800, "mediation": 800, "pooled": 480,
                      "negbin": 480}


def test_the_summary_names_what_is_not_reproduced(families):
    from inference.report.figures import ppc_summary

    words = {family: ppc_summary(idata) for family, idata in families.items()}
    assert "Every statistic is within the replicates' range." in words["pooled"]
    assert "Not reproduced: " in words["negbin"]
    assert "share of zeros of n (" in words["negbin"].split("Not reproduced: ")[1]
    for family in ("iv", "mediation", "threshold"):
        # Flat-prior effects: the note on the sd comes only with an sd above the data's.
        assert ("flat prior" in words[family]) == ("the sd of" in words[family])
    assert all(w.count("<b>") == n for w, n in zip(
        words.values(), (1, 2, 3, 1, 1), strict=True))


@pytest.mark.slow
def test_every_fit_with_replicates_gets_a_titled_ppc_figure(ppc_run):
    folder, assigned = ppc_run
    page = html.unescape((folder / "index.html").read_text(encoding="utf-8"))
    captions = re.findall(r"<figcaption>(posterior predictive check[^<]*)</figcaption>", page)
    assert len(captions) == len(assigned) == 5
    for path in assigned.values():
        assert f"posterior predictive check, {_cell(path)} (SYNTHETIC data)" in captions
    assert "No saved posterior holds posterior predictive draws" not in page


@pytest.mark.slow
def test_p_values_are_in_words_for_every_replicated_variable(ppc_run):
    folder, assigned = ppc_run
    page = html.unescape((folder / "index.html").read_text(encoding="utf-8"))
    summaries = re.findall(r"<p class='ppc'>(.*?)</p>", page)
    assert len(summaries) == 5
    by_text = "\n".join(summaries)
    for variable in ("<b>y</b>", "<b>x</b>", "<b>m1</b>", "<b>m2</b>", "<b>n</b>"):
        assert variable in by_text
    # The zero-inflated counts: the share of zeros is not reproduced, with its numbers.
    counts = next(s for s in summaries if "<b>n</b>" in s)
    assert "Not reproduced: " in counts
    assert "share of zeros of n (" in counts.split("Not reproduced: ")[1]
    match = re.search(r"share of zeros of n \(([0-9.]+)\) lies above that of (\d+)%", counts)
    assert match and float(match.group(1)) > 0.3 and int(match.group(2)) >= 98
    # Data drawn from the model at its parameters: nothing flagged.
    iv_text = next(s for s in summaries if "<b>x</b>" in s)
    assert "Every statistic is within the replicates' range." in iv_text


def test_no_replicates_says_so(built_runs):
    page = (built_runs["zhao2025"] / "index.html").read_text(encoding="utf-8")
    assert "No saved posterior holds posterior predictive draws" in page
    assert page.count("posterior predictive check, table") == 0

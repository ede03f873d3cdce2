"""The report page: rebuilt from a run folder without sampling, one self-contained file, the
paper's layout with three neighbours per published cell, convergence in words, exports."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import pandas as pd
import pytest

from inference.claims import load_claims
from inference.cli import main
from inference.report import build_report, load_run
from inference.report.sections import SECTION_BUILDERS, register_section, section_for
from tests.inference.report.fixture_runs import fixture_run


class Cells(HTMLParser):
    """Collects every published cell of the paper-layout tables with the text of its parts."""

    def __init__(self):
        super().__init__()
        self.cells, self._cell, self._part, self.images, self.links = [], None, None, [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "td" and "cell" in classes and "published" in classes:
            self._cell = {"column": attrs.get("data-column"), "term": attrs.get("data-term")}
        elif tag == "div" and self._cell is not None and classes:
            self._part = classes[0]
            self._cell.setdefault(self._part, "")
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag in ("link", "script", "a"):
            self.links.append(attrs.get("href") or attrs.get("src") or "")

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None
        elif tag == "div":
            self._part = None

    def handle_data(self, data):
        if self._cell is not None and self._part:
            self._cell[self._part] += data


def _parse(path) -> Cells:
    parser = Cells()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_rebuild_samples_nothing_and_is_fast(tmp_path, monkeypatch):
    import nutpie
    import pymc

    def refuse(*_args, **_kwargs):
        raise AssertionError("the report must not sample")

    monkeypatch.setattr(pymc, "sample", refuse)
    monkeypatch.setattr(nutpie, "sample", refuse)
    import models.bayes.sampler as sampler

    for name in dir(sampler):
        if name.startswith(("sample", "run")) and callable(getattr(sampler, name)):
            monkeypatch.setattr(sampler, name, refuse)
    folder = fixture_run("zhao2025", tmp_path / "run")
    started = time.perf_counter()
    page = build_report("zhao2025", folder, tmp_path / "rebuilt", progress=lambda _m: None)
    elapsed = time.perf_counter() - started
    assert elapsed < 30, f"rebuild took {elapsed:.1f} s"
    assert page == tmp_path / "rebuilt" / "index.html" and page.stat().st_size > 50_000
    assert (tmp_path / "rebuilt" / "claims.csv").exists()


def test_every_published_cell_has_frequentist_and_bayesian_neighbours(built_runs):
    cells = _parse(built_runs["zhao2025"] / "index.html").cells
    published = pd.read_csv(built_runs["zhao2025"] / "results.csv", dtype=str)
    published = published[published["source"] == "published"]
    assert len(cells) >= len(published) - 5  # Table 1 moments and coefficient cells
    for cell in cells:
        assert cell.get("pub", "").strip(" P"), cell
        assert cell.get("freq", "").strip(" FD"), cell
        if "bayes" in cell or "bayes unconverged" in cell:
            assert cell.get("bayes", "").strip(" B"), cell
    coefficient_cells = [c for c in cells if "bayes" in c]
    assert len(coefficient_cells) > 60
    assert all(re.search(r"\d", c["bayes"]) or "no posterior" in c["bayes"]
               or "not a parameter" in c["bayes"] for c in coefficient_cells)


def test_page_is_one_file_without_network(built_runs):
    for folder in built_runs.values():
        parsed = _parse(folder / "index.html")
        text = (folder / "index.html").read_text(encoding="utf-8")
        assert parsed.images and all(src.startswith("data:image/png;base64,")
                                     for src in parsed.images)
        assert all(link.startswith(("#", "data:")) for link in parsed.links), parsed.links
        assert "http://" not in text and "https://" not in text


def test_summary_banner_toc_and_data_label(built_runs, user_data_run):
    text = (built_runs["zhao2025"] / "index.html").read_text(encoding="utf-8")
    assert "id='synthetic-banner'" in text and "SYNTHETIC" in text
    assert text.index("<nav class='toc'>") < text.index("id='summary'") < text.index("id='claims'")
    for table in ("1", "2", "3", "4", "5", "6", "7"):
        assert f"href='#table-{table}'" in text and f"id='table-{table}'" in text
    user = (user_data_run / "index.html").read_text(encoding="utf-8")
    assert "synthetic-banner" not in user and "user data: my_provinces.csv" in user


def test_unconverged_fit_is_said_in_words_and_struck(built_runs):
    text = (built_runs["zhao2025"] / "index.html").read_text(encoding="utf-8")
    verdict = re.search(r"id='convergence-verdict'>([^<]+)", text).group(1)
    assert "did NOT converge" in verdict and verdict.startswith("1 of ")
    table_2 = text[text.index("id='table-2'"):]
    cell = re.search(r"data-column='1' data-term='AI'>(.*?)</td>", table_2)
    assert "bayes unconverged" in cell.group(1) and "NOT CONVERGED" in cell.group(1)
    assert "R-hat 1.050" in cell.group(1)


def test_table_one_is_variable_by_statistic(built_runs):
    text = (built_runs["zhao2025"] / "index.html").read_text(encoding="utf-8")
    table = re.search(r"<table class='paper moments'.*?</table>", text).group(0)
    header = re.findall(r"<th>([^<]+)</th>", table.split("</tr>")[0])
    assert header[:4] == ["variable", "n", "mean", "sd"]
    rows = re.findall(r"<td class='term'>([^<]+)</td>", table)
    assert rows == ["Inn", "AI", "Va", "Ind", "Eco", "Huc", "Edu", "Fis", "Gov"]


def test_claims_ledger_first_with_one_row_per_claim(built_runs):
    for study in ("zhao2025", "zhu2025", "fu2021", "agglo2025"):
        claims = pd.read_csv(built_runs[study] / "claims.csv")
        expected = load_claims(study)
        assert len(expected) >= 3 and list(claims["claim_id"]) == [c.id for c in expected]
        assert claims["probability"].notna().all(), claims
        # Every draw comes from a saved posterior (columns such as region_pooled included),
        # not from the normal approximation.
        assert claims["method"].str.startswith("posterior draws").all(), claims["method"]
        assert claims["verdict"].str.contains("checks the workflow, not China").all()
        text = (built_runs[study] / "index.html").read_text(encoding="utf-8")
        assert text.count("<tr class='claim'") == len(expected)


def test_figures_sit_in_their_tables(built_runs):
    text = (built_runs["zhao2025"] / "index.html").read_text(encoding="utf-8")
    sections = dict(re.findall(r"<section id='([^']+)'>(.*?)</section>", text))
    assert "alt='group slopes, table 7 column region_pooled'" in sections["table-7"]
    assert "alt='lr curve table5 col1 (SYNTHETIC data)'" in sections["table-5"]
    assert "alt='specification curve of AI'" in sections["key-coefficient"]
    assert "alt='forest plot of AI'" in sections["key-coefficient"]
    assert "rank plots of the key parameter of every fit" in sections["diagnostics"]
    assert "trace of slope, table 2 column 1" in sections["diagnostics"]


def test_tables_exported_as_latex_and_markdown(built_runs):
    tables = built_runs["zhao2025"] / "tables"
    tex = (tables / "table_2.tex").read_text(encoding="utf-8")
    assert r"\toprule" in tex and r"\bottomrule" in tex and "AI [P]" in tex
    assert "0.3309***" in tex
    md = (tables / "table_2.md").read_text(encoding="utf-8")
    assert md.splitlines()[2].startswith("| term | (1) | (2)")
    assert "SYNTHETIC" in md and "SYNTHETIC" in tex
    # Column 1 of the fixture's Table 2 did not converge: its exported numbers say so.
    ai_row = next(line for line in md.splitlines() if line.startswith("| AI |"))
    first, second = ai_row.split(" | ")[1:3]
    assert "B NOT CONVERGED: " in first and "NOT CONVERGED" not in second


def test_provenance_names_data_seed_and_versions(built_runs):
    text = (built_runs["zhao2025"] / "index.html").read_text(encoding="utf-8")
    provenance = text[text.index("id='provenance'"):]
    for needle in ("data file sha256", "f" * 64, "package versions", "pymc", "fixture_twfe",
                   "normal(0, 10)"):
        assert needle in provenance


def test_a_new_kind_plugs_in_through_the_registry(tmp_path):
    assert section_for("no_such_kind").__name__ == "grid_section"

    @register_section("fixture_kind")
    def builder(context, table, columns):
        return "<p id='fixture-kind'>plugged</p>"

    try:
        assert section_for("fixture_kind") is builder
    finally:
        SECTION_BUILDERS.pop("fixture_kind")


def test_rows_of_a_new_family_are_rendered(tmp_path):
    folder = fixture_run("fu2021", tmp_path / "run")
    results = pd.read_csv(folder / "results.csv", dtype={"table": str, "column": str})
    extra = pd.DataFrame([{"study": "fu2021", "table": "mediation", "column": "1",
                           "term": "indirect_X", "source": "bayesian", "estimate": 0.0123,
                           "std_error": 0.002, "ci_low": 0.009, "ci_high": 0.016,
                           "prob_positive": 1.0, "r_hat": 1.0, "ess_bulk": 1500.0,
                           "data_label": "SYNTHETIC", "note": ""}])
    pd.concat([results, extra]).to_csv(folder / "results.csv", index=False)
    text = build_report("fu2021", folder, progress=lambda _m: None).read_text(encoding="utf-8")
    assert "id='table-mediation'" in text and "0.0123 (sd 0.0020)" in text


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "holds no results.csv"),
])
def test_bad_folder_is_one_clear_error(tmp_path, capsys, make, message):
    folder = make(tmp_path)
    assert main(["report", "zhao2025", "--from", str(folder)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(folder) in err and "Traceback" not in err


def test_a_run_of_another_study_is_refused(built_runs, capsys):
    assert main(["report", "zhao2025", "--from", str(built_runs["fu2021"])]) == 2
    assert "a run of study 'fu2021', not 'zhao2025'" in capsys.readouterr().err


def test_run_writes_run_json_and_the_same_page(user_data_run, tmp_path):
    bundle = load_run(user_data_run)
    assert bundle.meta["frequentist_only"] is True and bundle.synthetic is False
    assert bundle.meta["data_sha256"] and len(bundle.meta["data_sha256"]) == 64
    rebuilt = build_report("fu2021", user_data_run, tmp_path, progress=lambda _m: None)
    strip = re.compile(r"report built.*|<tr><th>run folder</th>.*?</tr>")
    original = strip.sub("", (user_data_run / "index.html").read_text(encoding="utf-8"))
    assert strip.sub("", rebuilt.read_text(encoding="utf-8")) == original

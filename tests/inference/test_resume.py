"""A rerun into the same folder reuses every Bayesian fit that finished, refits none of them,
and writes the same results.csv and prior_sensitivity.csv (the latter from posteriors read back,
their log-likelihood recomputed on load); an interrupted run resumes where it stopped."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import ClassVar

import arviz as az
import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import inference.runner as runner
from inference.estimators.base import Estimate
from inference.runner import RunOptions, run_study
from models.bayes.fit import PosteriorFit
from models.bayes.summary import summary_row


def _log_likelihood(posterior, data) -> xr.Dataset:
    residual = data["y"].values[None, None, :] - posterior["slope"].values[..., None]
    scale = posterior["sd"].values[..., None]
    values = -0.5 * np.log(2 * np.pi) - np.log(scale) - 0.5 * (residual / scale) ** 2
    return xr.Dataset({"y": (("chain", "draw", "obs"), values)},
                      coords={"chain": posterior.chain, "draw": posterior.draw})


@dataclass(frozen=True, eq=False)
class _DrawsFit(PosteriorFit):
    """A posterior of a slope and a scale drawn from normals, with the data, priors and a
    pointwise log-likelihood that the file leaves out: enough to save, summarise, reload and
    power-scale."""

    model_name: ClassVar[str] = "test_draws"

    def recomputed_on_load(self):
        return {"log_likelihood": ()}

    @classmethod
    def restore(cls, idata) -> None:
        idata.add_groups({"log_likelihood": _log_likelihood(idata.posterior,
                                                            idata.constant_data)})

    def _build_tidy(self, auxiliary: bool) -> pd.DataFrame:
        draws = self.idata.posterior["slope"].values
        return pd.DataFrame([summary_row(self.spec["term"], draws, 100, 0)])


class _CountingAdapter:
    """Stands in for every Bayesian adapter; counts fits and can stop the run at the n-th."""

    def __init__(self, stop_at: int | None = None):
        self.calls = 0
        self.stop_at = stop_at

    def __call__(self, sample, spec, settings) -> Estimate:
        self.calls += 1
        if self.stop_at is not None and self.calls == self.stop_at:
            raise KeyboardInterrupt
        # Draws fixed by the spec and seed, as a real fit's are.
        rng = np.random.default_rng([settings.seed, zlib.crc32(spec.key.encode())])
        idata = az.from_dict(posterior={"slope": rng.normal(0.3, 0.1, size=(2, 300)),
                                        "sd": np.exp(rng.normal(0.0, 0.1, size=(2, 300)))},
                             constant_data={"y": rng.normal(0.3, 1.0, size=40)},
                             sample_stats={"diverging": np.zeros((2, 300), dtype=bool)})
        idata.add_groups({"log_prior": idata.posterior.map(lambda v: -0.5 * v**2),
                          "log_likelihood": _log_likelihood(idata.posterior,
                                                            idata.constant_data)})
        term = spec.regressors[0]
        fit = _DrawsFit.record(idata, spec={"term": term}, priors={}, data_hash="x",
                               seed=settings.seed, times={})
        tidy = fit.tidy().drop(columns=["divergences"]).assign(table=spec.table,
                                                               column=spec.column, note="")
        # A figure with its numbers beside it, as the mediation adapter draws.
        figure = settings.out_dir / f"curve_table{spec.table}_col{spec.column}.png"
        figure.write_bytes(b"\x89PNG figure")
        figure.with_suffix(".csv").write_text("rho,indirect\n0,0.1\n")
        return Estimate(tidy, fits={"": fit}, figures=[figure])


@pytest.fixture
def counting(monkeypatch):
    def install(stop_at=None):
        adapter = _CountingAdapter(stop_at)
        monkeypatch.setattr(runner, "BAYESIAN", {k: adapter for k in runner.BAYESIAN})
        return adapter
    return install


def _run(out, **options):
    return run_study("fu2021", RunOptions(out=out, seed=3, quick=True, **options),
                     progress=lambda _: None)


def test_a_rerun_reuses_every_finished_fit(tmp_path, counting):
    out = tmp_path / "run"
    first = counting()
    _run(out)
    assert first.calls > 3
    before = (out / "results.csv").read_bytes()
    sensitivity = (out / "prior_sensitivity.csv").read_bytes()
    assert pd.read_csv(out / "prior_sensitivity.csv")["prior_sensitivity"].notna().all()
    for path in out.glob("posterior_*.nc"):
        with h5py.File(path, "r") as handle:
            assert "log_likelihood" not in handle, path.name
    figures = sorted(p.name for p in out.glob("curve_*"))
    assert figures
    second = counting()
    outcome = _run(out)
    assert second.calls == 0
    assert (out / "results.csv").read_bytes() == before
    assert (out / "prior_sensitivity.csv").read_bytes() == sensitivity
    # The reused fits keep the figures (and the numbers beside them) their adapter drew.
    assert sorted(p.name for p in out.glob("curve_*")) == figures
    assert {p.name for p in outcome.figures} >= {f for f in figures if f.endswith(".png")}
    # Another seed is another fit: nothing reused.
    third = counting()
    run_study("fu2021", RunOptions(out=out, seed=4, quick=True), progress=lambda _: None)
    assert third.calls == first.calls


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, counting):
    out = tmp_path / "run"
    complete = counting()
    _run(tmp_path / "reference")
    total = complete.calls
    counting(stop_at=3)
    with pytest.raises(KeyboardInterrupt):
        _run(out)
    assert not (out / "results.csv").exists()
    resumed = counting()
    _run(out)
    assert resumed.calls == total - 2  # the two fits that finished are not refitted
    assert (out / "results.csv").read_bytes() == (tmp_path / "reference" /
                                                  "results.csv").read_bytes()


def test_a_frequentist_only_rerun_leaves_no_stale_posterior(tmp_path, counting):
    out = tmp_path / "run"
    counting()
    _run(out)
    assert list(out.glob("posterior_*.nc"))
    _run(out, frequentist_only=True)
    assert not list(out.glob("posterior_*.nc"))
    results = pd.read_csv(out / "results.csv")
    assert "bayesian" not in set(results["source"])


def test_the_run_says_where_its_time_went(tmp_path, counting):
    lines = []
    counting()
    outcome = run_study("fu2021", RunOptions(out=tmp_path / "run", seed=3, quick=True),
                        progress=lines.append)
    summary = lines[-1]
    assert "s in all: frequentist" in summary and "Bayesian" in summary and "report" in summary
    timings = outcome.timings
    assert timings["frequentist_s"] > 0 and timings["writing_s"] > 0
    assert timings["frequentist_s"] + timings["bayesian_s"] <= timings["total_s"]

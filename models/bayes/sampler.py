"""NUTS for a PyMC model with the sampler chosen by name: nutpie (default), PyMC or numpyro.

Measured on the project's panel models (``benchmarks/bench_bayes_twfe.py``): nutpie's numba
backend samples these small, smooth posteriors 10-50x faster per second than PyMC's default
NUTS on the PyTensor C backend, which runs without BLAS here. numpyro is used only when asked.
nutpie's model is compiled by :func:`models.bayes.nutpie_compile.compile_model`, whose code is
cached on disk across processes.
"""

from __future__ import annotations

import time as _time
from typing import Any

SAMPLERS = ("nutpie", "pymc", "numpyro")

_THREADPOOLS: list[Any] = []


def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, found once: scanning them costs
    6-23 ms a call, as much as a whole small model's sampling. By the first sampling run the
    model is compiled, so every BLAS the project uses is loaded."""
    if not _THREADPOOLS:
        from threadpoolctl import ThreadpoolController

        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0]


def run_nutpie(compiled, draws: int, tune: int, chains: int, seed: int, progressbar: bool,
               target_accept: float | None = None, low_rank_mass_matrix: bool = False
               ) -> tuple[Any, float]:
    """Sample a nutpie-compiled model (warm-up not kept); returns the InferenceData and the
    sampling wall time, which includes building the InferenceData. Every nutpie run of the
    project goes through here."""
    import nutpie

    from models.bayes.trace import raw_trace_to_inference_data

    extra: dict[str, Any] = {} if target_accept is None else {"target_accept": target_accept}
    if low_rank_mass_matrix:
        extra["low_rank_modified_mass_matrix"] = True
    start = _time.perf_counter()
    # Chains run in parallel threads; a multi-threaded BLAS inside each gradient (small
    # Cholesky factors) oversubscribes the cores: 45x slower measured on 2 cores.
    with _blas_controller().limit(limits=1):
        raw = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                            progress_bar=progressbar, save_warmup=False,
                            return_raw_trace=True, **extra)
    idata = raw_trace_to_inference_data(raw, compiled.coords)
    check_complete(idata, draws, chains)
    return idata, _time.perf_counter() - start


def check_complete(idata, draws: int, chains: int) -> None:
    """Refuse a trace with fewer chains or draws than asked for.

    nutpie returns what it has when sampling is interrupted (Ctrl-C): a posterior cut short
    would otherwise be summarised and saved as if complete, under a spec that records the
    draws asked for.
    """
    posterior = idata.posterior
    got_chains, got_draws = posterior.sizes.get("chain", 0), posterior.sizes.get("draw", 0)
    if got_chains != chains or got_draws != draws:
        raise KeyboardInterrupt(
            f"sampling stopped early: {got_chains} chain(s) x {got_draws} draws of the "
            f"{chains} x {draws} asked for")


def sample_model(
    model,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    progressbar: bool,
    target_accept: float | None,
    low_rank_mass_matrix: bool = False,
) -> tuple[Any, dict[str, float]]:
    """Draw ``chains`` x ``draws`` NUTS draws after ``tune`` adaptation steps.

    ``low_rank_mass_matrix`` (nutpie only) adapts a diagonal mass matrix plus a low-rank
    correction learnt from the draws' gradients, for posteriors with strong linear correlations
    that a diagonal metric cannot undo.

    Returns the InferenceData (without warm-up) and the wall times ``compile_s`` and
    ``sampling_s``.
    """
    import pymc as pm

    if low_rank_mass_matrix and sampler != "nutpie":
        raise ValueError("A low-rank mass matrix needs the nutpie sampler.")

    times: dict[str, float] = {}
    if sampler == "nutpie":
        from models.bayes.nutpie_compile import compile_model

        start = _time.perf_counter()
        compiled = compile_model(model)
        times["compile_s"] = _time.perf_counter() - start
        idata, times["sampling_s"] = run_nutpie(compiled, draws, tune, chains, seed, progressbar,
                                                target_accept, low_rank_mass_matrix)
        return idata, times
    if sampler in ("pymc", "numpyro"):
        kwargs: dict[str, Any] = {}
        if sampler == "numpyro":
            kwargs["nuts_sampler"] = "numpyro"
        if target_accept is not None:
            kwargs["target_accept"] = target_accept
        start = _time.perf_counter()
        with model:
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=seed,
                progressbar=progressbar,
                compute_convergence_checks=False,
                **kwargs,
            )
        total = _time.perf_counter() - start
        sampling = float(idata.posterior.attrs.get("sampling_time", total))
        times["compile_s"] = max(total - sampling, 0.0)
        times["sampling_s"] = sampling
        return idata, times
    raise ValueError(f"Unknown sampler {sampler!r}; use one of {SAMPLERS}.")

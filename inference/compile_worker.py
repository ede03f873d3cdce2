"""The compiling helper's process (:mod:`inference.compile_ahead`): every Bayesian
specification of a study fitted briefly into a folder that is thrown away, so that the models'
compiled code lands in the disk caches before the run reaches them: first the first
specification of each kind in :data:`COMPILE_FIRST`, then the others from the last backwards.

    python -m inference.compile_worker '{"study": ..., "options": {...}, "out": DIR}'
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from inference.compile_ahead import REACHED, WORKING, read_index, write_index

# Enough to compile every piece a full fit compiles (model, expansion, post-processing
# kernels); the draws are discarded.
AHEAD_SAMPLING = {"draws": 20, "tune": 20, "chains": 1}
# Kinds whose models take far longer to compile than the rest: zhao2025's threshold models
# (0-3 thresholds) took 50-70 s on a cold cache against 5-30 s for any other specification.
# Compiled first, they are ready, or being finished by the helper while the run waits, when
# the run gets there; taken in turn backwards, the run reached them before the helper and
# both compiled them at once.
COMPILE_FIRST = ("threshold",)


def ahead_order(specs) -> list[int]:
    """The 1-based indices of ``specs`` in the helper's order: the first of each kind in
    :data:`COMPILE_FIRST`, in that order, then every other from the last backwards."""
    first = []
    for kind in COMPILE_FIRST:
        first += [i for i, spec in enumerate(specs, start=1) if spec.kind == kind][:1]
    return first + [i for i in range(len(specs), 0, -1) if i not in first]


def compile_study(source: str, options_fields: dict, out: Path, progress=print) -> list[str]:
    """Fit every Bayesian specification of the study briefly, in :func:`ahead_order`, so that
    their compiled models land in the disk caches, skipping those the run (which writes the
    index of the specification it is at to ``out/reached``; the helper writes its own to
    ``out/working``) has reached and stopping once it has reached all that are left; returns
    the keys of those that raised (a specification the run will report as not run)."""
    from inference.estimators import BAYESIAN, Settings
    from inference.runner import RunOptions, load_run_data, user_priors
    from inference.samples import prepare_sample

    options = RunOptions.from_fields({**options_fields, "compile_ahead": False})
    study, dataset, _ = load_run_data(source, options, progress=lambda _: None)
    settings = Settings(seed=options.seed, unit=study.unit, time=study.time,
                        quick=options.quick, sampling=dict(AHEAD_SAMPLING),
                        priors=user_priors(options), out_dir=out, synthetic=dataset.synthetic)
    failed = []
    order = ahead_order(study.specs)
    for position, index in enumerate(order):
        spec = study.specs[index - 1]
        bayesian = BAYESIAN.get(spec.kind)
        if not spec.bayes or bayesian is None or any(c not in dataset.frame for c in spec.columns):
            continue
        # Said before the run's position is read: a run reaching this one at the same time
        # then either finds the helper past it or sees it working and waits.
        write_index(out / WORKING, index)
        if index <= read_index(out / REACHED):
            write_index(out / WORKING, 0)
            if all(i <= read_index(out / REACHED) for i in order[position:]):
                break
            continue
        try:
            bayesian(prepare_sample(dataset.frame, spec), spec, settings)
            progress(f"compiled {spec.key}")
        except Exception as exc:  # noqa: BLE001 - the run reports it; the helper goes on
            failed.append(spec.key)
            progress(f"{spec.key}: {type(exc).__name__}: {exc}")
    write_index(out / WORKING, 0)
    return failed


if __name__ == "__main__":
    from inference.batch import quiet_libraries

    quiet_libraries()
    request = json.loads(sys.argv[1])
    compile_study(request["study"], request["options"], Path(request["out"]))

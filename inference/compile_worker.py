"""The compiling helper's process (:mod:`inference.compile_ahead`): every Bayesian
specification of a study fitted briefly, the last first, into a folder that is thrown away,
so that the models' compiled code lands in the disk caches before the run reaches them.

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


def compile_study(source: str, options_fields: dict, out: Path, progress=print) -> list[str]:
    """Fit every Bayesian specification of the study briefly, the last first, so that their
    compiled models land in the disk caches, until the run (which writes the index of the
    specification it is at to ``out/reached``; the helper writes its own to ``out/working``)
    has passed the next one; returns the keys of those that raised (a specification the run
    will report as not run)."""
    from inference.estimators import BAYESIAN, Settings
    from inference.runner import RunOptions, load_run_data, user_priors
    from inference.samples import prepare_sample

    options = RunOptions.from_fields({**options_fields, "compile_ahead": False})
    study, dataset, _ = load_run_data(source, options, progress=lambda _: None)
    settings = Settings(seed=options.seed, unit=study.unit, time=study.time,
                        quick=options.quick, sampling=dict(AHEAD_SAMPLING),
                        priors=user_priors(options), out_dir=out, synthetic=dataset.synthetic)
    failed = []
    for index, spec in reversed(list(enumerate(study.specs, start=1))):
        bayesian = BAYESIAN.get(spec.kind)
        if not spec.bayes or bayesian is None or any(c not in dataset.frame for c in spec.columns):
            continue
        # Said before the run's position is read: a run reaching this one at the same time
        # then either stops the helper here or sees it working and waits.
        write_index(out / WORKING, index)
        if index <= read_index(out / REACHED):
            write_index(out / WORKING, 0)
            break
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

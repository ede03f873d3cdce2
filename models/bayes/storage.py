"""How a posterior is written to netCDF and read back: compressed, and without what the model
recomputes exactly from what it stores.

Most of a posterior file used to be the pointwise log-likelihood (one value per draw and
observation: 4 x 1,000 x 3,252 values for zhao2025 Table 2) and, for the panel models, the unit
effects drawn after sampling (one per draw and unit). Both are functions of the stored draws,
the model's data (its ``constant_data`` group) and the seed, so a family may leave them out
(:meth:`models.bayes.fit.PosteriorFit.recomputed_on_load`) and recompute them when the file is
read (:meth:`~models.bayes.fit.PosteriorFit.restore`); :func:`load_posterior` does so and checks
the result against a fingerprint of the values at fit time (their sum and sum of squares per
variable), so a file whose recomputation would differ (other data, another generator) is
refused instead of silently giving other numbers. A family that leaves nothing out is saved as
before, its pointwise log-likelihood as float32.

Integers and booleans are written with zlib after a byte shuffle (indices and sampler flags
shrink 20-1000x). Floats are compressed only in arrays of at least ``COMPRESS_FLOATS_FROM``
values, i.e. a stored pointwise log-likelihood: MCMC draws gain 15-20% from zlib, and on the
many small arrays of a TWFE posterior the filter pipeline cost more than the bytes it saved
(one zhao2025 TWFE file: 0.12 s and 2.83 MB compressed throughout at level 1, 0.15 s at level
4, against 0.06-0.07 s and 3.5 MB this way). The file is written through the netCDF-C library
(``netcdf4``): h5netcdf's per-variable metadata handling in Python took 0.26-0.30 s for the
same file. Files are read through it too (:data:`ENGINE`): the 34 posteriors of a zhao2025 run,
three groups each, load in 1.1-1.3 s instead of 2.4-2.7 s.
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from models.bayes.provenance import write_atomically

ENGINE = "netcdf4"  # xarray's backend for writing and reading posterior files
ENCODING = {"zlib": True, "complevel": 1, "shuffle": True}
COMPRESS_FLOATS_FROM = 1 << 20
LEFT_OUT = "recomputed_on_load"  # attribute: {group: [variables] or [] for the whole group}
FINGERPRINT = "recomputed_fingerprint"  # attribute: {"group/variable": [sum, sum of squares]}
FIT_CLASS = "fit_class"  # attribute: "module:Class" whose ``restore`` recomputes them
# Sums of the recomputed values may differ from those at fit time by rounding alone.
FINGERPRINT_RTOL = 1e-9


def matrix_dataset(name: str, matrix: np.ndarray, columns, **attrs):
    """A ``constant_data`` group holding ``matrix`` (rows by named ``columns``) and its memory
    order: matrix products of a recomputation round alike only on arrays laid out alike."""
    import xarray as xr

    matrix = np.asarray(matrix)
    fortran = bool(matrix.flags["F_CONTIGUOUS"] and not matrix.flags["C_CONTIGUOUS"])
    return xr.Dataset({name: ((f"{name}_row", f"{name}_column"), matrix)},
                      coords={f"{name}_column": [str(c) for c in columns]},
                      attrs={**attrs, f"{name}_order": "F" if fortran else "C"})


def stored_matrix(dataset, name: str) -> np.ndarray:
    """The matrix :func:`matrix_dataset` stored, in its original memory order."""
    values = np.asarray(dataset[name].values)
    if dataset.attrs.get(f"{name}_order") == "F":
        return np.asfortranarray(values)
    return np.ascontiguousarray(values)


def fingerprint(values) -> list[float]:
    """Sum and sum of squares of an array, in float64."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    return [float(flat.sum()), float(flat @ flat)]


def _variables(idata, group: str, names) -> list[str]:
    dataset = getattr(idata, group)
    return list(names) if names else list(dataset.data_vars)


def write_posterior(idata, path: str | Path, attrs: Mapping[str, str],
                    left_out: Mapping[str, tuple[str, ...]] | None = None,
                    fit_class: str = "") -> Path:
    """Write ``idata`` to ``path`` (atomically, compressed) with ``attrs`` on every group,
    leaving out the variables of ``left_out`` (group -> variable names; an empty tuple: the
    whole group) that ``fit_class``'s ``restore`` recomputes; ``idata`` is left unchanged."""
    left_out = {g: tuple(v) for g, v in (left_out or {}).items() if g in idata.groups()}
    extra = {}
    if left_out:
        extra[LEFT_OUT] = json.dumps({g: list(v) for g, v in left_out.items()})
        extra[FINGERPRINT] = json.dumps({
            f"{g}/{name}": fingerprint(getattr(idata, g)[name].values)
            for g, names in left_out.items() for name in _variables(idata, g, names)})
        extra[FIT_CLASS] = fit_class
    groups = []
    for group in idata.groups():
        dataset = getattr(idata, group)
        if group in left_out:
            if not left_out[group]:
                continue
            dataset = dataset.drop_vars(list(left_out[group]))
        elif group == "log_likelihood":
            # Stored, it is most of the file; float32 moved LOO by 3e-5 in elpd (of -3175,
            # zhao2025 Table 2 column 6) and p_loo by 3e-5, far below the digits reported.
            dataset = dataset.astype(np.float32)
        dataset = dataset.copy()
        dataset.attrs = {**dataset.attrs, **attrs, **extra}
        groups.append((group, dataset))

    def write(target: Path) -> None:
        import xarray as xr

        # One tree written in one pass opens the file once; a to_netcdf per group reopened it
        # for each (0.25 s against 0.19 s for a TWFE fit of zhao2025, the same file on reload).
        tree = xr.DataTree.from_dict({f"/{group}": dataset for group, dataset in groups})
        encoding = {f"/{group}": {name: dict(ENCODING)
                                  for name, variable in dataset.variables.items()
                                  if _compressed(variable)}
                    for group, dataset in groups}
        tree.to_netcdf(target, engine=ENGINE, encoding=encoding)

    # netCDF warns about attributes it stores as strings; they are JSON by design.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return write_atomically(path, write)


def _compressed(variable) -> bool:
    kind = variable.dtype.kind
    return variable.ndim > 0 and (kind in "biu"
                                  or (kind == "f" and variable.size >= COMPRESS_FLOATS_FROM))


def _fit_class(path, name: str):
    module, _, attribute = name.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError):
        raise ValueError(f"{path}: its fit class {name} (which recomputes what the file leaves "
                         "out) is not installed") from None


def _open_groups(path: str | Path, groups):
    import arviz as az
    import h5py
    import xarray as xr

    with h5py.File(path, "r") as handle:
        present = [g for g in groups if g in handle]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return az.InferenceData(**{g: xr.open_dataset(path, group=g, engine=ENGINE).load()
                                   for g in present})


def load_posterior(path: str | Path, groups: tuple[str, ...] | None = None):
    """The InferenceData saved at ``path``, with everything its fit left out recomputed;
    with ``groups``, only those groups, read as stored (nothing recomputed), for readers that
    need no left-out variable (the posterior predictive check).

    Raises
    ------
    ValueError
        Naming the file and the variable when a recomputed variable does not match the
        fingerprint stored at fit time, or the fit class when it cannot be imported.
    """
    import arviz as az

    if groups is not None:
        return _open_groups(path, groups)
    idata = az.from_netcdf(str(path), engine=ENGINE)
    attrs = idata.posterior.attrs if "posterior" in idata.groups() else {}
    if LEFT_OUT not in attrs:
        return idata
    left_out = json.loads(attrs[LEFT_OUT])
    _fit_class(path, attrs[FIT_CLASS]).restore(idata)
    expected = json.loads(attrs[FINGERPRINT])
    for group, names in left_out.items():
        if group not in idata.groups():
            raise ValueError(f"{path}: the {group} group was not recomputed on load")
        for name in _variables(idata, group, names):
            want = expected.get(f"{group}/{name}")
            got = fingerprint(getattr(idata, group)[name].values)
            if want is None or not np.allclose(got, want, rtol=FINGERPRINT_RTOL, atol=0.0):
                raise ValueError(
                    f"{path}: {group}/{name} recomputed on load (sum {got[0]:.12g}) differs "
                    f"from the fit's (sum {want[0] if want else float('nan'):.12g}); the file "
                    f"needs the package versions it records ({attrs.get('versions', '?')})")
    return idata

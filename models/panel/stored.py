"""What a saved panel posterior leaves out and how it is recomputed on load.

With the unit effects integrated out (``unit_effects`` ``collapsed`` or ``marginalised``: the
Bayesian TWFE, the event study, the partial-pooling heterogeneity model), the unit effects are
drawn after sampling, one exact draw per posterior draw from their normal conditional
(:func:`models.panel.marginal.draw_unit_effects`, seeded by the fit's seed), and the pointwise
log-likelihood follows from them. Both are functions of the other posterior draws, the design
and the seed: the file stores the design (``constant_data``: outcome, raw and two-way demeaned
regressors, centred unit means, unit and period codes and labels) and leaves out
``unit_effect``, ``unit_offset`` and ``log_likelihood``, which
:func:`models.panel.marginal.restore_unit_effects` recomputes with the same function as at fit
time. On zhao2025 Table 2 column 6 that is 63 of the 65 MB of the file.
"""

from __future__ import annotations

import numpy as np

from models.panel.design import PanelDesign

LEFT_OUT = {"posterior": ("unit_effect", "unit_offset"), "log_likelihood": ()}
_DIMS = ("design_obs", "design_coef", "design_unit", "design_period")
_MATRICES = ("x_raw", "x_within", "unit_means")


def _fortran(array) -> bool:
    array = np.asarray(array)
    return bool(array.flags["F_CONTIGUOUS"] and not array.flags["C_CONTIGUOUS"])


def _matrix(data, name: str):
    values = np.asarray(data[f"design_{name}"].values, dtype=np.float64)
    fortran = str(data.attrs.get("design_fortran_order", "")).split(",")
    return np.asfortranarray(values) if name in fortran else np.ascontiguousarray(values)


def design_dataset(design: PanelDesign):
    """The ``constant_data`` group holding ``design`` whole."""
    import xarray as xr

    obs, coef, unit, period = _DIMS
    time_idx = (np.full(design.n_obs, -1) if design.time_idx is None
                else np.asarray(design.time_idx))
    return xr.Dataset(
        {"design_y": (obs, np.asarray(design.y, dtype=np.float64)),
         "design_x_raw": ((obs, coef), np.asarray(design.x_raw, dtype=np.float64)),
         "design_x_within": ((obs, coef), np.asarray(design.x_within, dtype=np.float64)),
         "design_x_mean": (coef, np.asarray(design.x_mean, dtype=np.float64)),
         "design_unit_means": ((unit, coef), np.asarray(design.unit_means, dtype=np.float64)),
         "design_unit_idx": (obs, np.asarray(design.unit_idx, dtype=np.int64)),
         "design_time_idx": (obs, time_idx.astype(np.int64))},
        coords={coef: list(design.regressors), unit: list(design.unit_labels),
                period: list(design.time_labels)},
        attrs={"design_outcome": design.outcome, "design_unit": design.unit,
               "design_time": design.time or "", "design_fe_rank": int(design.fe_rank),
               # Matrix products of the recomputation round alike only on arrays laid out
               # alike (C or Fortran order), so the order is restored too.
               "design_fortran_order": ",".join(
                   name for name in _MATRICES if _fortran(getattr(design, name)))})


def add_design_data(idata, design: PanelDesign) -> None:
    """Store ``design`` in ``idata``'s ``constant_data`` group (once)."""
    if "constant_data" not in idata.groups():
        idata.add_groups({"constant_data": design_dataset(design)})


def design_from_dataset(data) -> PanelDesign:
    """The :class:`PanelDesign` a ``constant_data`` group of :func:`design_dataset` holds."""
    obs, coef, unit, period = _DIMS
    has_time = bool(data.attrs["design_time"])
    idx = np.asarray(data["design_time_idx"].values, dtype=np.int64)
    return PanelDesign(
        outcome=str(data.attrs["design_outcome"]),
        regressors=tuple(str(v) for v in data[coef].values),
        unit=str(data.attrs["design_unit"]),
        time=str(data.attrs["design_time"]) if has_time else None,
        y=np.asarray(data["design_y"].values, dtype=np.float64),
        x_raw=_matrix(data, "x_raw"),
        x_within=_matrix(data, "x_within"),
        x_mean=np.asarray(data["design_x_mean"].values, dtype=np.float64),
        unit_means=_matrix(data, "unit_means"),
        unit_idx=np.asarray(data["design_unit_idx"].values, dtype=np.int64),
        time_idx=idx if has_time else None,
        unit_labels=tuple(str(v) for v in data[unit].values),
        time_labels=tuple(str(v) for v in data[period].values),
        fe_rank=int(data.attrs["design_fe_rank"]))


def unit_effects_left_out(idata, spec) -> dict[str, tuple[str, ...]]:
    """:data:`LEFT_OUT` for a fit whose unit effects were drawn after sampling and whose
    design is stored; nothing otherwise (sampled unit offsets are draws of the sampler)."""
    drawn = spec.get("unit_effects") in ("collapsed", "marginalised")
    stored = "constant_data" in idata.groups() and "design_y" in idata.constant_data
    if drawn and stored and "unit_effect" in idata.posterior:
        return dict(LEFT_OUT)
    return {}

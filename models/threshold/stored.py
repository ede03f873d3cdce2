"""What a saved threshold posterior leaves out and how it is recomputed on load.

The pointwise log-likelihood (one value per draw and transformed row, marginalised over the
thresholds: :func:`models.threshold.posterior.pointwise_loglik`) is 45 of the 48 MB of a
zhao2025 Table 5 file. It is a function of the slope and sigma draws, the data and the seed, so
the file stores the model's columns as given (``constant_data``, with the arguments of
:func:`models.threshold.data.prepare_threshold_data`) and leaves the group out; on load the
data are prepared again (their hash checked against the fit's), the conditionals of the
thresholds recomputed with the fit's seed and the pointwise values with the same function as at
fit time. A fit on candidate weights of the user's (``threshold_prior`` an array) keeps its
log-likelihood in the file.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from models.threshold.data import prepare_threshold_data, threshold_log_prior
from models.threshold.posterior import pointwise_loglik, recover_thresholds

ARGUMENTS = "threshold_arguments"  # attribute of constant_data: prepare_threshold_data's
ROW = "threshold_row"
# Seed stream of the conditional draws of the thresholds (as at fit time).
THRESHOLD_STREAM = 0x7E5


def data_dataset(data: pd.DataFrame, arguments: dict):
    """The ``constant_data`` group: the columns the model reads, as given, and ``arguments``
    (the keyword arguments of :func:`prepare_threshold_data` but ``data``)."""
    import xarray as xr

    names = [arguments["y"], *arguments["regime"], arguments["threshold"], *arguments["fixed"],
             arguments["unit"], arguments["period"]]
    columns = list(dict.fromkeys(names))
    variables = {}
    for name in columns:
        values = data[name].to_numpy()
        if values.dtype.kind == "O":
            values = values.astype(str)
        variables[f"column_{name}"] = (ROW, values)
    return xr.Dataset(variables, attrs={ARGUMENTS: json.dumps(arguments),
                                        "threshold_columns": json.dumps(columns)})


def prepared_data(constant_data):
    """The :class:`models.threshold.data.ThresholdData` of a stored ``constant_data`` group."""
    columns = json.loads(constant_data.attrs["threshold_columns"])
    frame = pd.DataFrame({name: constant_data[f"column_{name}"].values for name in columns})
    return prepare_threshold_data(frame, **json.loads(constant_data.attrs[ARGUMENTS]))


def restore_log_likelihood(idata) -> None:
    """Recompute the ``log_likelihood`` group of a loaded threshold posterior.

    Raises
    ------
    ValueError
        When the stored data do not hash to the fit's ``data_hash``.
    """
    import xarray as xr

    post = idata.posterior
    spec = json.loads(post.attrs["spec"])
    stats = prepared_data(idata.constant_data)
    if stats.data_hash != post.attrs["data_hash"]:
        raise ValueError("the data stored with the threshold posterior do not hash to its "
                         "data_hash; the file was altered")
    k = int(spec["n_thresholds"])
    log_prior_cfg = threshold_log_prior(stats.grid, k, spec["threshold_prior"], spec["min_gap"])
    theta = post["slope"].values
    sigma = post["sigma"].values
    n_chains, n_draws = sigma.shape
    flat_theta = theta.reshape(-1, theta.shape[-1])
    flat_sigma = sigma.reshape(-1)
    rng = np.random.default_rng([int(post.attrs["seed"]), THRESHOLD_STREAM])
    recovered = recover_thresholds(flat_theta, flat_sigma, stats, k, log_prior_cfg, rng)
    loglik, _ = pointwise_loglik(flat_theta, flat_sigma, stats, k, recovered)
    idata.add_groups({"log_likelihood": xr.Dataset(
        {spec["outcome"]: (("chain", "draw", "obs"), loglik.reshape(n_chains, n_draws, -1))},
        coords={"chain": post.chain, "draw": post.draw, "obs": np.arange(stats.n_rows)})})

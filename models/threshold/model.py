"""The PyMC model of the threshold posterior and its sampling by nutpie.

Slopes are sampled in whitened coordinates z, theta = theta_hat + L z, with theta_hat and
L L' = s^2 (Z'Z)^{-1} from least squares at the profile-likelihood configuration (an affine map
with a constant Jacobian, so the model is unchanged; it removes correlations that a diagonal
mass matrix cannot). The slope priors enter as a potential, sigma has its prior, and the
thresholds are summed out exactly by one :mod:`models.threshold.op` node.
"""

from __future__ import annotations

import time as _time
from typing import Any

import numpy as np

from models.bayes.panel_priors import PanelPriors
from models.bayes.sampler import run_nutpie
from models.threshold.data import ThresholdData
from models.threshold.op import marginal_loglik_tensor
from models.threshold.priors import slope_prior_tensor


def build_threshold_model(stats: ThresholdData, k: int, priors: PanelPriors,
                          log_prior_cfg: np.ndarray, centre: np.ndarray, chol: np.ndarray,
                          shared: bool = False):
    """The PyMC model: whitened slopes, sigma, and the exact marginal over the thresholds.

    slope = centre + chol @ slope_white (slope_white has a flat density, the priors of the
    slopes enter as the potential ``slope_prior``), sigma ~ priors.sigma, and the potential
    ``marginal_loglik`` = log sum_gamma p(gamma) p(y~ | slope, gamma, sigma).

    ``shared=True`` holds the statistics, centre and chol in ``pm.Data`` so that a compiled
    model can be re-used on other data of the same shapes (nutpie ``with_data``).
    """
    import pymc as pm
    import pytensor.tensor as pt

    terms = stats.term_names(k)
    with pm.Model(coords={"coef": terms}) as model:
        data: dict[str, Any] = {}
        if shared:
            for name, value in shared_values(stats, log_prior_cfg, centre, chol, k).items():
                data[name] = pm.Data(name, value)
            centre_t, chol_t = data.pop("centre"), data.pop("chol")
        else:
            centre_t, chol_t = centre, chol
        white = pm.Flat("slope_white", dims="coef")
        slope = pm.Deterministic("slope", centre_t + pt.dot(chol_t, white), dims="coef")
        pm.Potential("slope_prior", slope_prior_tensor(priors, terms, slope))
        sigma = priors.sigma.to_pymc("sigma")
        pm.Potential("marginal_loglik",
                     marginal_loglik_tensor(slope, sigma, stats, k, log_prior_cfg, data))
    return model


def shared_values(stats: ThresholdData, log_prior_cfg, centre, chol, k) -> dict[str, Any]:
    """Values of the ``pm.Data`` of a ``shared=True`` model, by name (for nutpie's
    ``with_data``): y'y, B'y, B'B, C(g)'y and C(g)'B (k > 0), the whitening centre and chol."""
    values = {"yy": np.asarray(stats.yy), "base_y": stats.base_y, "base_gram": stats.base_gram,
              "centre": centre, "chol": chol}
    if k:
        values.update(split_y=stats.split_y, split_base=stats.split_base)
    return values


def whitening(profile: dict[str, Any], inflate: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Centre theta_hat and factor L, L L' = inflate * s^2 (Z'Z)^{-1}, of the whitened slopes
    theta = theta_hat + L z, from :func:`models.threshold.likelihood.profile_fit`."""
    covariance = profile["covariance"] * inflate
    return profile["theta"], np.linalg.cholesky(covariance)


def sample_nutpie(model, draws: int, tune: int, chains: int, seed: int, progressbar: bool,
                  compiled=None, target_accept: float | None = None
                  ) -> tuple[Any, dict[str, float], Any]:
    """Compile ``model`` (:func:`models.bayes.nutpie_compile.compile_model`, unless
    ``compiled`` is given) and sample it with nutpie.

    Returns the InferenceData, the wall times (``compile_s``, ``sampling_s``) and the compiled
    model.
    """
    from models.bayes.nutpie_compile import compile_model

    times: dict[str, float] = {}
    start = _time.perf_counter()
    if compiled is None:
        compiled = compile_model(model)
    times["compile_s"] = _time.perf_counter() - start
    idata, times["sampling_s"] = run_nutpie(compiled, draws, tune, chains, seed, progressbar,
                                            target_accept)
    return idata, times, compiled


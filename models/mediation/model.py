"""The PyMC graph of the Bayesian panel mediation model and its pointwise log-likelihood.

Model
-----
For unit i, year t, treatment x, mediators m_1..m_K (K = 1 or 2), controls w:

    m_k,it = a_k x_it + w_it' delta_k + alpha_k,i + tau_k,t + e_k,it      (mediator equations)
    y_it   = c x_it + sum_k b_k m_k,it + w_it' gamma + alpha_i + tau_t + u_it   (outcome)
    e_it ~ N(0, Sigma_M),  Sigma_M = diag(s_m) R diag(s_m),  u_it ~ N(0, s_y^2),

each equation with its own unit and year effects; Cov(e_k, u) = 0 (sequential ignorability)
unless rho is a parameter (below). Indirect effect through m_k: a_k b_k; direct: c; total:
c + sum_k a_k b_k; share mediated: a_k b_k / total.

The effects integrate out exactly
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
As for the IV model (:mod:`models.iv.bayes`): with D the unit and year indicators (rank r) and
Q = [Q1, Q2] orthonormal, Q1 spanning the within space, the errors of the K + 1 equations have
covariance Omega (x) I_n, unchanged by rotating each equation with Q. The Q2 part of every
equation holds that equation's effects with free coefficients, so under flat priors on the
effects (the Mundlak between terms of the Bayesian TWFE with flat priors absorb the unit means
entirely) it integrates to a constant, and what is left is the likelihood of the two-way
demeaned system with n - r observations. The paths are identified by within variation only, so
they stay unbiased when x correlates with the unit effects. With E the within residuals,

    log p = -(n - r)/2 log|Omega| - tr(Omega^-1 E'E) / 2 - (n - r)(K + 1)/2 log(2 pi),

and E'E is a quadratic form in the coefficients and the cross-products of the demeaned data.

Mediator-outcome confounding (Imai, Keele & Yamamoto 2010)
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Let rho_k = corr(e_k, u) and s = Cov(e, u), s_k = rho_k s_m,k s_u. Writing
u = s' Sigma_M^-1 e + v shows that the data identify only the ignorable parametrisation

    b0 = b + Sigma_M^-1 s,   c0 = c - a' Sigma_M^-1 s,   s_y^2 = s_u^2 - s' Sigma_M^-1 s,

so for any rho, b = b0 - s_u Sigma_M^-1 r and c = c0 + s_u a' Sigma_M^-1 r with r = rho * s_m and
s_u = s_y / sqrt(1 - r' Sigma_M^-1 r); the total effect c0 + a'b0 does not move. With a prior
on rho (``confounding_rho``) the model samples (a, b0, c0, s_y, Sigma_M) from the likelihood
and rho from its prior (the data say nothing about rho), and reports b, c and the indirect
effects as functions of both: the priors on the path coefficients are then priors on b0 and
c0. With two mediators rho must keep the joint covariance positive definite
(r' Sigma_M^-1 r < 1); draws outside are rejected, which truncates rho's prior.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.bayes.priors import stacked_prior
from models.mediation.design import MediationDesign

MAX_MEDIATORS = 2


def check_mediator_count(mediators) -> None:
    """Raises ValueError unless 1 <= K <= :data:`MAX_MEDIATORS`."""
    if not 1 <= len(mediators) <= MAX_MEDIATORS:
        raise ValueError(f"The Bayesian mediation model takes one or two mediators in one "
                         f"model, got {len(mediators)}: {list(mediators)}.")


def _confounding_rho(kind: str, params):
    import pymc as pm

    if kind == "lkj":
        eta = params[0]
        unit = pm.Beta("rho_unit", eta, eta, dims="mediator")
        return pm.Deterministic("rho", 2.0 * unit - 1.0, dims="mediator")
    if kind == "normal":
        return pm.TruncatedNormal("rho", mu=params[0], sigma=params[1], lower=-1.0, upper=1.0,
                                  dims="mediator")
    return pm.Uniform("rho", lower=params[0], upper=params[1], dims="mediator")


def _prior(priors, name: str, dims: str | None, containers: bool):
    """``name`` with one prior per element (a scalar when ``dims`` is None); with
    ``containers`` the parameters are ``pm.Data`` named ``<name>__<param>`` so one compiled
    model serves every design of the same shape (:func:`model_data` fills them)."""
    import pymc as pm

    priors = list(priors) if isinstance(priors, list | tuple) else [priors]
    if not containers:
        return stacked_prior(priors, name, dims) if dims else priors[0].to_pymc(name)
    params = {}
    for key, _ in priors[0].params:
        values = np.array([dict(p.params)[key] for p in priors], dtype=float)
        params[key] = pm.Data(f"{name}__{key}", values if dims else values[0])
    return priors[0].to_pymc(name, dims=dims, **params) if dims else priors[0].to_pymc(
        name, **params)


def prior_groups(design: MediationDesign, resolved: dict[str, Any]) -> dict[str, list]:
    """The priors of each vector or scalar variable, in model order."""
    suffix = "" if resolved["confounding"] is None else "_ignorable"
    groups = {"a": resolved["a"], "b" + suffix: resolved["b"],
              "direct" + suffix: [resolved["direct"]],
              "sigma_outcome": [resolved["sigma_outcome"]],
              "sigma_mediator": resolved["sigma_mediator"]}
    if design.controls:
        groups["control_mediator"] = [p for row in resolved["delta"] for p in row]
        groups["control_outcome"] = resolved["gamma"]
    return groups


def structure_key(design: MediationDesign, resolved: dict[str, Any]) -> str | None:
    """What a compiled model with data containers depends on, or None when one vector mixes
    prior families (then the model is built for this design alone)."""
    import json

    families = {}
    for name, priors in prior_groups(design, resolved).items():
        kinds = {p.family for p in priors}
        if len(kinds) > 1:
            return None
        families[name] = kinds.pop()
    confounding = resolved["confounding"]
    return json.dumps({"k": len(design.mediators), "w": len(design.controls),
                       "families": families,
                       "confounding": None if confounding is None else confounding.kind},
                      sort_keys=True)


def model_data(design: MediationDesign, resolved: dict[str, Any]) -> dict[str, np.ndarray]:
    """Values of every data container of :func:`build_mediation_model` for ``design``."""
    values: dict[str, np.ndarray] = {"gram": design.gram,
                                     "n_effective": np.array(float(design.n_effective))}
    for name, priors in prior_groups(design, resolved).items():
        scalar = name.startswith(("direct", "sigma_outcome"))
        for key, _ in priors[0].params:
            array = np.array([dict(p.params)[key] for p in priors], dtype=float)
            values[f"{name}__{key}"] = array[0] if scalar else array
    if len(design.mediators) > 1:
        values["corr_eta"] = np.array(float(resolved["corr_eta"]))
    confounding = resolved["confounding"]
    if confounding is not None:
        values["rho__params"] = np.array(confounding.params, dtype=float)
    return values


def build_mediation_model(design: MediationDesign, resolved: dict[str, Any],
                          data_containers: bool = False):
    """The PyMC model of the module docstring.

    Free variables: ``a`` (dims ``mediator``), ``b`` and ``direct`` (``b_ignorable`` and
    ``direct_ignorable`` when rho is a parameter), ``control_mediator`` (dims
    ``mediator_control``), ``control_outcome`` (``control``), ``sigma_outcome``,
    ``sigma_mediator`` (``mediator``), ``mediator_corr_unit`` (two mediators), ``rho`` /
    ``rho_unit`` (with a confounding prior). Deterministic: ``indirect``, ``total``,
    ``share_mediated``, ``mediator_corr``, and ``b``, ``direct`` under confounding. The joint
    log-likelihood is the Potential ``<outcome>_joint``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    check_mediator_count(design.mediators)
    n_k, n_w = len(design.mediators), len(design.controls)
    confounding = resolved["confounding"]
    coords: dict[str, Any] = {"mediator": list(design.mediators)}
    if n_w:
        coords["control"] = list(design.controls)
        coords["mediator_control"] = [f"{k}:{c}" for k in design.mediators
                                      for c in design.controls]
    suffix = "" if confounding is None else "_ignorable"
    with pm.Model(coords=coords) as model:
        dc = data_containers
        a = _prior(resolved["a"], "a", "mediator", dc)
        b0 = _prior(resolved["b"], "b" + suffix, "mediator", dc)
        c0 = _prior(resolved["direct"], "direct" + suffix, None, dc)
        if n_w:
            flat = [p for row in resolved["delta"] for p in row]
            delta = pt.reshape(_prior(flat, "control_mediator", "mediator_control", dc),
                               (n_k, n_w))
            gamma = _prior(resolved["gamma"], "control_outcome", "control", dc)
        else:
            delta, gamma = pt.zeros((n_k, 0)), pt.zeros(0)
        sigma_y = _prior(resolved["sigma_outcome"], "sigma_outcome", None, dc)
        sigma_m = _prior(resolved["sigma_mediator"], "sigma_mediator", "mediator", dc)
        # Residuals as linear maps of the demeaned columns [y, m, x, w]: e = D A, u = D beta.
        coef_m = pt.concatenate([pt.zeros((1, n_k)), pt.eye(n_k), -pt.reshape(a, (1, n_k)),
                                 pt.transpose(-delta)], axis=0)
        coef_y = pt.concatenate([pt.ones(1), -b0, -pt.reshape(c0, (1,)), -gamma])
        gram = pm.Data("gram", design.gram) if dc else pt.as_tensor_variable(design.gram)
        cross = pt.dot(pt.transpose(coef_m), pt.dot(gram, coef_m))
        s_yy = pt.dot(coef_y, pt.dot(gram, coef_y))
        if n_k == 1:
            quadratic = cross[0, 0] / sigma_m[0] ** 2
            log_det_m = 2.0 * pt.log(sigma_m[0])
            precision = pt.reshape(1.0 / sigma_m[0] ** 2, (1, 1))
        else:
            eta = pm.Data("corr_eta", float(resolved["corr_eta"])) if dc else resolved["corr_eta"]
            corr = pm.Deterministic("mediator_corr",
                                    2.0 * pm.Beta("mediator_corr_unit", eta, eta) - 1.0)
            one_minus = 1.0 - corr**2
            s0, s1 = sigma_m[0], sigma_m[1]
            quadratic = (cross[0, 0] / s0**2 - 2.0 * corr * cross[0, 1] / (s0 * s1)
                         + cross[1, 1] / s1**2) / one_minus
            log_det_m = 2.0 * pt.log(s0) + 2.0 * pt.log(s1) + pt.log(one_minus)
            precision = pt.stack([pt.stack([1.0 / s0**2, -corr / (s0 * s1)]),
                                  pt.stack([-corr / (s0 * s1), 1.0 / s1**2])]) / one_minus
        n_eff = (pm.Data("n_effective", float(design.n_effective)) if dc
                 else float(design.n_effective))
        pm.Potential(f"{design.outcome}_joint",
                     -0.5 * n_eff * (log_det_m + 2.0 * pt.log(sigma_y))
                     - 0.5 * quadratic - 0.5 * s_yy / sigma_y**2
                     - 0.5 * n_eff * (n_k + 1) * np.log(2.0 * np.pi))
        if confounding is None:
            b, direct = b0, c0
        else:
            params = (pm.Data("rho__params", np.array(confounding.params, dtype=float)) if dc
                      else np.array(confounding.params, dtype=float))
            rho = _confounding_rho(confounding.kind, params)
            r = rho * sigma_m
            weights = pt.dot(precision, r)
            q = pt.dot(r, weights)
            if n_k > 1:
                pm.Potential("rho_admissible", pt.switch(q < 1.0, 0.0, -np.inf))
            sigma_u = pm.Deterministic("sigma_structural", sigma_y / pt.sqrt(1.0 - q))
            b = pm.Deterministic("b", b0 - sigma_u * weights, dims="mediator")
            direct = pm.Deterministic("direct", c0 + sigma_u * pt.dot(a, weights))
        indirect = pm.Deterministic("indirect", a * b, dims="mediator")
        total = pm.Deterministic("total", direct + pt.sum(indirect))
        pm.Deterministic("share_mediated", indirect / total, dims="mediator")
    return model


def pointwise_log_likelihood(design: MediationDesign, posterior) -> np.ndarray:
    """(chain, draw, obs) joint normal log density of each observation's within residuals
    (e_it, u_it) under the ignorable parametrisation; it counts n rather than n - r
    observations in the log-determinant (what LOO needs is per observation)."""
    data = design.data
    n_k, n_w = len(design.mediators), len(design.controls)
    p = data.shape[1]
    suffix = "_ignorable" if "b_ignorable" in posterior else ""
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    size = n_chain * n_draw

    def flat(name: str, width: int) -> np.ndarray:
        return posterior[name].values.reshape(size, width)

    a, b0 = flat("a", n_k), flat("b" + suffix, n_k)
    c0 = flat("direct" + suffix, 1)[:, 0]
    sigma_y, sigma_m = flat("sigma_outcome", 1)[:, 0], flat("sigma_mediator", n_k)
    # Residuals as linear maps of the demeaned columns [y, m, x, w], one map per draw: one
    # matrix product per equation instead of broadcasting over (draw, obs).
    coef_y = np.zeros((p, size))
    coef_y[0], coef_y[1:1 + n_k], coef_y[1 + n_k] = 1.0, -b0.T, -c0
    delta = flat("control_mediator", n_k * n_w).reshape(size, n_k, n_w) if n_w else None
    if n_w:
        coef_y[2 + n_k:] = -flat("control_outcome", n_w).T
    coef_m = np.zeros((n_k, p, size))
    for k in range(n_k):
        coef_m[k, 1 + k], coef_m[k, 1 + n_k] = 1.0, -a[:, k]
        if n_w:
            coef_m[k, 2 + n_k:] = -delta[:, k, :].T
    constant = -0.5 * (n_k + 1) * np.log(2 * np.pi) - np.log(sigma_y) - np.log(sigma_m).sum(1)
    if n_k > 1:
        r = flat("mediator_corr", 1)[:, 0]
        one_minus = 1.0 - r**2
        constant -= 0.5 * np.log(one_minus)
    out = np.empty((size, design.n_obs))
    # Chunks of draws keep the temporaries in cache; in-place arithmetic avoids copies.
    step = 256
    for lo in range(0, size, step):
        hi = min(lo + step, size)
        u = coef_y[:, lo:hi].T @ data.T
        u /= sigma_y[lo:hi, None]
        np.square(u, out=u)
        z = [(coef_m[k][:, lo:hi].T @ data.T) / sigma_m[lo:hi, k, None] for k in range(n_k)]
        if n_k == 1:
            u += z[0] ** 2
        else:
            rr, om = r[lo:hi, None], one_minus[lo:hi, None]
            quad = z[0] ** 2
            quad -= 2 * rr * z[0] * z[1]
            quad += z[1] ** 2
            quad /= om
            u += quad
        u *= -0.5
        u += constant[lo:hi, None]
        out[lo:hi] = u
    return out.reshape(n_chain, n_draw, design.n_obs)

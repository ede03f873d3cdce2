"""Priors on the event-time path b = (b_k), k a sample year other than the reference year.

Four priors, each a proper density on the path with b_ref = 0 (the omitted reference year):

``independent`` (the default)
    b_k ~ N(0, scale) independently.
``hierarchical``
    b_k ~ N(mu_pre, sd_pre) for k < ref and N(mu_post, sd_post) for k > ref (centred),
    mu_g ~ N(0, scale), sd_g ~ HalfNormal(step): the pre and the post coefficients are each
    pooled toward their own mean.
``rw1``
    a first-order random walk in event time pinned at 0 in the reference year: with the full
    path p (p_ref = 0) over consecutive years, p_{t+1} - p_t ~ N(0, tau), tau ~ HalfNormal(step).
``rw2``
    a second-order random walk pinned at 0 in the reference year: p_{t+1} - 2 p_t + p_{t-1} ~
    N(0, tau), tau ~ HalfNormal(step), with the slope into the reference year
    (p_ref - p_{ref-1}; p_{ref+1} - p_ref when ref is the first year) ~ N(0, scale), which makes
    the density proper (the second differences alone leave a straight line through the
    reference point free).

For the random walks write z = A b, A the (square, invertible) difference operator above;
then log p(b | tau) = sum_j log N(z_j; 0, s_j) + log |det A|, a Gaussian with precision
A' diag(s^-2) A. The same formula is the PyTensor graph the sampler sees and the numpy
function that fills ``log_prior``.

Defaults and why
----------------
``independent`` is the default because it is the only one of the four that does not move
the pre-period coefficients toward each other or toward the post-period ones: the
pre-trend probability and the relative-magnitude sensitivity read the pre-period
coefficients, and a prior that smooths across the reference year would make pre-trends look
flatter by construction. The random walks also shrink the jump at the policy year toward
the pre-period path (a step at the reference year is just another increment to them). Use
``hierarchical``, ``rw1`` and ``rw2`` as sensitivity checks, or when noisy yearly
coefficients are to be pooled or smoothed on purpose.

Scales follow the project's rule (:mod:`models.bayes.panel_priors`), on the outcome scale:
``scale`` = 2.5 s_y (2.5 log points with the log link) and ``step`` = s_y (1 log point),
s_y the sd of the outcome. A switch of the treatment group in one year is thus a priori at
most a few outcome sd; the step scales let the path move by about one outcome sd a year.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.bayes.priors import PriorSpecError

PATH_PRIORS = ("independent", "hierarchical", "rw1", "rw2")
DEFAULT_PATH_PRIOR = "independent"
SCALE_MULTIPLIER = 2.5
_LOG_2PI = math.log(2.0 * math.pi)
_TEXT_RE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(?:\((.*)\))?\s*$")


@dataclass(frozen=True)
class PathStructure:
    """The path prior's fixed structure for one set of event years.

    ``operator`` is A (n x n) for the random walks (identity otherwise), ``log_det`` its
    log |det A|, ``pre`` the mask of years before the reference year.
    """

    years: tuple[int, ...]
    reference: int
    operator: np.ndarray
    log_det: float
    pre: np.ndarray


def path_structure(kind: str, years: Sequence[int], reference: int) -> PathStructure:
    """A, log |det A| and the pre-period mask of ``kind`` for event years ``years``.

    Raises
    ------
    ValueError
        If the years (with the reference year) are not consecutive for a random walk, or
        ``rw2`` has fewer than three years.
    """
    years = tuple(int(y) for y in years)
    if reference in years:
        raise ValueError(f"the reference year {reference} must not be among the event years")
    pre = np.array([y < reference for y in years])
    n = len(years)
    if kind in ("independent", "hierarchical"):
        return PathStructure(years, reference, np.eye(n), 0.0, pre)
    full = sorted((*years, reference))
    if np.any(np.diff(full) != 1):
        raise ValueError(
            f"path prior '{kind}' needs consecutive years (a random walk in event time); got "
            f"{full} [rule: consecutive event years]")
    # Rows of D map the free coefficients to the full path (p_ref = 0).
    position = {y: i for i, y in enumerate(years)}
    to_full = np.zeros((len(full), n))
    for i, year in enumerate(full):
        if year != reference:
            to_full[i, position[year]] = 1.0
    if kind == "rw1":
        operator = np.diff(to_full, axis=0)
    elif kind == "rw2":
        if len(full) < 3:
            raise ValueError("path prior 'rw2' needs at least three years")
        r = full.index(reference)
        first = to_full[r] - to_full[r - 1] if r > 0 else to_full[r + 1] - to_full[r]
        operator = np.vstack([first, np.diff(to_full, n=2, axis=0)])
    else:
        raise ValueError(f"unknown path prior {kind!r}; use one of {PATH_PRIORS}")
    sign, log_det = np.linalg.slogdet(operator)
    if sign == 0:
        raise ValueError(f"path prior '{kind}' is singular for years {full}")
    return PathStructure(years, reference, operator, float(log_det), pre)


@dataclass(frozen=True)
class EventPathPrior:
    """A prior on the event-time path: ``kind`` (one of :data:`PATH_PRIORS`), ``scale`` and
    ``step`` (None: the data-scaled default of the module docstring).

    ``scale``: sd of each b_k (independent), of the group means (hierarchical), of the slope
    into the reference year (rw2; unused by rw1). ``step``: HalfNormal scale of the group sd
    (hierarchical) or of the random-walk step sd tau (rw1, rw2; unused by independent).
    """

    kind: str = DEFAULT_PATH_PRIOR
    scale: float | None = None
    step: float | None = None
    source: str = "default"

    def __post_init__(self):
        if self.kind not in PATH_PRIORS:
            raise PriorSpecError(f"Unknown event path prior {self.kind!r}; use one of "
                                 f"{', '.join(PATH_PRIORS)}.")
        for name in ("scale", "step"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise PriorSpecError(f"event path prior {name} must be a positive number, "
                                     f"not {value!r}.")

    @classmethod
    def parse(cls, value, source: str = "user") -> EventPathPrior:
        """From ``"rw1"``, ``"rw2(step=0.1)"``, ``"hierarchical(scale=1, step=0.2)"``, a
        mapping ``{"kind": ..., "scale": ..., "step": ...}``, an instance, or None (default).

        Raises
        ------
        PriorSpecError
            Naming the text and the rule broken.
        """
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"kind", "scale", "step"}
            if unknown:
                raise PriorSpecError(f"event path prior: unknown key(s) {sorted(unknown)}; "
                                     "use kind, scale, step.")
            return cls(str(value.get("kind", DEFAULT_PATH_PRIOR)), _number(value.get("scale")),
                       _number(value.get("step")), source)
        match = _TEXT_RE.match(str(value))
        if match is None:
            raise PriorSpecError(f"Cannot parse event path prior {value!r}: expected e.g. "
                                 "'rw1' or 'rw2(step=0.1)'.")
        kind, inner = match.group(1).lower(), match.group(2)
        params: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in (inner or "").split(","))):
            key, sep, number = part.partition("=")
            if not sep or key.strip() not in ("scale", "step"):
                raise PriorSpecError(f"In event path prior {value!r}: parameters are "
                                     "scale=... and step=..., not {part!r}.")
            params[key.strip()] = _number(number)
        return cls(kind, params.get("scale"), params.get("step"), source)

    def resolved(self, outcome_scale: float) -> EventPathPrior:
        """With the unset scales filled from the outcome scale (s_y, or 1 on the log link)."""
        return EventPathPrior(
            self.kind,
            self.scale if self.scale is not None else SCALE_MULTIPLIER * outcome_scale,
            self.step if self.step is not None else outcome_scale,
            self.source)

    def describe(self) -> dict[str, dict[str, str]]:
        """The record stored with the fit's priors."""
        text = {
            "independent": f"b_k ~ normal(0, {self.scale:.4g})",
            "hierarchical": (f"b_k ~ normal(mu_g, sd_g), g = pre / post; mu_g ~ normal(0, "
                             f"{self.scale:.4g}), sd_g ~ halfnormal({self.step:.4g})"),
            "rw1": f"p_(t+1) - p_t ~ normal(0, tau), p_ref = 0; tau ~ halfnormal({self.step:.4g})",
            "rw2": (f"p_(t+1) - 2 p_t + p_(t-1) ~ normal(0, tau), p_ref = 0, slope into the "
                    f"reference year ~ normal(0, {self.scale:.4g}); tau ~ halfnormal("
                    f"{self.step:.4g})"),
        }[self.kind]
        return {"event_path": {"prior": f"{self.kind}: {text}", "source": self.source}}

    @property
    def hyper_names(self) -> tuple[str, ...]:
        """The hyperparameters sampled with the path."""
        return {"independent": (), "hierarchical": ("path_mean", "path_sd"),
                "rw1": ("path_tau",), "rw2": ("path_tau",)}[self.kind]

    def to_pymc(self, name: str, structure: PathStructure, dims: str):
        """The path variable ``name`` (dims ``dims``) and its hyperparameters, inside the
        current model context; the prior must be :meth:`resolved`."""
        import pymc as pm

        if self.kind == "independent":
            return pm.Normal(name, 0.0, self.scale, dims=dims)
        if self.kind == "hierarchical":
            groups = structure.pre.astype(int)  # 0 = post, 1 = pre
            n_groups = 2 if structure.pre.any() and (~structure.pre).any() else 1
            if n_groups == 1:
                groups = np.zeros_like(groups)
            mean = pm.Normal("path_mean", 0.0, self.scale, shape=n_groups)
            sd = pm.HalfNormal("path_sd", self.step, shape=n_groups)
            return pm.Normal(name, mean[groups], sd[groups], dims=dims)
        tau = pm.HalfNormal("path_tau", self.step)
        base = _base_scales(self.kind, structure, self.scale)
        return pm.CustomDist(
            name, tau, base, logp=_random_walk_logp(structure), signature="(),(n)->(n)",
            dims=dims, support_point=lambda rv, size, tau, base: base * 0.0)

    def log_density(self, path: np.ndarray, structure: PathStructure,
                    hyper: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """log p(path | hyperparameters) for draws ``path`` (..., n), in numpy; ``hyper`` holds
        the hyperparameter draws named as :attr:`hyper_names` (shape ``path.shape[:-1]``, with a
        trailing group axis for the hierarchical ones)."""
        path = np.asarray(path, dtype=float)
        hyper = hyper or {}
        if self.kind == "independent":
            return _normal_logpdf(path, 0.0, self.scale).sum(axis=-1)
        if self.kind == "hierarchical":
            groups = structure.pre.astype(int)
            mean, sd = np.asarray(hyper["path_mean"]), np.asarray(hyper["path_sd"])
            if mean.shape[-1] == 1:
                groups = np.zeros_like(groups)
            return _normal_logpdf(path, mean[..., groups], sd[..., groups]).sum(axis=-1)
        tau = np.asarray(hyper["path_tau"])[..., None]
        base = _base_scales(self.kind, structure, self.scale)
        scales = np.where(base < 0, -base, tau * base)
        z = path @ structure.operator.T
        return _normal_logpdf(z, 0.0, scales).sum(axis=-1) + structure.log_det


def _number(value) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PriorSpecError(f"event path prior: {value!r} is not a number") from None


def _base_scales(kind: str, structure: PathStructure, scale: float) -> np.ndarray:
    """The sd of each row of z = A b: a positive entry is a multiple of tau, a negative one a
    fixed sd (its absolute value; rw2's slope into the reference year, sd ``scale``)."""
    base = np.ones(structure.operator.shape[0])
    if kind == "rw2":
        base[0] = -scale
    return base


def _random_walk_logp(structure: PathStructure):
    """log p(b | tau) of a random walk as a PyTensor function of (value, tau, base), ``base``
    as :func:`_base_scales`."""
    import pytensor.tensor as pt

    operator = structure.operator
    log_det = structure.log_det

    def logp(value, tau, base):
        z = pt.dot(value, operator.T)
        scales = pt.switch(base < 0, -base, tau * base)
        density = -0.5 * (z / scales) ** 2 - pt.log(scales) - 0.5 * _LOG_2PI
        return pt.sum(density, axis=-1) + log_det

    return logp


def _normal_logpdf(x, mean, sd):
    x, mean, sd = np.asarray(x), np.asarray(mean), np.asarray(sd)
    return -0.5 * ((x - mean) / sd) ** 2 - np.log(sd) - 0.5 * _LOG_2PI

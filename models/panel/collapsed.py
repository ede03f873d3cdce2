"""The Gaussian TWFE posterior with the intercept, Mundlak terms and year effects integrated out.

The model is that of :mod:`models.panel.bayes` (``mundlak`` parametrisation, normal
likelihood, unit effects integrated out as in :mod:`models.panel.marginal`) with normal priors
alpha ~ N(m_0, s_0), lambda_j ~ N(m_j, s_j) and tau ~ ZeroSumNormal(year_sd). Write the year
effects as tau = Q eta, Q an orthonormal basis of the zero-sum vectors, so that eta ~
N(0, year_sd^2 I_{T-1}), and collect phi = (alpha - ybar_centre, lambda, eta). Given
(beta, sigma, unit_sd, year_sd) the log joint density is quadratic in phi,

    log p(y, phi | .) = c - 1/2 phi' P phi + b' phi,

    P = sum_g Z_g / v_g + blockdiag(diag(1 / s^2), Q'D'PD Q / sigma^2 + I / year_sd^2),
    b = sum_g h_g / v_g + (m / s^2, Q'D'P y / sigma^2),     v_g = sigma^2 + T_g unit_sd^2,

with Z_g, h_g the grouped between-unit statistics of :class:`models.panel.marginal.
SufficientStats` carried into phi's coordinates. Hence exactly

    log p(y | beta, sigma, unit_sd, year_sd) = c + 1/2 b' P^-1 b - 1/2 log |P| + dim(phi)/2 log 2pi,

and phi | beta, sigma, unit_sd, year_sd, y ~ N(P^-1 b, P^-1). NUTS samples beta and the three
scales (k + 3 dimensions instead of 2k + T + 2); afterwards every draw gets one exact draw of
phi (:func:`draw_linear_terms`), so the joint draws are those of the full model. beta enters
only through the within sum of squares: the two-way demeaned regressors are orthogonal to
every term in phi.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.bayes.priors import Prior
from models.panel.design import PanelDesign
from models.panel.marginal import SufficientStats


def zero_sum_basis(n_years: int) -> np.ndarray:
    """An orthonormal basis (T x (T-1)) of the vectors whose entries sum to zero."""
    centred = np.eye(n_years) - 1.0 / n_years
    basis, _ = np.linalg.qr(centred[:, : n_years - 1])
    return basis


@dataclass(frozen=True)
class CollapsedStats:
    """Statistics of the collapsed log density, in the coordinates phi of the module docstring.

    The fields in :data:`COLLAPSED_FIELDS` enter the log density; ``ybar_centre`` and
    ``year_basis`` map phi back to (alpha, lambda, tau).
    """

    syy_within: float  # ||P y||^2 (within-unit sum of squares of y)
    sxx: np.ndarray  # X~'X~
    sxy: np.ndarray  # X~'y
    group_units: np.ndarray  # (G,) units with T_i = group_rows[g]
    group_rows: np.ndarray  # (G,)
    group_syy: np.ndarray  # (G,) a_g
    group_zy: np.ndarray  # (G, d) h_g in phi's coordinates
    group_zz: np.ndarray  # (G, d, d) Z_g in phi's coordinates
    year_gram: np.ndarray  # (T-1, T-1) Q'D'PD Q (empty without year effects)
    year_cross: np.ndarray  # (T-1,) Q'D'P y
    prior_mean: np.ndarray  # (1 + k,) m - (ybar_centre, 0, ..., 0)
    prior_sd: np.ndarray  # (1 + k,) s
    dense_size: float  # entries of phi with a dense precision block; the rest are decoupled
    ybar_centre: float
    year_basis: np.ndarray | None  # Q, or None without year effects

    @property
    def n_fixed(self) -> int:
        """Number of phi's entries with their own normal prior: intercept and Mundlak terms."""
        return self.prior_mean.shape[0]

    @classmethod
    def from_design(cls, design: PanelDesign, intercept_prior: Prior,
                    between_priors: list[Prior]) -> CollapsedStats:
        """Carry the sufficient statistics into phi's coordinates; the priors must be normal."""
        for name, prior in [("intercept", intercept_prior)] + [
                (f"between.{term}", p) for term, p in zip(design.regressors, between_priors,
                                                           strict=True)]:
            if prior.family != "normal":
                raise ValueError(f"The collapsed model needs a normal prior on {name}; got "
                                 f"{prior}.")
        stats = SufficientStats.from_design(design)
        k = len(design.regressors)
        basis = None
        decoupled = True
        year_gram, year_cross = np.zeros((0, 0)), np.zeros(0)
        group_zy, group_zz = stats.group_zy, stats.group_zz
        if design.time_idx is not None:
            basis = zero_sum_basis(len(design.time_labels))
            to_phi = np.zeros((1 + k + basis.shape[0], 1 + k + basis.shape[1]))
            to_phi[: 1 + k, : 1 + k] = np.eye(1 + k)
            to_phi[1 + k:, 1 + k:] = basis
            group_zy = group_zy @ to_phi
            group_zz = to_phi.T @ group_zz @ to_phi
            year_gram = basis.T @ stats.year_gram @ basis
            year_cross = basis.T @ stats.year_cross
            group_zy, group_zz, year_gram, decoupled = _decouple_years(group_zy, group_zz,
                                                                       year_gram, 1 + k)
        params = [p.kwargs for p in [intercept_prior, *between_priors]]
        prior_mean = np.array([p["mu"] for p in params], dtype=float)
        prior_mean[0] -= stats.ybar_centre
        return cls(
            syy_within=stats.syy_within, sxx=stats.sxx, sxy=stats.sxy,
            group_units=stats.group_units, group_rows=stats.group_rows,
            group_syy=stats.group_syy, group_zy=group_zy, group_zz=group_zz,
            year_gram=year_gram, year_cross=year_cross, prior_mean=prior_mean,
            prior_sd=np.array([p["sigma"] for p in params], dtype=float),
            dense_size=float(1 + k if decoupled else group_zy.shape[1]),
            ybar_centre=stats.ybar_centre, year_basis=basis,
        )


def _decouple_years(group_zy, group_zz, year_gram, n_fixed: int, rtol: float = 1e-10):
    """Whether eta is decoupled from the other entries of phi: no between-unit statistics in
    eta and a diagonal year Gram matrix, as in a balanced panel (every unit's year shares are
    1/T, orthogonal to the zero-sum basis). If so, the rounding residue is set to exact zeros.
    """
    eta = slice(n_fixed, None)
    scale = max(np.abs(group_zz).max(), np.abs(group_zy).max(), 1.0)
    off_diagonal = year_gram - np.diag(np.diag(year_gram))
    residue = max(np.abs(group_zz[:, eta, :]).max(initial=0.0),
                  np.abs(group_zy[:, eta]).max(initial=0.0))
    if residue > rtol * scale or np.abs(off_diagonal).max(initial=0.0) > rtol * np.abs(
            year_gram).max(initial=1.0):
        return group_zy, group_zz, year_gram, False
    group_zy, group_zz = group_zy.copy(), group_zz.copy()
    group_zy[:, eta] = 0.0
    group_zz[:, eta, :] = 0.0
    group_zz[:, :, eta] = 0.0
    return group_zy, group_zz, np.diag(np.diag(year_gram)), True


# The statistics the log density uses, in the order of the fused kernel's arguments.
COLLAPSED_FIELDS = ("syy_within", "sxx", "sxy", "group_units", "group_rows", "group_syy",
                    "group_zy", "group_zz", "year_gram", "year_cross", "prior_mean", "prior_sd",
                    "dense_size")


def pack_stats(stats: CollapsedStats) -> np.ndarray:
    """The :data:`COLLAPSED_FIELDS` as one flat vector after a header (k, d, G, 1 + k).

    A compiled model reads its data through one container instead of thirteen: each container
    costs the sampler a lookup on every gradient (measured: 8 of 19 microseconds per step
    with separate containers).
    """
    k = stats.sxy.shape[0]
    header = [k, stats.group_zy.shape[1], stats.group_units.shape[0], stats.n_fixed]
    parts = [np.asarray(header, dtype=float)] + [
        np.ravel(np.asarray(getattr(stats, name), dtype=float)) for name in COLLAPSED_FIELDS]
    return np.concatenate(parts)


def draw_linear_terms(stats: CollapsedStats, sigma, unit_sd, year_sd, seed: int
                      ) -> dict[str, np.ndarray]:
    """One exact draw of phi | beta, sigma, unit_sd, year_sd, y per posterior draw
    (:func:`models.panel.collapsed_op.draw_phi`).

    ``sigma``, ``unit_sd``, ``year_sd`` are arrays of one shape S (``year_sd`` is ignored
    without year effects). Returns ``intercept`` (S), ``between`` (S + (k,)) and, with year
    effects, ``year_effect`` (S + (T,)), all on the original scale.
    """
    from models.panel.collapsed_op import draw_phi

    sigma = np.asarray(sigma, dtype=float)
    shape = sigma.shape
    flat = [np.ascontiguousarray(np.broadcast_to(v, shape), dtype=float).ravel()
            for v in (sigma, unit_sd, year_sd)]
    rng = np.random.default_rng([seed, 0x1A7E])
    noise = rng.standard_normal((flat[0].size, stats.group_zy.shape[1]))
    phi = draw_phi(*flat, pack_stats(stats), noise).reshape(shape + (noise.shape[1],))
    terms = {"intercept": phi[..., 0] + stats.ybar_centre,
             "between": phi[..., 1: stats.n_fixed]}
    if stats.year_basis is not None:
        terms["year_effect"] = phi[..., stats.n_fixed:] @ stats.year_basis.T
    return terms


def add_linear_terms(idata, design: PanelDesign, stats: CollapsedStats, seed: int) -> None:
    """Add one exact draw of ``intercept``, ``between`` and ``year_effect`` per posterior draw
    (:func:`draw_linear_terms`) to ``idata.posterior``."""
    post = idata.posterior
    year_sd = post["year_sd"].values if "year_sd" in post else np.ones(post["sigma"].shape)
    terms = draw_linear_terms(stats, post["sigma"].values, post["unit_sd"].values, year_sd, seed)
    new = {"intercept": (("chain", "draw"), terms["intercept"]),
           "between": (("chain", "draw", "coef"), terms["between"])}
    coords = {"coef": list(design.regressors)}
    if "year_effect" in terms:
        new["year_effect"] = (("chain", "draw", "year"), terms["year_effect"])
        coords["year"] = list(design.time_labels)
    idata.posterior = post.assign(new).assign_coords(coords)


def linear_terms_log_prior(posterior, intercept_prior: Prior, between_priors: list[Prior]
                           ) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Normal log prior densities of the drawn ``intercept`` and ``between`` terms, as
    (dims, values) pairs for a ``log_prior`` group."""
    from scipy import stats as st

    intercept = intercept_prior.kwargs
    between = [p.kwargs for p in between_priors]
    return {
        "intercept": (("chain", "draw"), st.norm(intercept["mu"], intercept["sigma"]).logpdf(
            posterior["intercept"].values)),
        "between": (("chain", "draw", "coef"), st.norm(
            np.array([p["mu"] for p in between]), np.array([p["sigma"] for p in between])
        ).logpdf(posterior["between"].values)),
    }


def collapsed_logp_and_gradient(slope, sigma: float, unit_sd: float, year_sd: float, stats):
    """The collapsed log density and its gradient (:func:`models.panel.collapsed_op.
    collapsed_logp`) at one point, from :class:`CollapsedStats`."""
    from models.panel.collapsed_op import collapsed_logp

    return collapsed_logp(np.asarray(slope, dtype=np.float64), float(sigma), float(unit_sd),
                          float(year_sd), pack_stats(stats))

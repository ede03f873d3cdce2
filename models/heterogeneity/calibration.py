"""Simulation-based calibration of the partial-pooling group-slope model
(:mod:`models.heterogeneity.bayes`).

The design is one fixed balanced panel, :data:`N_UNITS` units in three groups of units
(:data:`GROUPS`) over :data:`N_YEARS` years, a focal regressor x whose slope varies by group
and a control w with a common slope, both correlated with the unit effects. Each simulation
draws every parameter from the fixed, proper priors :data:`PRIORS`, then the outcome from
the model::

    beta_g = mu + tau z_g,   z_g ~ N(0, 1)
    u_i    = (mbar_i - mbar)' lambda + unit_sd v_i,   tau_t ~ ZeroSumNormal(year_sd)
    y_it   = alpha + x~_it beta_g(i) + w~_it gamma + u_i + tau_t + e_it,   e_it ~ N(0, sigma)

(``~`` two-way demeaned, mbar the unit means of the interacted design columns) and fits the
collapsed form of the model (slopes integrated out, drawn exactly afterwards), compiled once
with the outcome's statistics in data containers and reused for every simulation, gated on
the convergence checks of :class:`models.heterogeneity.bayes.BayesHeterogeneityFit`.

The year effects are sampled (centred) in this model, and with six years a year sd near zero
makes a funnel that the sampler does not explore (about a third of the fits failed their
checks under a halfnormal(0.5) prior); the lognormal prior on year_sd keeps it away from zero,
so the calibration tests the model where it is meant to be used rather than the sampler's
known weakness, and a non-converged fit stays the exception.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.bayes.calibration import CalibrationFit, Simulation, draw_prior

N_UNITS = 36
N_YEARS = 6
GROUPS = ("A", "B", "C")
PRIORS = {"intercept": "normal(0, 1)", "slope": "normal(0, 1)", "between": "normal(0, 1)",
          "sigma": "halfnormal(1)", "unit_sd": "halfnormal(1)", "year_sd": "lognormal(-0.7, 0.4)",
          "group_sd": "halfnormal(0.5)"}
# At the default target acceptance 14 of 100 fits had 1-9 divergences (the sampled year
# effects and Mundlak terms); smaller steps avoid most of them.
SAMPLING = {False: {"draws": 1000, "tune": 1000, "chains": 4, "target_accept": 0.9},
            True: {"draws": 500, "tune": 400, "chains": 4, "target_accept": 0.9}}


def fixed_design(seed: int = 31337) -> pd.DataFrame:
    """The panel's units, groups, years and regressors (``y`` a placeholder)."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(N_UNITS), N_YEARS)
    year = np.tile(2015 + np.arange(N_YEARS), N_UNITS)
    group = np.array(GROUPS)[np.arange(N_UNITS) % len(GROUPS)][unit]
    trait = rng.normal(size=N_UNITS)[unit]
    x = 0.6 * trait + rng.normal(size=unit.size)
    w = -0.5 * trait + 0.3 * x + rng.normal(size=unit.size)
    return pd.DataFrame({"unit": unit, "year": year, "group": group, "x": x, "w": w, "y": 0.0})


class HeterogeneityCalibration:
    """The partial-pooling family of simulation-based calibration (module docstring)."""

    name = "heterogeneity"
    version = "2"
    parameters = tuple(f"x[{g}]" for g in GROUPS) + ("x_mu", "x_tau", "sigma")
    SAMPLING = SAMPLING

    def __init__(self, quick: bool = False):
        from models.heterogeneity.model import resolve_priors
        from models.heterogeneity.priors import HeterogeneityPriors

        self.quick = quick
        self.frame = fixed_design()
        self.design = self.prepare(self.frame)
        parsed = HeterogeneityPriors.parse(PRIORS)
        self.resolved, self.between, self.tau, self.record = resolve_priors(parsed, self.design)
        self._compiled = None
        rows = self.design.groups.frame[["unit", "year"]].to_numpy()
        if not np.array_equal(rows, self.frame[["unit", "year"]].to_numpy()):
            raise RuntimeError("the group design reordered the panel's rows")

    @staticmethod
    def prepare(frame: pd.DataFrame):
        """The interacted design of ``frame`` (focal x varying by group, w common)."""
        from models.heterogeneity.model import prepare_heterogeneity

        return prepare_heterogeneity(frame, "y", ["x", "w"], "group", "unit", "year",
                                     focal=["x"], groups=list(GROUPS))

    def model(self):
        """The collapsed model with the outcome's statistics in data containers."""
        from models.heterogeneity.model import build_heterogeneity_model

        return build_heterogeneity_model(self.design, self.resolved, self.between, self.tau,
                                         "collapsed", data_containers=True)

    def compiled(self):
        """The nutpie-compiled model, built on the first call and reused after."""
        if self._compiled is None:
            from models.bayes.nutpie_compile import compile_model

            self._compiled = compile_model(self.model())
        return self._compiled

    def simulate(self, rng: np.random.Generator) -> Simulation:
        """Parameters from :data:`PRIORS`, then y from the model on the fixed design."""
        panel, resolved = self.design.panel, self.resolved
        mu = float(draw_prior(resolved.term_prior("slope", "x"), rng))
        tau = float(draw_prior(self.tau[0], rng))
        beta = mu + tau * rng.normal(size=len(GROUPS))
        gamma = float(draw_prior(resolved.term_prior("slope", "w"), rng))
        slope = np.concatenate([beta, [gamma]])
        between = np.array([float(draw_prior(p, rng)) for p in self.between])
        alpha = float(draw_prior(resolved.intercept, rng))
        sigma = float(draw_prior(resolved.sigma, rng))
        unit_sd = float(draw_prior(resolved.unit_sd, rng))
        year_sd = float(draw_prior(resolved.year_sd, rng))
        unit_effect = panel.unit_means @ between + unit_sd * rng.normal(size=N_UNITS)
        year_effect = rng.normal(0.0, year_sd, N_YEARS)
        year_effect -= year_effect.mean()
        y = (alpha + panel.x_within @ slope + unit_effect[panel.unit_idx]
             + year_effect[panel.time_idx] + sigma * rng.normal(size=panel.n_obs))
        truth = {f"x[{g}]": float(b) for g, b in zip(GROUPS, beta, strict=True)}
        truth.update({"x_mu": mu, "x_tau": tau, "sigma": sigma})
        # The design's rows are the frame's, in the same order (checked when built).
        return Simulation(truth, self.frame.assign(y=y))

    def fit(self, simulation: Simulation, seed: int, sampling: dict) -> CalibrationFit:
        """The partial-pooling posterior of the simulated panel (compiled model reused)."""
        import xarray as xr

        from models.bayes.sampler import run_nutpie
        from models.heterogeneity.bayes import (
            BayesHeterogeneityFit,
            _draw_group_means,
            _draw_slopes,
        )
        from models.heterogeneity.model import outcome_data

        design = self.prepare(simulation.data)
        updated = self.compiled().with_data(**outcome_data(design))
        idata, times = run_nutpie(updated, sampling["draws"], sampling["tune"],
                                  sampling["chains"], seed, False,
                                  sampling.get("target_accept"))
        _draw_slopes(idata, design, self.resolved, seed)
        # The group means' exact draws need a log_prior group to add their density to.
        idata.add_groups({"log_prior": xr.Dataset(
            {"sigma": (("chain", "draw"), np.zeros(idata.posterior["sigma"].shape))})})
        _draw_group_means(idata, [self.resolved.term_prior("slope", "x")], seed)
        groups = design.groups
        spec = {"varying": list(groups.varying), "groups": list(groups.groups),
                "common": list(groups.common), "n_obs": design.panel.n_obs}
        fit = BayesHeterogeneityFit.record(idata, spec=spec, priors=self.record,
                                           data_hash=design.data_hash(), seed=seed,
                                           times={"sampling_s": times})
        posterior = idata.posterior
        draws = {f"x[{g}]": posterior["group_slope"].sel(varying="x", group=g).values.reshape(-1)
                 for g in GROUPS}
        draws["x_mu"] = posterior["group_mean"].sel(varying="x").values.reshape(-1)
        draws["x_tau"] = posterior["group_sd"].sel(varying="x").values.reshape(-1)
        draws["sigma"] = posterior["sigma"].values.reshape(-1)
        return CalibrationFit(draws, fit.convergence_problems())

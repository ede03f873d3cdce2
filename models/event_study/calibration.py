"""Simulation-based calibration of the Bayesian event study (:mod:`models.event_study.bayes`),
normal likelihood with the default (``independent``) event-path prior.

The design is fixed: 36 units x 7 years (2012-2018, reference year 2015), half of the units
treated (Treat_i = 1 above the median of a unit-level variable drawn once from a fixed seed).
The regressors are the Treat x year dummies D_k of the six event years, their two-way
demeaned values D~_k, and the centred unit mean of the first dummy in the Mundlak term (the
unit means of the others are proportional to it, so the model keeps one). Each simulation
draws every parameter from the fixed priors of :data:`PRIORS` and :data:`PATH_PRIOR`, then

    y_it = alpha + sum_k b_k D~_k,it + u_i + tau_t + e_it,
    u_i  = lambda (Dbar_1,i - Dbar_1) + unit_sd z_i,   z_i ~ N(0, 1),
    tau  ~ ZeroSumNormal(year_sd),                      e_it ~ N(0, sigma^2),

exactly the generative model whose intercept, Mundlak term, year and unit effects the
collapsed model integrates out (:mod:`models.panel.collapsed`). The b_k, sigma, unit_sd and
year_sd are calibrated. The model is compiled once with its statistics in data containers
(:func:`models.panel.model.build_twfe_model` with the event path as slope builder) and
sampled as the fit does: low-rank mass matrix, target acceptance 0.65, repeated at 0.9 after
a divergence.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.bayes.calibration import CalibrationFit, Simulation
from models.event_study.bayes import (
    BayesEventStudyFit,
    EventSlopePrior,
    _keep_identified_mundlak_terms,
    event_design,
)
from models.event_study.path_priors import EventPathPrior, path_structure
from models.event_study.twfe import TERM_PREFIX

# Fixed, proper priors: data-scaled defaults would move with each simulated outcome. The
# slope role is unused (the event path replaces it) but must be set to keep it fixed too.
PRIORS = {
    "intercept": "normal(0, 1)",
    "slope": "normal(0, 1)",
    "between": "normal(0, 1)",
    "sigma": "halfnormal(1)",
    "unit_sd": "halfnormal(1)",
    "year_sd": "halfnormal(1)",
}
PATH_PRIOR = EventPathPrior("independent", scale=1.0, step=1.0)
YEARS = tuple(range(2012, 2019))
REFERENCE = 2015
DESIGN_SEED = 20240613


class EventStudyCalibration:
    """Simulate from and fit the normal-likelihood Bayesian event study with Treat x
    event-year coefficients b_k ~ N(0, 1) and the reference year pinned at 0 (module
    docstring), priors :data:`PRIORS`."""

    name = "event_study"
    priors = PRIORS
    path_prior = PATH_PRIOR
    scales = ("sigma", "unit_sd", "year_sd")
    link = "identity"

    def __init__(self, quick: bool = False):
        from models.panel.bayes import resolve_priors
        from models.panel.design import prepare_panel

        self.quick = quick
        self.n_units = 24 if quick else 36
        rng = np.random.default_rng(DESIGN_SEED)
        unit = np.repeat(np.arange(self.n_units), len(YEARS))
        year = np.tile(np.array(YEARS), self.n_units)
        size = rng.normal(size=self.n_units)[unit]
        frame = pd.DataFrame({"unit": unit, "year": year, "size": size, "y": 0.0})
        data, self.event_years, _ = event_design(frame, "y", "size", (), "unit", "year",
                                                 REFERENCE, "none")
        self.terms = [f"{TERM_PREFIX}{y}" for y in self.event_years]
        self.parameters = (*self.terms, *self.scales)
        self.frame = data
        self.sampling = ({"draws": 500, "tune": 500, "chains": 2} if quick
                         else {"draws": 1000, "tune": 1000, "chains": 4})
        self._prepare = lambda y: prepare_panel(self.frame.assign(y=y), "y", self.terms,
                                                "unit", "year", [self.terms[0]])
        # Placeholder counts: the outcome only fills the data containers, replaced per fit.
        design = self._prepare(rng.poisson(3.0, size=len(data)).astype(float))
        self.x_within, self.unit_means = design.x_within, design.unit_means
        self.unit_idx, self.time_idx = design.unit_idx, design.time_idx
        self.resolved = resolve_priors(self.priors, design, self.link)
        self.slope_prior = EventSlopePrior(
            self.path_prior, path_structure(self.path_prior.kind, self.event_years, REFERENCE),
            tuple(self.terms), ())
        self.model = self._build_model(design)
        self._compiled = None

    def _build_model(self, design):
        from models.panel.model import build_twfe_model

        return build_twfe_model(design, self.resolved, "normal", "mundlak", "collapsed",
                                data_containers=True, slope_builder=self.slope_prior.build)

    @property
    def compiled(self):
        """The nutpie-compiled model, built on first use and shared by every fit."""
        if self._compiled is None:
            from models.bayes.nutpie_compile import compile_model

            self._compiled = compile_model(self.model)
        return self._compiled

    def simulate(self, rng: np.random.Generator) -> Simulation:
        """(b, alpha, lambda, sigma, unit_sd, year_sd) from the priors, then y from the
        normal TWFE of the module docstring."""
        k = len(self.terms)
        path = rng.normal(0.0, PATH_PRIOR.scale, size=k)
        intercept = rng.normal(0.0, 1.0)
        between = rng.normal(0.0, 1.0, size=k)
        sigma, unit_sd, year_sd = np.abs(rng.normal(0.0, 1.0, size=3))
        unit_effect = self.unit_means @ between + unit_sd * rng.normal(size=self.n_units)
        year_effect = year_sd * rng.normal(size=len(YEARS))
        year_effect -= year_effect.mean()
        y = (intercept + self.x_within @ path + unit_effect[self.unit_idx]
             + year_effect[self.time_idx] + sigma * rng.normal(size=self.unit_idx.size))
        truth = dict(zip(self.terms, path, strict=True))
        truth.update(sigma=sigma, unit_sd=unit_sd, year_sd=year_sd)
        return Simulation({key: float(v) for key, v in truth.items()},
                          {"y": y, "intercept": float(intercept), "between": between,
                           "year_effect": year_effect})

    def data_values(self, simulation: Simulation) -> dict[str, np.ndarray]:
        """The model's data containers for one simulation."""
        from models.panel.model import marginal_model_data

        return marginal_model_data(self._prepare(simulation.data["y"]), self.resolved,
                                   "collapsed")

    def unconstrained_truth(self, simulation: Simulation) -> dict[str, np.ndarray]:
        """The sampled parameters' true values as a point of the model's value variables."""
        truth = simulation.truth
        point = {"event_path": np.array([truth[t] for t in self.terms])}
        point.update({f"{name}_log__": np.log(truth[name])
                      for name in ("sigma", "unit_sd", "year_sd")})
        return point

    def fit(self, simulation: Simulation, seed: int, sampling: dict[str, Any] | None = None
            ) -> CalibrationFit:
        """Sample the compiled event study on ``simulation`` as
        :func:`models.event_study.bayes.fit_bayes_event_study` does; problems are those of
        :meth:`BayesEventStudyFit.convergence_problems` (after the retry, as in the fit)."""
        from models.bayes.sampler import run_nutpie
        from models.panel.bayes import COLLAPSED_TARGET_ACCEPT, RETRY_TARGET_ACCEPT
        from models.panel.collapsed import add_linear_terms
        from models.panel.model import collapsed_stats, marginal_model_data

        settings = {**self.sampling, **(sampling or {})}
        design = self._prepare(simulation.data["y"])
        compiled = self.compiled.with_data(**marginal_model_data(design, self.resolved,
                                                                 "collapsed"))
        for target in (COLLAPSED_TARGET_ACCEPT, RETRY_TARGET_ACCEPT):
            idata, seconds = run_nutpie(compiled, settings["draws"], settings["tune"],
                                        settings["chains"], seed, False, target,
                                        low_rank_mass_matrix=True)
            if not int(idata.sample_stats["diverging"].sum()):
                break
        idata.posterior = idata.posterior.assign_coords(coef=self.terms, event=self.terms)
        add_linear_terms(idata, design, collapsed_stats(design, self.resolved), seed)
        _keep_identified_mundlak_terms(idata, self.terms, [self.terms[0]])
        spec = {"regressors": self.terms, "likelihood": "normal", "n_obs": design.n_obs,
                "event_years": self.event_years, "reference": REFERENCE}
        fit = BayesEventStudyFit.record(idata, spec=spec, priors={},
                                        data_hash=design.data_hash(), seed=seed,
                                        times={"sampling_s": seconds})
        post = idata.posterior
        draws = {t: post["slope"].sel(coef=t).values.reshape(-1) for t in self.terms}
        draws.update({name: post[name].values.reshape(-1)
                      for name in ("sigma", "unit_sd", "year_sd")})
        return CalibrationFit(draws, fit.convergence_problems())


# Fixed priors on the log link: counts around exp(1.5) ~ 4.5 a unit-year, effects of a few
# tenths of a log point, overdispersion alpha (variance mu + mu^2 / alpha) of order 10. The
# year effects are centred in the model: a year_sd prior with mass near zero puts the sampler
# in their funnel (divergences in about one fit in three), so year_sd ~ gamma(4, 10) (mean
# 0.4, P(year_sd < 0.1) = 2%).
NEGBIN_PRIORS = {
    "intercept": "normal(1.5, 0.5)",
    "slope": "normal(0, 0.5)",
    "between": "normal(0, 0.5)",
    "unit_sd": "halfnormal(0.5)",
    "year_sd": "gamma(4, 10)",
    "alpha": "gamma(4, 0.4)",
}
# The fit's --target-accept: smaller steps for the curvature the sampled effects leave.
NEGBIN_TARGET_ACCEPT = 0.95
NEGBIN_PATH_PRIOR = EventPathPrior("independent", scale=0.5, step=0.5)


class EventStudyNegbinCalibration(EventStudyCalibration):
    """Simulate from and fit the negative-binomial Bayesian event study (log link, unit
    offsets sampled non-centred): for unit i and year t

        count_it ~ NegBin(exp(eta_it), alpha),
        eta_it = alpha_0 + sum_k b_k D~_k,it + lambda (Dbar_1,i - Dbar_1) + unit_sd z_i + tau_t,

    z_i ~ N(0, 1), tau ~ ZeroSumNormal(year_sd), b_k ~ N(0, 0.5), priors
    :data:`NEGBIN_PRIORS`; the design is that of :class:`EventStudyCalibration`. The model is
    compiled once with the counts in a data container and sampled as the fit does (low-rank
    mass matrix) at target acceptance :data:`NEGBIN_TARGET_ACCEPT`."""

    name = "event_study_negbin"
    priors = NEGBIN_PRIORS
    path_prior = NEGBIN_PATH_PRIOR
    scales = ("alpha", "unit_sd", "year_sd")
    link = "log"

    def _build_model(self, design):
        from models.panel.model import build_twfe_model

        return build_twfe_model(design, self.resolved, "negbin", "mundlak", "sampled",
                                slope_builder=self.slope_prior.build, outcome_container=True)

    def simulate(self, rng: np.random.Generator) -> Simulation:
        """(b, alpha_0, lambda, unit_sd, year_sd, alpha) from the priors, then the counts
        from the negative binomial with mean exp(eta)."""
        k = len(self.terms)
        path = rng.normal(0.0, self.path_prior.scale, size=k)
        intercept = rng.normal(1.5, 0.5)
        between = rng.normal(0.0, 0.5, size=k)
        unit_sd = abs(rng.normal(0.0, 0.5))
        year_sd = rng.gamma(4.0, 1.0 / 10.0)
        alpha = rng.gamma(4.0, 1.0 / 0.4)
        unit_offset = rng.normal(size=self.n_units)
        year_effect = year_sd * rng.normal(size=len(YEARS))
        year_effect -= year_effect.mean()
        eta = (intercept + self.x_within @ path
               + (self.unit_means @ between + unit_sd * unit_offset)[self.unit_idx]
               + year_effect[self.time_idx])
        mu = np.exp(eta)
        # NegBin(mu, alpha) as a gamma-Poisson mixture: rate ~ Gamma(alpha, mu / alpha).
        counts = rng.poisson(rng.gamma(alpha, mu / alpha)).astype(float)
        truth = dict(zip(self.terms, path, strict=True))
        truth.update(alpha=alpha, unit_sd=unit_sd, year_sd=year_sd)
        return Simulation({key: float(v) for key, v in truth.items()},
                          {"y": counts, "intercept": float(intercept), "between": between,
                           "unit_offset": unit_offset, "year_effect": year_effect})

    def data_values(self, simulation: Simulation) -> dict[str, np.ndarray]:
        """The model's data containers for one simulation: the counts, by row and as distinct
        values with their frequencies (:func:`models.panel.negbin.negbin_data`)."""
        from models.panel.negbin import negbin_data

        return negbin_data("y", simulation.data["y"])

    def unconstrained_truth(self, simulation: Simulation) -> dict[str, np.ndarray]:
        """Every free variable's true value as a point of the model's value variables (the
        zero-sum year effects in the model's own n - 1 coordinates)."""
        import pytensor.tensor as pt

        truth, data = simulation.truth, simulation.data
        values = {"intercept": data["intercept"], "event_path": [truth[t] for t in self.terms],
                  "between": data["between"], "unit_offset": data["unit_offset"],
                  "year_effect": data["year_effect"], "unit_sd": truth["unit_sd"],
                  "year_sd": truth["year_sd"], "alpha": truth["alpha"]}
        point = {}
        for rv in self.model.free_RVs:
            value = np.asarray(values[rv.name], dtype=float)
            transform = self.model.rvs_to_transforms[rv]
            if transform is not None:
                value = transform.forward(pt.as_tensor_variable(value),
                                          *rv.owner.inputs).eval()
            point[self.model.rvs_to_values[rv].name] = np.asarray(value)
        return point

    def fit(self, simulation: Simulation, seed: int, sampling: dict[str, Any] | None = None
            ) -> CalibrationFit:
        """Sample the compiled negative-binomial event study on ``simulation`` as
        :func:`models.event_study.bayes.fit_bayes_event_study` does with
        ``target_accept=NEGBIN_TARGET_ACCEPT``; problems are those of
        :meth:`BayesEventStudyFit.convergence_problems`."""
        from models.bayes.sampler import run_nutpie

        settings = {**self.sampling, **(sampling or {})}
        compiled = self.compiled.with_data(**self.data_values(simulation))
        idata, seconds = run_nutpie(compiled, settings["draws"], settings["tune"],
                                    settings["chains"], seed, False, NEGBIN_TARGET_ACCEPT,
                                    low_rank_mass_matrix=True)
        idata.posterior = idata.posterior.assign_coords(coef=self.terms, event=self.terms)
        _keep_identified_mundlak_terms(idata, self.terms, [self.terms[0]])
        spec = {"regressors": self.terms, "likelihood": "negbin",
                "n_obs": self.unit_idx.size, "event_years": self.event_years,
                "reference": REFERENCE}
        fit = BayesEventStudyFit.record(idata, spec=spec, priors={}, data_hash="", seed=seed,
                                        times={"sampling_s": seconds})
        post = idata.posterior
        draws = {t: post["slope"].sel(coef=t).values.reshape(-1) for t in self.terms}
        draws.update({name: post[name].values.reshape(-1) for name in self.scales})
        return CalibrationFit(draws, fit.convergence_problems())

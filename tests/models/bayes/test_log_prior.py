"""The vectorised log prior equals PyMC's draw-by-draw ``compute_log_prior``."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from models.bayes.log_prior import compute_log_prior
from models.bayes.priors import FAMILIES, Prior


def _model_and_draws():
    """A model with every prior family of :data:`FAMILIES` as a scalar, a vector prior with
    named dims, a multivariate normal (one log density per vector), a hierarchical normal, a
    zero-sum effect and the bounded families the models use; its 'posterior' is 2 chains x 40
    prior draws (what the densities are evaluated at does not matter to the comparison)."""
    import pymc as pm

    params = {"normal": (0.5, 2.0), "studentt": (4.0, 0.0, 1.5), "cauchy": (0.0, 2.0),
              "uniform": (-1.0, 3.0), "flat": (), "halfnormal": (2.0,),
              "halfstudentt": (3.0, 1.0), "halfcauchy": (1.5,), "exponential": (0.7,),
              "gamma": (2.0, 3.0), "inversegamma": (3.0, 2.0), "lognormal": (0.1, 0.5),
              "halfflat": ()}
    assert set(params) == set(FAMILIES)
    coords = {"coef": ["a", "b", "c"], "group": ["g1", "g2", "g3", "g4"]}
    with pm.Model(coords=coords) as model:
        for family, args in params.items():
            Prior.of(family, *args).to_pymc(f"p_{family}")
        pm.Normal("slope", mu=np.array([0.0, 1.0, -1.0]), sigma=np.array([1.0, 2.0, 3.0]),
                  dims="coef")
        mu = pm.Normal("mu", 0.0, 1.0)
        tau = pm.HalfNormal("tau", 1.0)
        pm.Normal("group_mean", mu=mu, sigma=tau, dims="group")
        pm.ZeroSumNormal("year_effect", sigma=tau, shape=5)
        pm.Beta("share", 2.0, 3.0)
        pm.MvNormal("joint", mu=np.zeros(3), cov=np.array([[1.0, 0.3, 0.0], [0.3, 2.0, 0.1],
                                                             [0.0, 0.1, 0.5]]), dims="coef")
        pm.TruncatedNormal("rho", mu=0.2, sigma=0.5, lower=-1.0, upper=1.0)
    rng = np.random.default_rng(3)
    with model:
        prior = pm.sample_prior_predictive(draws=80, random_seed=5,
                                           var_names=[v.name for v in model.free_RVs
                                                      if "flat" not in v.name]).prior
    posterior = {name: prior[name].values.reshape(2, 40, *prior[name].shape[2:])
                 for name in prior.data_vars}
    posterior["p_flat"] = rng.normal(size=(2, 40))
    posterior["p_halfflat"] = rng.exponential(size=(2, 40))
    dims = {"slope": ["coef"], "group_mean": ["group"], "joint": ["coef"]}
    return model, az.from_dict(posterior=posterior, coords=coords, dims=dims)


@pytest.mark.parametrize("mode", ["FAST_COMPILE", "NUMBA"])
def test_log_prior_equals_pymc_compute_log_prior(mode):
    """Every family, vectorised in PyTensor's Python backend (the models' mode) and in numba
    (only the hierarchical part, to keep the compile short) against PyMC draw by draw."""
    import pymc as pm

    model, idata = _model_and_draws()
    names = ([v.name for v in model.free_RVs] if mode == "FAST_COMPILE"
             else ["slope", "tau", "group_mean", "year_effect", "rho", "joint"])
    ours = compute_log_prior(idata.copy(), model, names, mode=mode).log_prior
    reference = pm.compute_log_prior(idata.copy(), model=model, var_names=names,
                                     progressbar=False,
                                     compile_kwargs={"mode": "FAST_COMPILE"}).log_prior
    assert set(ours.data_vars) == set(reference.data_vars) == set(names)
    for name in names:
        assert ours[name].dims == reference[name].dims, name
        np.testing.assert_allclose(ours[name].values, reference[name].values, rtol=1e-12,
                                   atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(ours["group_mean"]["group"].values, ["g1", "g2", "g3", "g4"])


def test_log_prior_of_a_subset_replaces_the_group():
    model, idata = _model_and_draws()
    first = compute_log_prior(idata, model, ["tau", "group_mean"], mode="FAST_COMPILE")
    assert set(first.log_prior.data_vars) == {"tau", "group_mean"}
    again = compute_log_prior(first, model, ["slope"], mode="FAST_COMPILE")
    assert set(again.log_prior.data_vars) == {"slope"}


def test_log_prior_names_what_is_missing():
    model, idata = _model_and_draws()
    with pytest.raises(ValueError, match=r"\['nope'\] are not free variables"):
        compute_log_prior(idata, model, ["nope"])
    without = idata.copy()
    without.posterior = without.posterior.drop_vars("tau")
    with pytest.raises(ValueError, match=r"no draws of \['tau'\]"):
        compute_log_prior(without, model, ["group_mean"])

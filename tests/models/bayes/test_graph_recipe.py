"""Stored rewritten graphs: a warm process compiles the same code without PyTensor's rewriting,
on the model's current data, and any change to the model gives it a new entry."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from models.bayes import graph_recipe, nutpie_compile
from models.bayes.nutpie_compile import compile_model, logp_function
from tests.models.bayes.recipe_processes import child_environment, child_source, store_then_load
from tests.models.bayes.test_nutpie_compile import _point


@pytest.fixture
def recipes(tmp_path, monkeypatch):
    """Recipes go to a folder of the test's own."""
    folder = tmp_path / "recipes"
    monkeypatch.setattr(graph_recipe, "recipe_path", lambda digest: folder / f"{digest}.pkl")
    return folder


def _model(y, x, prior_sd=2.0):
    """y_i ~ N(a + b x_i, sigma) with x a data container and y observed constants."""
    import pymc as pm

    with pm.Model() as model:
        data = pm.Data("x", x)
        a = pm.Normal("a", 0.0, 5.0)
        b = pm.Normal("b", 0.0, prior_sd)
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Deterministic("twice_b", 2.0 * b)
        pm.Normal("obs", a + b * data, sigma, observed=y)
    return model


def _assert_density_is_pymc(model, compiled):
    ours = logp_function(compiled)
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    rng = np.random.default_rng(2)
    for _ in range(3):
        x = rng.normal(size=compiled._n_dim)
        value, gradient = ours(x)
        np.testing.assert_allclose(value, logp(_point(model, x)), rtol=1e-10)
        np.testing.assert_allclose(gradient, dlogp(_point(model, x)), rtol=1e-9, atol=1e-10)


def _forbid_rewriting(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was compiled anew although its recipe was stored")

    monkeypatch.setattr(nutpie_compile, "_compile_graphs", refuse)


def _data(seed, n=30):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return 1.0 + 0.5 * x + rng.normal(size=n), x


def test_second_compile_loads_the_recipe_on_new_container_data(recipes, monkeypatch):
    y, x = _data(1)
    first = compile_model(_model(y, x))
    assert len(list(recipes.glob("*.pkl"))) == 1
    _forbid_rewriting(monkeypatch)
    other_x = np.random.default_rng(9).normal(size=x.size)
    model = _model(y, other_x)
    second = compile_model(model)
    _assert_density_is_pymc(model, second)
    assert first.cached and second.cached and second.cache_keys == first.cache_keys
    draws_names = second.shape_info[0]
    assert draws_names == first.shape_info[0] and "twice_b" in draws_names


def test_a_recipe_whose_cfunc_numba_lacks_builds_its_function(recipes, monkeypatch):
    """A recipe's functions stay unbuilt while numba's cache holds the C function around them;
    where it does not (here: a new version of the wrapper's source), they are built from the
    stored graph and the density is still PyMC's."""
    import uuid

    from models.bayes import nutpie_cfunc

    y, x = _data(4)
    compile_model(_model(y, x))
    _forbid_rewriting(monkeypatch)
    monkeypatch.setattr(nutpie_cfunc, "CFUNC_VERSION", f"test{uuid.uuid4().hex}")
    built = []
    original = nutpie_compile.GraphFunction.built
    monkeypatch.setattr(nutpie_compile.GraphFunction, "built",
                        lambda self: built.append(self.key) or original(self))
    model = _model(y, x)
    _assert_density_is_pymc(model, compile_model(model))
    assert len(built) == 2  # the log density and the expansion


def _diagonal_model(y):
    """Rows of y ~ MvNormal(mu, diag(scale^2)): the diagonal covariance is an OpFromGraph
    (AllocDiag) whose inner graph the numba backend rewrites when it compiles it."""
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 5.0, shape=y.shape[1])
        scale = pm.HalfNormal("scale", 1.0, shape=y.shape[1])
        pm.MvNormal("obs", mu, cov=pt.diag(scale**2), observed=y)
    return model


def test_inner_graphs_load_without_rewrite_failures(recipes, monkeypatch):
    import logging

    class Count(logging.Handler):
        def __init__(self):
            super().__init__(logging.ERROR)
            self.records = []

        def emit(self, record):
            self.records.append(record)

    y = np.random.default_rng(4).normal(size=(30, 3))
    counter = Count()
    logger = logging.getLogger("pytensor")
    logger.addHandler(counter)
    try:
        first = compile_model(_diagonal_model(y))
        _forbid_rewriting(monkeypatch)
        model = _diagonal_model(y)
        second = compile_model(model)
    finally:
        logger.removeHandler(counter)
    assert counter.records == []
    _assert_density_is_pymc(model, second)
    assert second.cache_keys == first.cache_keys


@pytest.mark.parametrize("change", ["observed", "prior", "shape"])
def test_a_changed_model_gets_its_own_recipe(recipes, change):
    y, x = _data(1)
    compile_model(_model(y, x))
    if change == "observed":
        model = _model(y + 1.0, x)
    elif change == "prior":
        model = _model(y, x, prior_sd=3.0)
    else:
        y, x = _data(1, n=31)
        model = _model(y, x)
    compiled = compile_model(model)
    _assert_density_is_pymc(model, compiled)
    assert len(list(recipes.glob("*.pkl"))) == 2


def test_digest_describes_ops_and_refuses_what_it_cannot(recipes, monkeypatch):
    from pytensor.graph.op import Op

    class Opaque(Op):
        def make_node(self, *inputs):
            raise NotImplementedError

        def perform(self, node, inputs, outputs):
            raise NotImplementedError

    with pytest.raises(graph_recipe.UncacheableError, match="Opaque has no __props__"):
        graph_recipe._describe(Opaque())

    def uncacheable(*args):
        raise graph_recipe.UncacheableError("test")

    monkeypatch.setattr(graph_recipe, "model_digest", uncacheable)
    y, x = _data(2)
    model = _model(y, x)
    _assert_density_is_pymc(model, compile_model(model))
    assert not recipes.exists()


def test_unreadable_recipe_is_compiled_anew_and_replaced(recipes):
    y, x = _data(3)
    compile_model(_model(y, x))
    (path,) = recipes.glob("*.pkl")
    path.write_bytes(b"not a pickle")
    model = _model(y, x)
    _assert_density_is_pymc(model, compile_model(model))
    assert graph_recipe.load(path) is not None


_CHILD = """
from models.mediation.calibration import MediationCalibration
compiled = nutpie_compile.compile_model(MediationCalibration(quick=True).model)
x = compiled.initial_point_func(1)
value, _ = nutpie_compile.logp_function(compiled)(x)
print(json.dumps({"value": value, "keys": list(compiled.cache_keys)}))
"""


def test_another_process_compiles_the_same_code(tmp_path):
    """The process that stores a recipe and the one that loads it generate the same code, so
    numba's cache key (and with it the disk entry) is the same."""
    results = store_then_load(_CHILD, tmp_path)
    assert results[0]["keys"] == results[1]["keys"] and results[0]["keys"][0]
    assert results[0]["value"] == results[1]["value"]


_WAITER = """
from models.mediation.calibration import MediationCalibration
model = MediationCalibration(quick=True).model
print("compiling", flush=True)
nutpie_compile.compile_model(model)
print("loaded", flush=True)
"""


def test_a_second_process_waits_for_the_model_being_compiled(tmp_path, monkeypatch):
    """While one process holds a model's lock, another compiling the same model waits, then
    loads the recipe the first stored instead of compiling it again."""
    from pymc.initial_point import make_initial_point_fn

    from models.mediation.calibration import MediationCalibration

    monkeypatch.setattr(graph_recipe, "recipe_path", lambda digest: tmp_path / f"{digest}.pkl")
    model = MediationCalibration(quick=True).model
    point = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                  return_transformed=True)(0)
    shapes = {model.rvs_to_values[v].name: tuple(np.shape(point[model.rvs_to_values[v].name]))
              for v in model.free_RVs}
    path = nutpie_compile._recipe_path(model, None, shapes)
    source = child_source(_WAITER, tmp_path, forbid=True)
    with graph_recipe.compiling(path):
        child = subprocess.Popen([sys.executable, "-c", source], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=child_environment())
        assert child.stdout.readline().strip() == "compiling"
        time.sleep(5)  # without the lock the child would find no recipe and compile
        nutpie_compile._graphs(model, None, shapes, path)  # stores the recipe
        assert child.poll() is None  # still waiting for the lock
    out, err = child.communicate(timeout=600)
    assert child.returncode == 0, err[-2000:]
    assert out.strip() == "loaded"

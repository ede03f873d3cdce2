"""A PyMC model as a nutpie model whose compiled code is cached on disk across processes.

nutpie's own numba route (``nutpie.compile_pymc_model(model, backend="numba")``) wraps the
model's PyTensor functions in two ``numba.cfunc``s that numba cannot cache (they refer to
runtime addresses), so every process pays their LLVM compilation again: 10-25 s per model
measured here, even when PyTensor's on-disk cache holds every inner function.

This route keeps the one density, PyMC's, and compiles it once per machine:

* the log density and its gradient in the unconstrained point, and the draws' expansion to
  every traced variable, are PyTensor graphs built the way nutpie builds them;
* every array constant of those graphs (after constant folding) and every ``pm.Data``
  becomes an explicit input: the compiled code then holds no data, so numba may cache it,
  and the cache entry serves any data of the same shapes;
* the graphs are compiled in PyTensor's NUMBA mode, whose code numba caches under
  PyTensor's ``base_compiledir`` (``$PYTENSOR_FLAGS=base_compiledir=DIR``, default
  ``~/.pytensor``); the log density is called through a one-line ``nogil`` numba wrapper,
  cached there too, so that nutpie's chains evaluate gradients in parallel threads;
* nutpie drives these as Python callables (``nutpie.compiled_pyfunc.from_pyfunc``).

A graph containing an Op without a PyTensor cache key still works but compiles in every
process (:func:`compile_model` reports it in ``cached``).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from functools import partial
from math import prod
from typing import Any

import numpy as np

# Constants with fewer elements stay in the graph: rewrites read their values (a scale of
# 1, a zero mean), and they are too small to slow the compilation or block the cache.
LIFT_MIN_SIZE = 2
WRAPPER_VERSION = "4"
# Gradients cheaper than this pay a large share in the callable interface's overhead.
CFUNC_BELOW_S = 1e-4


@dataclass(frozen=True)
class GraphFunction:
    """A compiled PyTensor graph f(x, *data): its numba function, the names of its data
    inputs (``pm.Data`` names or generated ``__PREFIX_constant_j`` names) and whether numba's
    on-disk cache holds its code."""

    function: Any
    data_names: tuple[str, ...]
    cached: bool
    key: str | None = None


_MODEL_CLASS: list[Any] = []


def _cached_model_class():
    """nutpie's Python-callable model, with ``cached`` and a ``with_data`` that keeps each
    data input's dtype and rank (the compiled code is typed by them)."""
    if not _MODEL_CLASS:
        from nutpie.compiled_pyfunc import PyFuncModel

        @dataclass(frozen=True)
        class CachedPyFuncModel(PyFuncModel):
            cached: bool = False

            def with_data(self, **updates):
                values = {}
                for name, value in updates.items():
                    old = self._shared_data.get(name)
                    if old is None:
                        raise KeyError(f"Unknown shared variable: {name}")
                    new = np.array(value, dtype=old.dtype, order="C")
                    if new.ndim != old.ndim:
                        raise ValueError(f"Shared variable {name} must have rank {old.ndim}")
                    values[name] = new
                return super().with_data(**values)

        _MODEL_CLASS.append(CachedPyFuncModel)
    return _MODEL_CLASS[0]


def lift_data(inputs, outputs, prefix: str) -> tuple[list, list, dict[str, np.ndarray]]:
    """Replace the model's ``pm.Data`` and every array constant of ``outputs`` (at least
    :data:`LIFT_MIN_SIZE` elements) by explicit inputs; returns the new outputs, the data
    input variables and their values by name."""
    import pytensor
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import ancestors

    replace: dict[Any, Any] = {}
    values: dict[str, np.ndarray] = {}
    variables = []
    for variable in ancestors(outputs, blockers=inputs):
        if isinstance(variable, SharedVariable):
            name = variable.name
            value = np.asarray(variable.get_value())
        elif isinstance(variable, Constant) and getattr(variable.type, "ndim", 0) >= 1 \
                and np.size(variable.data) >= LIFT_MIN_SIZE:
            name = f"__{prefix}_constant_{len(values)}"
            value = np.asarray(variable.data)
        else:
            continue
        if name in values:
            raise ValueError(f"two data inputs of the model are both named {name!r}")
        new = variable.type()
        new.name = name
        replace[variable] = new
        values[name] = np.array(value, order="C")  # ascontiguousarray would make 0-d 1-d
        variables.append(new)
    new_outputs = pytensor.clone_replace(list(outputs), replace) if replace else list(outputs)
    return new_outputs, variables, values


def compile_graph(inputs, outputs, model, log_density: bool, prefix: str,
                  interface: str = "pyfunc") -> tuple[GraphFunction, dict[str, np.ndarray]]:
    """Compile ``outputs`` as a function of ``inputs`` and the model's data in PyTensor's
    NUMBA mode; a ``log_density`` (outputs value, gradient) returns the value as a float and
    releases the GIL while it runs."""
    from pymc.pytensorf import compile as compile_pymc
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    outputs, data_vars, values = lift_data(inputs, outputs, prefix)
    with model:
        function = compile_pymc([*inputs, *data_vars], outputs, mode="NUMBA",
                                on_unused_input="ignore")
    if function.get_shared():
        raise ValueError("the compiled graph kept shared variables: "
                         + ", ".join(str(v) for v in function.get_shared()))
    inner = function.vm.jit_fn
    key = CACHED_SRC_FUNCTIONS.get(inner.py_func)
    if key is not None:
        # PyTensor's callable is a cached shim around the graph's own numba function: call
        # the latter, so that the cold compilation links and optimises the code once less.
        inner = inner.py_func.__globals__.get("jitable_func", inner)
    names = tuple(v.name for v in data_vars)
    if interface == "cfunc":
        return GraphFunction(inner, names, key is not None, key), values
    function = _wrapper(inner, len(inputs) + len(data_vars), key, log_density)
    return GraphFunction(function, names, key is not None, key), values


def _wrapper(inner, n_args: int, key: str | None, log_density: bool):
    """The numba function called per evaluation, cached under ``key``: ``inner``'s outputs,
    or for the log density (value as a float, gradient) with the GIL released."""
    import numba
    from pytensor.link.numba.cache import compile_numba_function_src

    args = ", ".join(f"a{j}" for j in range(n_args))
    if log_density:
        # The log density leaves as a float: no 0-d array to box and convert per gradient.
        source = (f"def nogil_call({args}):\n    value, grad = inner({args})\n"
                  f"    return value[()], grad\n")
    else:
        source = f"def nogil_call({args}):\n    return inner({args})\n"
    kind = "logp" if log_density else "expand"
    cache_key = None if key is None else f"nutpie_{kind}_v{WRAPPER_VERSION}_{key}"
    # The module globals give the cached code an importable home (numba rebuilds its
    # environment from the module name).
    python = compile_numba_function_src(source, "nogil_call", globals() | {"inner": inner},
                                        cache_key=cache_key)
    return numba.njit(python, nogil=log_density, cache=cache_key is not None)


def _value_var_graphs(model, free_shapes: dict[str, tuple[int, ...]]):
    """The joined unconstrained point, the log density and gradient graphs in it, the
    replacements of the value variables and (names, slices, shapes) of the free variables."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.basic import Constant
    from pytensor.graph.fg import FunctionGraph
    from pytensor.graph.traversal import graph_inputs
    from pytensor.tensor.rewriting.basic import topo_constant_folding

    value_vars = [model.rvs_to_values[v] for v in model.free_RVs]
    logp = model.logp()
    rewrites = ["canonicalize", "stabilize"]
    if not model.check_bounds:
        rewrites.append("local_remove_check_parameter")
    logp = pytensor.graph.rewrite_graph(logp, include=rewrites)
    grads = pytensor.gradient.grad(logp, value_vars)
    grad = pt.concatenate([pt.as_tensor(g).ravel() for g in grads])
    names, slices, var_shapes = [], [], []
    count = 0
    for value_var in value_vars:
        shape = free_shapes[value_var.name]
        names.append(value_var.name)
        slices.append(slice(count, count + prod(shape)))
        var_shapes.append(shape)
        count += prod(shape)
    joined = pt.TensorType("float64", shape=(count,))(name="_unconstrained_point")
    replacements = {value_var: joined[piece].reshape(shape).astype(value_var.dtype)
                    for value_var, piece, shape in zip(value_vars, slices, var_shapes,
                                                       strict=True)}
    logp, grad = pytensor.clone_replace([logp, grad], replacements)
    # Fold constants before the data become inputs: what depends on data alone (the
    # gradient adds such terms) is computed once here, not at every gradient.
    inputs = [v for v in graph_inputs([logp, grad]) if not isinstance(v, Constant)]
    graph = FunctionGraph(inputs, [logp, grad])
    topo_constant_folding.rewrite(graph)
    logp, grad = pytensor.clone_replace(graph.outputs, dict(zip(graph.inputs, inputs,
                                                                strict=True)))
    return joined, logp, grad, replacements, (names, slices, var_shapes)


def compile_model(model, var_names=None, many_fits: bool = False):
    """nutpie model of the PyMC ``model`` (log density, gradient and expansion to the traced
    variables; initial points jittered as nutpie's ``compile_pymc_model`` does), compiled in
    PyTensor's NUMBA mode with the data as inputs so that numba's on-disk cache serves it in
    the next process. The model's ``pm.Data`` can be replaced with ``with_data(name=value)``.

    The returned model's ``cached`` is True when numba's disk cache can hold the code of
    both functions (every Op of the graphs has a PyTensor cache key).

    ``many_fits``: the compiled model will serve many fits in this process (simulation-based
    calibration). Each gradient through nutpie's Python-callable interface costs a few
    microseconds more than through its ``cfunc``s (and the chains share the GIL for that
    part), which for a cheap gradient doubles the sampling time: measured on the event-study
    calibration model, 1.6 s more per fit against 30 s of compilation saved, so beyond about
    20 fits the uncached ``cfunc`` route is faster. With ``many_fits`` a model whose gradient
    takes less than :data:`CFUNC_BELOW_S` is therefore compiled by
    ``nutpie.compile_pymc_model`` instead; a costlier one (the threshold marginal) keeps this
    route, whose sampling is as fast.
    """
    compiled = _compile_cached(model, var_names)
    if many_fits and seconds_per_gradient(compiled) < CFUNC_BELOW_S:
        import nutpie

        return nutpie.compile_pymc_model(model, backend="numba", var_names=var_names)
    return compiled


def seconds_per_gradient(compiled, repeats: int = 200) -> float:
    """Median wall time of one log density and gradient evaluation at an initial point of a
    :func:`compile_model` result, from Python (what nutpie's callable interface pays)."""
    import time

    function = logp_function(compiled)
    point = compiled._make_initial_points(0)
    batches = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats // 5):
            function(point)
        batches.append((time.perf_counter() - start) / (repeats // 5))
    return float(np.median(batches))


def compile_cfunc_model(model, var_names=None):
    """As :func:`compile_model`, through nutpie's C-callable interface: the chains call the
    compiled code without Python, and the code is cached on disk
    (:mod:`models.bayes.nutpie_cfunc`)."""
    import pytensor
    from nutpie.compile_pymc import _compute_shapes, _prepare_dims_and_coords
    from pymc.initial_point import make_initial_point_fn

    from models.bayes import nutpie_cfunc

    point_fn = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                     return_transformed=True)
    lock = threading.Lock()
    first_point = point_fn(0)
    names = [model.rvs_to_values[v].name for v in model.free_RVs]
    free_shapes = {n: tuple(np.shape(first_point[n])) for n in names}
    joined, logp, grad, replacements, (names, slices, free_list) = \
        _value_var_graphs(model, free_shapes)
    logp_fn, shared = compile_graph([joined], [logp, grad], model, log_density=True,
                                    prefix="logp", interface="cfunc")
    remaining = [v for v in model.unobserved_value_vars if v.name not in names]
    if var_names is not None:
        remaining = [v for v in remaining if v.name in set(var_names)]
    expand_fn = None
    if remaining:
        expand_fn, expand_values = compile_graph(
            [joined], pytensor.clone_replace(remaining, replacements), model,
            log_density=False, prefix="expand", interface="cfunc")
        shared.update(expand_values)
    static = [v.type.shape for v in remaining]
    if all(s is not None for shape in static for s in shape):
        remaining_shapes = [tuple(int(s) for s in shape) for shape in static]
    else:
        shapes = _compute_shapes(model)
        remaining_shapes = [tuple(int(s) for s in shapes[v.name]) for v in remaining]
    n_dim = slices[-1].stop if slices else 0
    offsets = nutpie_cfunc.user_data_layout(shared)
    logp_c = nutpie_cfunc.logp_cfunc(logp_fn.function, logp_fn.key, n_dim,
                                     logp_fn.data_names, shared, offsets)
    sizes = [prod(shape) for shape in remaining_shapes]
    expand_c = nutpie_cfunc.expand_cfunc(
        expand_fn.function if expand_fn else None,
        expand_fn.key if expand_fn else logp_fn.key, n_dim, sizes,
        expand_fn.data_names if expand_fn else (), shared, offsets)

    def initial_point(seed):
        with lock:
            point = point_fn(seed)
        return np.concatenate([np.asarray(point[n], dtype="float64").ravel() for n in names])

    all_names = [*names, *[v.name for v in remaining]]
    all_shapes = [*free_list, *remaining_shapes]
    all_slices, position = [], 0
    for shape in all_shapes:
        all_slices.append(slice(position, position + prod(shape)))
        position += prod(shape)
    shape_info = (all_names, all_slices, all_shapes)
    dims, coords = _prepare_dims_and_coords(model, shape_info)
    cached = logp_fn.cached and (expand_fn is None or expand_fn.cached)
    return nutpie_cfunc.cfunc_model_class()(
        dims=dims, compiled_logp_func=logp_c, compiled_expand_func=expand_c,
        initial_point_func=initial_point, shared_data=shared,
        user_data=nutpie_cfunc.user_data_array(shared, offsets), n_expanded=position,
        shape_info=shape_info, logp_func=None, expand_func=None, _n_dim=n_dim,
        _shapes=dict(zip(all_names, all_shapes, strict=True)), _coords=coords, cached=cached)


def _compile_cached(model, var_names=None):
    """:func:`compile_model` without the choice of route."""
    import pytensor
    from nutpie.compile_pymc import _prepare_dims_and_coords
    from nutpie.compiled_pyfunc import from_pyfunc
    from pymc.initial_point import make_initial_point_fn

    point_fn = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                     return_transformed=True)
    lock = threading.Lock()
    first_point = point_fn(0)
    free_shapes = {model.rvs_to_values[v].name: tuple(np.shape(first_point[
        model.rvs_to_values[v].name])) for v in model.free_RVs}
    joined, logp, grad, replacements, (names, slices, free_list) = \
        _value_var_graphs(model, free_shapes)
    logp_fn, logp_values = compile_graph([joined], [logp, grad], model, log_density=True,
                                         prefix="logp")

    remaining = [v for v in model.unobserved_value_vars if v.name not in names]
    if var_names is not None:
        remaining = [v for v in remaining if v.name in set(var_names)]
    expand_fn, expand_values = None, {}
    if remaining:
        expand_fn, expand_values = compile_graph(
            [joined], pytensor.clone_replace(remaining, replacements), model, log_density=False,
            prefix="expand")
    n_dim = slices[-1].stop if slices else 0

    def initial_point(seed):
        with lock:
            point = point_fn(seed)
        return np.concatenate([np.asarray(point[n], dtype="float64").ravel() for n in names])

    shared = {**logp_values, **expand_values}
    logp_keys, logp_call = logp_fn.data_names, logp_fn.function
    expand_keys = expand_fn.data_names if expand_fn else ()
    expand_call = expand_fn.function if expand_fn else None
    remaining_names = [v.name for v in remaining]

    def make_logp():
        def logp(x, **data):
            return logp_call(x, *[data[k] for k in logp_keys])
        return logp

    def make_expand(seed1, seed2, chain):
        def expand(x, **data):
            values = {name: x[piece].reshape(shape).copy()
                      for name, piece, shape in zip(names, slices, free_list, strict=True)}
            if expand_call is not None:
                outputs = expand_call(x, *[data[k] for k in expand_keys])
                values.update((name, np.asarray(value, dtype="float64")) for name, value
                              in zip(remaining_names, outputs, strict=True))
            return values
        return expand

    # numba compiles (or loads from its cache) on the first call: make that happen here, so
    # that the compile time is spent and counted as such, not inside the first chain. The
    # call also gives the shapes of the traced variables.
    start = initial_point(0)
    make_logp()(start, **shared)
    # Later calls skip numba's argument type dispatch (a few microseconds per gradient, as
    # much as a small model's gradient): the types cannot change, as with_data keeps them.
    logp_call = _entry_point(logp_call)
    first = make_expand(0, 0, 0)(start, **shared)
    if expand_call is not None:
        expand_call = _entry_point(expand_call)
    all_names = [*names, *remaining_names]
    all_shapes = [tuple(np.shape(first[name])) for name in all_names]
    shape_info = (all_names, [None] * len(all_names), all_shapes)
    dims, coords = _prepare_dims_and_coords(model, shape_info)
    compiled = from_pyfunc(ndim=n_dim, make_logp_fn=make_logp, make_expand_fn=make_expand,
                           expanded_dtypes=[np.dtype("float64")] * len(all_names),
                           expanded_shapes=all_shapes, expanded_names=all_names,
                           coords=coords, dims=dims, shared_data=shared,
                           make_initial_point_fn=initial_point)
    fields = {f.name: getattr(compiled, f.name) for f in dataclasses.fields(compiled)}
    cached = logp_fn.cached and (expand_fn is None or expand_fn.cached)
    return _cached_model_class()(**fields, cached=cached)


def _entry_point(dispatcher):
    """The compiled code of a numba function typed once, callable without dispatch."""
    if len(dispatcher.signatures) != 1:
        return dispatcher
    return dispatcher.overloads[dispatcher.signatures[0]].entry_point


def logp_function(compiled):
    """x -> (log density, gradient) of a :func:`compile_model` result on its current data."""
    return partial(compiled._make_logp_func(), **compiled._shared_data)

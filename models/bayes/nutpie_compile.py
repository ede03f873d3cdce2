"""A PyMC model as a nutpie model whose compiled code is cached on disk across processes.

nutpie's own numba route (``nutpie.compile_pymc_model(model, backend="numba")``) wraps the
model's PyTensor functions in two ``numba.cfunc``s that numba cannot cache (they hold the
data as runtime addresses), so every process paid their LLVM compilation again: 10-35 s per
model measured here, even when PyTensor's on-disk cache held every inner function.

This route keeps the one density, PyMC's, and compiles it once per machine:

* the log density and its gradient in the unconstrained point, and the draws' expansion to
  every traced variable, are PyTensor graphs built the way nutpie builds them;
* every array constant of those graphs (after constant folding) and every ``pm.Data``
  becomes an explicit input: the compiled code then holds no data, so numba may cache it,
  and the cache entry serves any data of the same shapes;
* the graphs are compiled in PyTensor's NUMBA mode, whose code numba caches under
  PyTensor's ``base_compiledir`` (``$PYTENSOR_FLAGS=base_compiledir=DIR``, default
  ``~/.pytensor``), and called from nutpie's threads through ``cfunc``s that read the data's
  addresses from nutpie's ``user_data`` pointer (:mod:`models.bayes.nutpie_cfunc`), cached
  there too.

nutpie's Python-callable interface (``nutpie.compiled_pyfunc.from_pyfunc``) was measured as the
alternative: as cacheable, but each gradient then pays a Python call with the chains sharing
the GIL, which doubled the sampling time of the event-study model (3.2-3.7 s against 1.6-2.0 s
per fit). The C interface samples as fast as nutpie's own route.

A graph containing an Op without a PyTensor cache key still works but compiles in every
process (:func:`compile_model` reports it in ``cached``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np

# Constants with fewer elements stay in the graph: rewrites read their values (a scale of
# 1, a zero mean), and they are too small to slow the compilation or block the cache.
LIFT_MIN_SIZE = 2
# ... except float scalars that are no multiple of 1/ROUND_DENOMINATOR: such a number is the
# data's (a log determinant folded from the design), and left in the graph it gave two models
# of the same shapes on different data two cache entries (zhao2025's two-group partial-pooling
# models, 30 s each on a cold cache). Round numbers (-0.5, 2, 1/3) are what rewrites match.
ROUND_DENOMINATOR = 2520


def _data_scalar(variable) -> bool:
    """A 0-d float constant whose value is not a round number (see ROUND_DENOMINATOR)."""
    if getattr(variable.type, "ndim", None) != 0 or variable.type.dtype not in ("float64",
                                                                                 "float32"):
        return False
    value = float(variable.data)
    if not np.isfinite(value):
        return False
    scaled = value * ROUND_DENOMINATOR
    return abs(scaled - round(scaled)) > 1e-9 * max(1.0, abs(scaled))


@dataclass(frozen=True)
class GraphFunction:
    """A compiled PyTensor graph f(x, *data): its numba function, the names of its data
    inputs (``pm.Data`` names or generated ``__PREFIX_constant_j`` names) and whether numba's
    on-disk cache holds its code. From a recipe, ``function`` is None until :meth:`built`:
    the cached ``cfunc`` around it needs only its ``key``."""

    function: Any
    data_names: tuple[str, ...]
    cached: bool
    key: str | None = None
    graph: bytes | None = None  # the recipe's rewritten graph, to build ``function`` from

    def built(self) -> GraphFunction:
        """This function with its numba function compiled (from the recipe's graph)."""
        if self.function is not None:
            return self
        from models.bayes import graph_recipe

        function = graph_recipe.function_from_graph(*graph_recipe.from_bytes(self.graph))
        return _graph_function(function, self.data_names)


def lift_data(inputs, outputs, prefix: str) -> tuple[list, list, dict[str, np.ndarray]]:
    """Replace the model's ``pm.Data``, every array constant of ``outputs`` (at least
    :data:`LIFT_MIN_SIZE` elements) and every float scalar constant that is not a round number
    by explicit inputs; returns the new outputs, the data
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
        elif isinstance(variable, Constant) and (
                (getattr(variable.type, "ndim", 0) >= 1
                 and np.size(variable.data) >= LIFT_MIN_SIZE) or _data_scalar(variable)):
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


def compile_graph(inputs, outputs, model, prefix: str
                  ) -> tuple[GraphFunction, dict[str, np.ndarray], bytes | None]:
    """Compile ``outputs`` as a function of ``inputs`` and the model's data in PyTensor's
    NUMBA mode; returns the graph's numba function, the data values by input name and the
    rewritten graph as :mod:`models.bayes.graph_recipe` stores it (None if unpicklable)."""
    from models.bayes import graph_recipe, numba_special

    numba_special.register()
    outputs, data_vars, values = lift_data(inputs, outputs, prefix)
    graph = graph_recipe.rewritten_graph([*inputs, *data_vars], outputs, model.check_bounds)
    blob = graph_recipe.to_bytes(graph)
    if blob is not None:
        graph = graph_recipe.from_bytes(blob)
    function = graph_recipe.function_from_graph(*graph)
    return _graph_function(function, tuple(v.name for v in data_vars)), values, blob


def _graph_function(function, data_names: tuple[str, ...]) -> GraphFunction:
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    if function.get_shared():
        raise ValueError("the compiled graph kept shared variables: "
                         + ", ".join(str(v) for v in function.get_shared()))
    inner = function.vm.jit_fn
    key = CACHED_SRC_FUNCTIONS.get(inner.py_func)
    return GraphFunction(inner, data_names, key is not None, key)


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


@dataclass
class _Graphs:
    """What compiling a model's graphs gives: the log density and expansion functions, the
    data values by input name, and the layout of the free and remaining traced variables."""

    logp: GraphFunction
    expand: GraphFunction | None
    data: dict[str, np.ndarray]
    free: tuple[list[str], list[slice], list[tuple[int, ...]]]
    remaining: tuple[list[str], list[tuple[int, ...]]]


def _compile_graphs(model, var_names, free_shapes) -> tuple[_Graphs, dict[str, Any]]:
    """Build and compile the graphs of ``model`` (the long way); returns them and the recipe
    :mod:`models.bayes.graph_recipe` stores for the next process."""
    import pytensor
    from nutpie.compile_pymc import _compute_shapes
    from pytensor.graph.traversal import io_toposort

    joined, logp, grad, replacements, free = _value_var_graphs(model, free_shapes)
    logp_fn, data, logp_graph = compile_graph([joined], [logp, grad], model, prefix="logp")
    graphs_bytes = {"logp": logp_graph}
    names = free[0]
    remaining = [v for v in model.unobserved_value_vars if v.name not in names]
    if var_names is not None:
        remaining = [v for v in remaining if v.name in set(var_names)]
    expand_fn = None
    if remaining:
        expand_fn, expand_values, graphs_bytes["expand"] = compile_graph(
            [joined], pytensor.clone_replace(remaining, replacements), model, prefix="expand")
        data.update(expand_values)
    static = [v.type.shape for v in remaining]
    if all(s is not None for shape in static for s in shape):
        remaining_shapes = [tuple(int(s) for s in shape) for shape in static]
    else:
        shapes = _compute_shapes(model)
        remaining_shapes = [tuple(int(s) for s in shapes[v.name]) for v in remaining]
    graphs = _Graphs(logp_fn, expand_fn, data, free,
                     ([v.name for v in remaining], remaining_shapes))
    constants = {name: value for name, value in data.items() if name.startswith("__")}
    outputs = [logp, grad, *remaining]
    native = sorted({node.op for node in io_toposort([joined], outputs)
                     if hasattr(node.op, "load_native_symbols")}, key=str)
    recipe = {"graphs": graphs_bytes, "constants": constants, "free": free,
              "remaining": graphs.remaining,
              "data_names": {"logp": logp_fn.data_names,
                             "expand": expand_fn.data_names if expand_fn else ()},
              "keys": {"logp": logp_fn.key, "expand": expand_fn.key if expand_fn else None},
              "native": native}
    return graphs, recipe


def _graphs_from_recipe(model, recipe: dict[str, Any]) -> _Graphs | None:
    """The graphs of a stored recipe, the data containers' values read from ``model``; None
    when the model lacks a container the recipe names. A recipe that names the numba cache
    keys of its functions gives them unbuilt (:meth:`GraphFunction.built`): PyTensor's
    conversion of every Op, 1-1.5 s per model, is then paid only if numba's cache lacks the
    ``cfunc`` (the recipe's digest covers the libraries and ``models/``, so the same key
    means the same code). An Op whose numba code calls a C symbol of its own declares
    ``load_native_symbols()``; the recipe keeps those Ops and calls it before the load."""
    from pytensor.compile.sharedvalue import SharedVariable

    from models.bayes import graph_recipe, numba_special

    numba_special.register()
    data: dict[str, np.ndarray] = {}
    for names in recipe["data_names"].values():
        for name in names:
            if name in recipe["constants"]:
                data[name] = recipe["constants"][name]
                continue
            container = model.named_vars.get(name)
            if not isinstance(container, SharedVariable):
                return None
            data[name] = np.array(container.get_value(), order="C")
    functions = {}
    keys = recipe.get("keys") or {}
    # Code loaded from numba's cache names the C symbols such an Op registers while it is
    # converted; unconverted, the Op registers them here or LLVM aborts the process.
    for op in recipe.get("native", ()):
        op.load_native_symbols()
    for part, blob in recipe["graphs"].items():
        names = tuple(recipe["data_names"][part])
        if keys.get(part) is not None:
            functions[part] = GraphFunction(None, names, True, keys[part], blob)
            continue
        function = graph_recipe.function_from_graph(*graph_recipe.from_bytes(blob))
        functions[part] = _graph_function(function, names)
    return _Graphs(functions["logp"], functions.get("expand"), data, recipe["free"],
                   recipe["remaining"])


def _recipe_path(model, var_names, free_shapes):
    """Where the model's recipe lives (:mod:`models.bayes.graph_recipe`); None when the
    model cannot be described."""
    from models.bayes import graph_recipe

    try:
        return graph_recipe.recipe_path(graph_recipe.model_digest(model, var_names,
                                                                  free_shapes))
    except graph_recipe.UncacheableError:
        return None


def _graphs(model, var_names, free_shapes, path) -> _Graphs:
    """The compiled graphs of ``model``: from the stored recipe at ``path`` when there is
    one (no rewriting), else compiled anew and their recipe stored."""
    from models.bayes import graph_recipe

    recipe = graph_recipe.load(path) if path is not None else None
    graphs = _graphs_from_recipe(model, recipe) if recipe is not None else None
    if graphs is None:
        graphs, recipe = _compile_graphs(model, var_names, free_shapes)
        cached = graphs.logp.cached and (graphs.expand is None or graphs.expand.cached)
        if path is not None and cached and None not in recipe["graphs"].values():
            graph_recipe.save(path, recipe)
    return graphs


def compile_model(model, var_names=None):
    """nutpie model of the PyMC ``model`` (log density, gradient and expansion to the traced
    variables; initial points jittered as nutpie's ``compile_pymc_model`` does), compiled in
    PyTensor's NUMBA mode with the data as inputs and driven through nutpie's C interface by
    ``cfunc``s that take the data's addresses at run time (:mod:`models.bayes.nutpie_cfunc`),
    so that numba's on-disk cache serves every piece in the next process, and the rewritten
    graphs come from :mod:`models.bayes.graph_recipe` when an earlier process stored them.
    The model's ``pm.Data`` can be replaced with ``with_data(name=value)`` (same dtype and
    rank; the traced variables keep the shapes they had at compilation).

    The returned model's ``cached`` is True when numba's disk cache can hold the code of
    both functions (every Op of the graphs has a PyTensor cache key).
    """
    from nutpie.compile_pymc import _prepare_dims_and_coords
    from pymc.initial_point import make_initial_point_fn

    from models.bayes import graph_recipe, nutpie_cfunc

    point_fn = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                     return_transformed=True)
    lock = threading.Lock()
    first_point = point_fn(0)
    names = [model.rvs_to_values[v].name for v in model.free_RVs]
    free_shapes = {n: tuple(np.shape(first_point[n])) for n in names}
    path = _recipe_path(model, var_names, free_shapes)
    # Another process compiling this very model (the compiling helper, a parallel batch)
    # holds its lock: waiting for it, then loading what it stored, beats compiling it twice.
    with graph_recipe.compiling(path):
        graphs = _graphs(model, var_names, free_shapes, path)
        logp_fn, expand_fn, shared = graphs.logp, graphs.expand, graphs.data
        names, slices, free_list = graphs.free
        remaining_names, remaining_shapes = graphs.remaining
        n_dim = slices[-1].stop if slices else 0
        offsets = nutpie_cfunc.user_data_layout(shared)

        def logp_c_of(function: GraphFunction):
            return nutpie_cfunc.logp_cfunc(function.function, function.key, n_dim,
                                           function.data_names, shared, offsets)

        def expand_c_of(function: GraphFunction | None):
            return nutpie_cfunc.expand_cfunc(
                function.function if function else None,
                function.key if function else logp_fn.key, n_dim, remaining_shapes,
                function.data_names if function else (), shared, offsets)

        logp_c = _cached_cfunc(logp_c_of, logp_fn)
        expand_c = _cached_cfunc(expand_c_of, expand_fn)

    def initial_point(seed):
        with lock:
            point = point_fn(seed)
        return np.concatenate([np.asarray(point[n], dtype="float64").ravel() for n in names])

    all_names = [*names, *remaining_names]
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
        _shapes=dict(zip(all_names, all_shapes, strict=True)), _coords=coords, cached=cached,
        cache_keys=(logp_fn.key, expand_fn.key if expand_fn else None))


def _cached_cfunc(make, function: GraphFunction | None):
    """``make(function)``: the ``cfunc`` around ``function``, loaded from numba's cache without
    building ``function`` where it is unbuilt, else built first."""
    if function is None or function.function is not None:
        return make(function)
    from numba.core.errors import TypingError

    try:
        # Unbuilt, the inner function is a placeholder numba cannot type: a cache hit never
        # looks at it, a miss fails here and the function is built.
        return make(function)
    except TypingError:
        return make(function.built())


def logp_function(compiled):
    """x -> (log density, gradient) of a :func:`compile_model` result on its current data,
    through the same compiled C function nutpie calls."""
    import ctypes

    function = compiled.compiled_logp_func.ctypes
    pointer = ctypes.POINTER(ctypes.c_double)

    def logp(x):
        x = np.ascontiguousarray(x, dtype=np.float64)
        gradient, value = np.empty_like(x), np.empty(())
        status = function(x.size, x.ctypes.data_as(pointer), gradient.ctypes.data_as(pointer),
                          value.ctypes.data_as(pointer),
                          ctypes.c_void_p(compiled.user_data.ctypes.data))
        if status not in (0, 3, 4):
            raise RuntimeError(f"the compiled log density failed with status {status}")
        return float(value), gradient

    return logp

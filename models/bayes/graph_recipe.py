"""Rewritten log-density graphs kept on disk, so that a warm process skips PyTensor's rewriting.

numba's disk cache holds a model's compiled code, but before a process can look that code up
it has to rebuild the graph PyTensor compiled: the model's log density, its gradient, constant
folding, then PyTensor's rewrites (canonicalisation, fusion, inplace). On the zhao2025 models
that took 3-7 s per model and most of a warm run's compile time, repeating work whose result
is the same graph every time.

This module stores that rewritten graph (inputs and outputs, pickled) with the values of the
constants folded into it, under ``$base_compiledir/graph_recipes/`` (clearing the compile cache
clears them), keyed by :func:`model_digest`: the structure of the PyMC model (every node's Op
and its properties, every constant's bytes, the names and types of its data containers, the
transforms), the shapes of its free variables, the traced variable names, PyTensor's flags,
the libraries' versions and the source of ``models/``. A model that differs in any of these
gets its own entry; a model the digest cannot describe (an Op without ``__props__``) is
compiled the long way every time, as before. The data containers' values are not part of the
key: they are inputs of the compiled code, read from the model at each load.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

RECIPE_FOLDER = "graph_recipes"
LIBRARIES = ("numba", "pytensor", "pymc", "nutpie", "numpy")
_MODELS = Path(__file__).resolve().parents[1]
# Pickling a graph recurses along its longest path; PyTensor's own pickles raise the limit
# the same way.
_RECURSION_LIMIT = 20_000
# Bump when the layout of a stored recipe changes.
_FORMAT = 1


class UncacheableError(Exception):
    """The model holds something :func:`model_digest` cannot describe reliably."""


@lru_cache(maxsize=1)
def environment_digest() -> str:
    """Digest of the compiling libraries' versions and the source of ``models/``: what a
    compiled model depends on besides the model itself."""
    digest = hashlib.sha256()
    for name in LIBRARIES:
        try:
            digest.update(f"{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=absent".encode())
    for path in sorted(_MODELS.rglob("*.py")):
        digest.update(str(path.relative_to(_MODELS)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _qualified(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _describe(value: Any) -> str:
    """A text that two values share only if PyTensor treats them as the same (Ops and types
    by class and properties, arrays by bytes); raises :class:`UncacheableError` otherwise."""
    from pytensor.compile.builders import OpFromGraph
    from pytensor.graph.op import Op
    from pytensor.graph.type import Type
    from pytensor.scalar.basic import Composite, ScalarOp

    if value is None or isinstance(value, bool | int | float | complex | str | bytes):
        return repr(value)
    if isinstance(value, type):
        return f"class:{_qualified(value)}"
    if isinstance(value, np.generic | np.dtype):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return (f"array:{data.dtype.str}:{data.shape}:"
                f"{hashlib.sha256(data.view(np.uint8).tobytes()).hexdigest()}")
    if isinstance(value, slice):
        return f"slice({_describe(value.start)},{_describe(value.stop)},{_describe(value.step)})"
    if isinstance(value, tuple | list):
        return "(" + ",".join(_describe(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_describe(k)}:{_describe(v)}"
                              for k, v in sorted(value.items(), key=lambda kv: repr(kv[0]))) + "}"
    if isinstance(value, Type):
        return f"{_qualified(type(value))}:{value}"
    if isinstance(value, Op) or hasattr(type(value), "__props__"):
        props = getattr(type(value), "__props__", None)
        if props is not None:
            return (f"{_qualified(type(value))}("
                    + ",".join(f"{p}={_describe(getattr(value, p))}" for p in props) + ")")
        if isinstance(value, OpFromGraph):
            # PyMC's symbolic random variables: the inner graph defines them.
            fields = {k: v for k, v in vars(value).items()
                      if not k.startswith("_") and k != "fgraph"}
            inner = graph_description(value.fgraph.outputs, inputs=value.fgraph.inputs)
            return f"{_qualified(type(value))}{_describe(fields)}[{'; '.join(inner)}]"
        if isinstance(value, ScalarOp) and not isinstance(value, Composite):
            # Scalar Ops compare by class and fields (their output-type rule), not __props__.
            return f"{_qualified(type(value))}{_describe(vars(value))}"
        raise UncacheableError(f"the Op {_qualified(type(value))} has no __props__")
    if callable(value) and hasattr(value, "__code__"):
        if getattr(value, "__closure__", None):
            raise UncacheableError(f"the function {value.__qualname__} closes over values")
        # Its code too: a function outside models/ and the versioned libraries (a user's
        # script) may change under the same name.
        return f"function:{value.__module__}.{value.__qualname__}:{_code_digest(value.__code__)}"
    if hasattr(value, "__dict__") and type(value).__module__.startswith("pytensor."):
        # PyTensor's helper objects held by Ops (a scalar Op's output-type rule) compare by
        # class and fields.
        return f"{_qualified(type(value))}{_describe(vars(value))}"
    raise UncacheableError(f"cannot describe a {_qualified(type(value))}")


def _code_digest(code) -> str:
    """Digest of a function's bytecode and constants; nested code objects by their own digest
    (their repr holds a memory address, which differs between processes)."""
    digest = hashlib.sha256(code.co_code)
    for constant in code.co_consts:
        text = _code_digest(constant) if hasattr(constant, "co_code") else repr(constant)
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def _describe_transform(transform: Any) -> str:
    if transform is None:
        return "None"
    fields = {k: v for k, v in vars(transform).items() if not k.startswith("__")}
    return f"{_qualified(type(transform))}{_describe(fields)}"


def graph_description(roots, inputs=()) -> list[str]:
    """One line per variable and node of the graph above ``roots``, in topological order,
    each naming its inputs by position, then the positions of ``roots`` and of ``inputs``
    (an inner graph's inputs, in order); equal lists mean equal graphs."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import io_toposort

    index: dict[Any, int] = {}
    lines: list[str] = []

    def number(variable) -> int:
        if variable not in index:
            if variable.owner is not None:
                raise UncacheableError("a variable was reached before the node computing it")
            if isinstance(variable, Constant):
                text = f"constant {_describe(variable.type)} {_describe(variable.data)}"
            elif isinstance(variable, SharedVariable):
                text = (f"shared {variable.name!r} {_describe(variable.type)} "
                        f"{np.shape(variable.get_value(borrow=True))}")
            else:
                text = f"input {variable.name!r} {_describe(variable.type)}"
            index[variable] = len(index)
            lines.append(text)
        return index[variable]

    for node in io_toposort([], list(roots)):
        positions = [number(v) for v in node.inputs]
        lines.append(f"node {_describe(node.op)} {positions}")
        for j, output in enumerate(node.outputs):
            index[output] = len(index)
            lines.append(f"output {j} {output.name!r} {_describe(output.type)}")
    for variable in [*roots, *inputs]:
        number(variable)
    lines.append("roots " + " ".join(str(index[r]) for r in roots))
    lines.append("inputs " + " ".join(str(index[v]) for v in inputs))
    return lines


def model_digest(model, var_names, free_shapes: dict[str, tuple[int, ...]]) -> str:
    """Key of the rewritten graphs of ``model`` (see the module docstring); raises
    :class:`UncacheableError` when the model holds something that cannot be described."""
    import pytensor

    values = [model.rvs_to_values[v] for v in model.free_RVs]
    observed = [model.rvs_to_values[v] for v in model.observed_RVs]
    roots = [*model.free_RVs, *values, *model.observed_RVs, *observed, *model.potentials,
             *model.deterministics]
    digest = hashlib.sha256()
    parts = [
        f"format {_FORMAT}", environment_digest(),
        f"floatX {pytensor.config.floatX} check_bounds {model.check_bounds}",
        f"including {pytensor.config.optimizer_including} excluding "
        f"{pytensor.config.optimizer_excluding} requiring {pytensor.config.optimizer_requiring}",
        "counts " + " ".join(str(len(group)) for group in
                             (model.free_RVs, model.observed_RVs, model.potentials,
                              model.deterministics)),
        "transforms " + " ".join(_describe_transform(model.rvs_to_transforms.get(v))
                                 for v in model.free_RVs),
        f"free shapes {sorted(free_shapes.items())}",
        f"var_names {None if var_names is None else sorted(var_names)}",
        *graph_description(roots),
    ]
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]


@contextmanager
def compiling(path: Path | None):
    """Hold the lock of the recipe at ``path`` (an exclusive ``flock`` on ``PATH.lock``)
    while its model is compiled: a second process compiling the same model waits, then finds
    the recipe and numba's entries stored. Released when the process ends, however it ends;
    nothing is locked for a model without a recipe path or where ``fcntl`` is missing."""
    try:
        import fcntl
    except ImportError:  # not POSIX: compile without coordinating
        fcntl = None
    if path is None or fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def recipe_path(digest: str) -> Path:
    """Where the recipe of ``digest`` lives."""
    import pytensor

    return Path(pytensor.config.base_compiledir) / RECIPE_FOLDER / f"{digest}.pkl"


def _strip_traces(graph_outputs) -> None:
    # Creation stack traces are debugging aids, a large part of a pickle and not needed to
    # compile.
    from pytensor.graph.traversal import io_toposort

    for node in io_toposort([], list(graph_outputs)):
        node.tag.__dict__.pop("trace", None)
        for output in node.outputs:
            output.tag.__dict__.pop("trace", None)


def rewritten_graph(inputs, outputs, check_bounds: bool) -> tuple[list, list]:
    """(inputs, outputs) of the graph PyTensor's NUMBA mode compiles for ``outputs`` as a
    function of ``inputs``: rewritten with the rewrites ``pymc.compile`` adds (parameter
    checks as -inf switches, or removed when the model does not check bounds), output copies
    inserted; nothing compiled yet."""
    from pytensor.compile.function.pfunc import construct_pfunc_ins_and_outs
    from pytensor.compile.function.types import FunctionMaker
    from pytensor.compile.mode import Mode, get_mode

    check = ("local_check_parameter_to_ninf_switch" if check_bounds
             else "local_remove_check_parameter")
    mode = get_mode("NUMBA")
    mode = Mode(linker=mode.linker,
                optimizer=mode.provided_optimizer.including("random_make_inplace", check))
    specs, cloned = construct_pfunc_ins_and_outs(list(inputs), list(outputs))
    maker = FunctionMaker(specs, cloned, mode, on_unused_input="ignore")
    return list(maker.fgraph.inputs), list(maker.fgraph.outputs)


def _function_graph(inputs, outputs):
    from pytensor.graph.fg import FunctionGraph

    return FunctionGraph(inputs, outputs, clone=False)


class _GraphPickler(pickle.Pickler):
    """Pickles an inner FunctionGraph (an OpFromGraph's) as its inputs and outputs alone.

    Its features would otherwise travel half-pickled (a ReplaceValidate without its history),
    and the numba backend, which rewrites an OpFromGraph's inner graph when it compiles it,
    then failed on every rewrite of the loaded graph."""

    def reducer_override(self, obj):
        from pytensor.graph.fg import FunctionGraph

        if isinstance(obj, FunctionGraph):
            return _function_graph, (list(obj.inputs), list(obj.outputs))
        return NotImplemented


def to_bytes(graph: tuple[list, list]) -> bytes | None:
    """The pickled (inputs, outputs) of a rewritten graph; None when it cannot be pickled."""
    _strip_traces(graph[1])
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _RECURSION_LIMIT))
    buffer = io.BytesIO()
    try:
        _GraphPickler(buffer, protocol=5).dump(graph)
    except (pickle.PicklingError, AttributeError, TypeError, RecursionError):
        return None
    finally:
        sys.setrecursionlimit(limit)
    return buffer.getvalue()


def from_bytes(blob: bytes) -> tuple[list, list]:
    """The graph :func:`to_bytes` pickled. A process compiles the graph read back from the
    bytes, never the one it rewrote: their nodes order the same, so the generated code, and
    with it numba's cache key, is the same in the process that stored a recipe and in the
    ones that load it."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _RECURSION_LIMIT))
    try:
        return pickle.loads(blob)
    finally:
        sys.setrecursionlimit(limit)


def save(path: Path, recipe: dict[str, Any]) -> None:
    """Write ``recipe`` (its graphs as :func:`to_bytes` gives them, and picklable fields)
    atomically: processes compiling the same model at once each write a whole file."""
    blob = pickle.dumps({**recipe, "format": _FORMAT}, protocol=5)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(handle, "wb") as stream:
        stream.write(blob)
    os.replace(temporary, path)


def load(path: Path) -> dict[str, Any] | None:
    """The recipe at ``path``, or None when there is none or it cannot be read (an outdated
    layout: the model is then compiled anew and the entry rewritten)."""
    if not path.exists():
        return None
    try:
        recipe = pickle.loads(path.read_bytes())
    except Exception:  # noqa: BLE001 - any unreadable entry means: compile anew
        return None
    if not isinstance(recipe, dict) or recipe.get("format") != _FORMAT:
        return None
    return recipe


def function_from_graph(inputs, outputs):
    """A PyTensor function in NUMBA mode of an already rewritten graph
    (:func:`rewritten_graph`), compiled without rewriting it again."""
    from pytensor.compile.function.types import FunctionMaker
    from pytensor.compile.io import In
    from pytensor.graph.fg import FunctionGraph

    graph = FunctionGraph(inputs, outputs, clone=False)
    maker = FunctionMaker([In(v) for v in inputs], list(outputs), mode="NUMBA", fgraph=graph,
                          no_fgraph_prep=True, accept_inplace=True, on_unused_input="ignore")
    return maker.create()

"""nutpie's C-callable model interface driven by numba ``cfunc``s that numba caches on disk.

nutpie samples fastest through two C function pointers (log density with gradient, and the
expansion of a draw to every traced variable), called from its Rust threads without Python.
Its own ``cfunc``s cannot be cached: they bake the data in as runtime addresses. These take
the data through the ``user_data`` pointer instead, an int64 array of (address, shape...) per
data input, so the compiled code holds no address and is cached under PyTensor's numba cache
with the graph's key and the generated source.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

CFUNC_VERSION = "2"


def user_data_layout(values: dict[str, np.ndarray]) -> dict[str, int]:
    """Offset of each data input's (address, shape...) entry in the ``user_data`` array."""
    offsets, position = {}, 0
    for name, value in values.items():
        offsets[name] = position
        position += 1 + value.ndim
    return offsets


def user_data_array(values: dict[str, np.ndarray], offsets: dict[str, int]) -> np.ndarray:
    """The int64 ``user_data``: each array's data address followed by its shape."""
    size = sum(1 + v.ndim for v in values.values())
    out = np.zeros(max(size, 1), dtype=np.int64)
    for name, value in values.items():
        start = offsets[name]
        out[start] = value.ctypes.data
        out[start + 1:start + 1 + value.ndim] = value.shape
    return out


def _unpack_lines(names, values, offsets) -> tuple[list[str], list[str]]:
    lines, args = [], []
    for j, name in enumerate(names):
        start, value = offsets[name], values[name]
        shape = ", ".join(f"ud[{start + 1 + a}]" for a in range(value.ndim))
        shape = f"({shape},)" if value.ndim else "()"
        lines.append(f"    d{j} = numba.carray(address_as_void_pointer(ud[{start}]), "
                     f"{shape}, dtype_{j})")
        args.append(f"d{j}")
    return lines, args


def _compile(source: str, name: str, env: dict[str, Any], key: str | None, signature):
    import numba
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor.link.numba.cache import compile_numba_function_src

    cache_key = None
    if key is not None:
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        cache_key = f"nutpie_cfunc_v{CFUNC_VERSION}_{key}_{digest}"
    python = compile_numba_function_src(
        source, name, globals() | env | {"numba": numba, "np": np,
                                         "address_as_void_pointer": address_as_void_pointer},
        cache_key=cache_key)
    return numba.cfunc(signature, cache=cache_key is not None)(python)


def logp_cfunc(inner, key: str | None, n_dim: int, names, values, offsets):
    """C ``int64 logp(uint64 dim, double *x, double *grad, double *logp, void *user_data)``
    calling ``inner(x, *data) -> (0-d value, gradient)``; nonzero on a wrong dimension (-1),
    an error (1), a non-finite gradient (3) or value (4), as nutpie's."""
    import numba

    unpack, args = _unpack_lines(names, values, offsets)
    call = ", ".join(["x", *args])
    source = "\n".join([
        "def logp_cfunc(dim, x_, out_, logp_, user_data_):",
        f"    if dim != {n_dim}:",
        "        return -1",
        f"    x = numba.carray(x_, ({n_dim},))",
        f"    out = numba.carray(out_, ({n_dim},))",
        "    logp = numba.carray(logp_, ())",
        f"    ud = numba.carray(user_data_, ({_ud_size(values)},), np.int64)",
        *unpack,
        "    try:",
        f"        value, grad = inner({call})",
        "        logp[()] = value[()]",
        "        out[...] = grad",
        "        if not np.all(np.isfinite(out)):",
        "            return 3",
        "        if not np.isfinite(logp[()]):",
        "            return 4",
        "    except Exception:",
        "        return 1",
        "    return 0",
        ""])
    env = {"inner": inner, **{f"dtype_{j}": values[n].dtype for j, n in enumerate(names)}}
    signature = numba.types.int64(numba.types.uint64, numba.types.CPointer(numba.types.double),
                                  numba.types.CPointer(numba.types.double),
                                  numba.types.CPointer(numba.types.double),
                                  numba.types.voidptr)
    return _compile(source, "logp_cfunc", env, key, signature)


def expand_cfunc(inner, key: str | None, n_dim: int, shapes: list[tuple[int, ...]], names,
                 values, offsets):
    """C ``int64 expand(uint64 dim, uint64 n_expanded, double *x, double *out, void *ud)``
    writing x and then every output of ``inner(x, *data)`` (flattened, ``shapes``) to out."""
    import numba

    sizes = [int(np.prod(shape)) for shape in shapes]
    n_expanded = n_dim + sum(sizes)
    unpack, args = _unpack_lines(names, values, offsets)
    call = ", ".join(["x", *args])
    writes, position = [], n_dim
    for j, (size, shape) in enumerate(zip(sizes, shapes, strict=True)):
        if shape:
            # outputs may be strided views: a contiguous copy can be flattened
            flat = f"np.ascontiguousarray(outputs[{j}]).reshape(-1)"
            writes.append(f"        out[{position}:{position + size}] = {flat}")
        else:
            writes.append(f"        out[{position}] = outputs[{j}][()]")
        position += size
    source = "\n".join([
        "def expand_cfunc(dim, expanded, x_, out_, user_data_):",
        f"    if dim != {n_dim} or expanded != {n_expanded}:",
        "        return -1",
        f"    x = numba.carray(x_, ({n_dim},))",
        f"    out = numba.carray(out_, ({n_expanded},))",
        f"    ud = numba.carray(user_data_, ({_ud_size(values)},), np.int64)",
        *unpack,
        "    try:",
        f"        out[0:{n_dim}] = x",
        *([f"        outputs = inner({call})", *writes] if sizes else []),
        "    except Exception:",
        "        return -2",
        "    return 0",
        ""])
    env = {"inner": inner, **{f"dtype_{j}": values[n].dtype for j, n in enumerate(names)}}
    signature = numba.types.int64(numba.types.uint64, numba.types.uint64,
                                  numba.types.CPointer(numba.types.double),
                                  numba.types.CPointer(numba.types.double),
                                  numba.types.voidptr)
    return _compile(source, "expand_cfunc", env, key, signature)


def _ud_size(values: dict[str, np.ndarray]) -> int:
    return max(sum(1 + v.ndim for v in values.values()), 1)


_MODEL_CLASS: list[Any] = []


def cfunc_model_class():
    """nutpie's C-callable model with ``cached``, the numba cache keys of its graph functions
    (``cache_keys``: log density, expansion) and a ``with_data`` for this ``user_data`` layout
    (dtype and rank of each data input kept: the compiled code is typed by them)."""
    if not _MODEL_CLASS:
        import dataclasses
        from dataclasses import dataclass

        from nutpie.compile_pymc import CompiledPyMCModel

        @dataclass(frozen=True)
        class CachedCfuncModel(CompiledPyMCModel):
            cached: bool = False
            cache_keys: tuple = ()

            def with_data(self, **updates):
                shared = dict(self.shared_data)
                for name, value in updates.items():
                    old = shared.get(name)
                    if old is None:
                        raise KeyError(f"Unknown shared variable: {name}")
                    new = np.array(value, dtype=old.dtype, order="C")
                    if new.ndim != old.ndim:
                        raise ValueError(f"Shared variable {name} must have rank {old.ndim}")
                    shared[name] = new
                user_data = user_data_array(shared, user_data_layout(shared))
                return dataclasses.replace(self, shared_data=shared, user_data=user_data)

        _MODEL_CLASS.append(CachedCfuncModel)
    return _MODEL_CLASS[0]

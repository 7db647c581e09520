"""A restricted unpickler for motion files: it builds data, it never runs code.

``pickle.load`` on an untrusted file can call any importable function (``os.system``, ``eval``).
``safe_loads`` only resolves the globals a MimicKit motion file legitimately needs:

- plain containers (``dict``/``list``/``tuple``/``set``, ``collections.OrderedDict``) and numbers;
- numpy arrays, scalars and dtypes (``numpy.core.multiarray._reconstruct``/``scalar``,
  ``numpy._core...`` under numpy 2, ``numpy.ndarray``, ``numpy.dtype``, ``_frombuffer``), object
  dtypes refused;
- a tensor pickled by plain ``pickle`` (``torch._utils._rebuild_tensor_v2`` over
  ``torch.storage._load_from_bytes``), which is how one official clip stores a 0-d ``fps``. It is
  decoded here, without importing torch, into a ``TorchTensorData`` holding a numpy array;
- the legacy MimicKit classes ``anim.motion.Motion`` / ``anim.motion.LoopMode``, replaced by inert
  stand-ins (``LegacyMotion`` / ``LegacyLoopMode``) that only hold attributes.

Anything else raises ``UnsafePickleError`` naming the global, before it is called.
"""

from __future__ import annotations

import io
import pickle
import struct
from typing import Any

import numpy as np

from mimictools.errors import MotionFormatError, UnsafePickleError

__all__ = ["LegacyLoopMode", "LegacyMotion", "TorchTensorData", "pickle_protocol", "safe_loads"]


# ---- stand-ins for MimicKit's classes ------------------------------------------------------------
class LegacyMotion:
    """Inert stand-in for a pickled ``anim.motion.Motion``: holds ``loop_mode``, ``fps``, ``frames``."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slots state)
            state = state[0]
        if not isinstance(state, dict):
            raise MotionFormatError(f"anim.motion.Motion state must be a dict, got {type(state).__name__}")
        self.__dict__.update({str(k): v for k, v in state.items()})


class LegacyLoopMode:
    """Inert stand-in for MimicKit's ``anim.motion.LoopMode`` enum: only keeps ``value``."""

    CLAMP = None  # filled below: class-level members, for by-name enum pickles
    WRAP = None

    def __init__(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise MotionFormatError(f"anim.motion.LoopMode value must be an int, got {value!r}")
        self.value = value

    def __repr__(self) -> str:
        return f"LoopMode({self.value})"


LegacyLoopMode.CLAMP = LegacyLoopMode(0)
LegacyLoopMode.WRAP = LegacyLoopMode(1)


class TorchTensorData:
    """A tensor found in a pickle, decoded without torch: ``array`` (numpy) and its torch ``dtype`` name."""

    def __init__(self, array: np.ndarray, dtype_name: str) -> None:
        self.array = array
        self.dtype_name = dtype_name

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)

    def __repr__(self) -> str:
        return f"TorchTensorData(shape={self.array.shape}, dtype={self.dtype_name})"


# ---- numpy: the real reconstructors, wrapped to refuse object dtypes --------------------------------
_NP_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_NP_SCALAR = np.float64(1.0).__reduce__()[0]
_NP_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]


def _check_dtype(dt: Any) -> np.dtype:
    if not isinstance(dt, np.dtype):
        raise MotionFormatError(f"expected a numpy dtype, got {type(dt).__name__}")
    if dt.hasobject:
        raise UnsafePickleError("refusing a numpy array of Python objects (dtype 'O')")
    return dt


def _np_reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> Any:
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"numpy _reconstruct of {subtype!r}; only numpy.ndarray is allowed")
    return _NP_RECONSTRUCT(np.ndarray, shape, dtype_code)


def _np_scalar(dtype: Any, data: Any = None) -> Any:
    _check_dtype(dtype)
    return _NP_SCALAR(dtype, data) if data is not None else _NP_SCALAR(dtype)


def _np_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> Any:
    _check_dtype(dtype)
    return _NP_FROMBUFFER(buf, dtype, shape, order)


def _np_dtype(obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
    if not isinstance(obj, str):
        raise UnsafePickleError(f"numpy dtype built from {type(obj).__name__}; only type codes are allowed")
    dt = np.dtype(obj, align, copy)
    if dt.hasobject:
        raise UnsafePickleError("refusing a numpy array of Python objects (dtype 'O')")
    return dt


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """Protocol-2 pickles store bytes as ``_codecs.encode(str, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not allowed")
    return text.encode("latin1")


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """Protocol 0/1 object creation; only for the MimicKit stand-ins."""
    if cls is not LegacyMotion or base is not object or state is not None:
        raise UnsafePickleError(f"copyreg._reconstructor({cls!r}, {base!r}) is not allowed")
    return LegacyMotion.__new__(LegacyMotion)


def _safe_getattr(obj: Any, name: Any) -> Any:
    """By-name enum pickles: ``getattr(LoopMode, 'WRAP')``; nothing else."""
    if obj is LegacyLoopMode and name in ("CLAMP", "WRAP"):
        return getattr(LegacyLoopMode, name)
    raise UnsafePickleError(f"getattr({obj!r}, {name!r}) is not allowed")


# ---- torch tensors pickled with plain pickle (legacy storage bytes), decoded without torch ---------
_TORCH_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_TORCH_PROTOCOL = 1001  # torch.serialization.PROTOCOL_VERSION


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name
        self.np_dtype = np.dtype(_TORCH_STORAGE_DTYPES[name])


class _StorageRef:
    """A storage referenced by key inside legacy torch bytes; ``data`` is filled after the pickle."""

    def __init__(self, key: str, stype: _StorageType, numel: int) -> None:
        self.key = key
        self.stype = stype
        self.numel = numel
        self.data = None  # type: Any


class _Storage:
    """A decoded torch storage: 1-D numpy ``data`` and the torch storage type name."""

    def __init__(self, data: np.ndarray, type_name: str) -> None:
        self.data = data
        self.type_name = type_name


def _torch_load_from_bytes(blob: Any) -> _Storage:
    """Decode ``torch.storage._load_from_bytes(b)``: torch's legacy (non-zip) save of one storage."""
    if not isinstance(blob, (bytes, bytearray)):
        raise MotionFormatError("torch storage payload is not bytes")
    f = io.BytesIO(bytes(blob))
    refs = {}  # type: Dict[str, _StorageRef]

    def persistent_load(pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafePickleError(f"unexpected persistent id in torch storage: {pid!r}")
        stype, key, _location, numel = pid[1], str(pid[2]), pid[3], pid[4]
        if not isinstance(stype, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise MotionFormatError(f"bad torch storage record {pid!r}")
        ref = refs.setdefault(key, _StorageRef(key, stype, numel))
        view = pid[5] if len(pid) > 5 else None
        if view is not None:
            raise MotionFormatError("torch storage views are not supported in motion files")
        return ref

    def load_one() -> Any:
        return _SafeUnpickler(
            f, "<torch storage>", allow=_TORCH_INNER_ALLOWED, persistent=persistent_load
        ).load()

    if load_one() != _TORCH_MAGIC:
        raise MotionFormatError("torch storage payload has a bad magic number")
    if load_one() != _TORCH_PROTOCOL:
        raise MotionFormatError("torch storage payload has an unknown protocol version")
    sys_info = load_one()
    little = not isinstance(sys_info, dict) or bool(sys_info.get("little_endian", True))
    result = load_one()
    keys = load_one()
    if not isinstance(keys, list):
        raise MotionFormatError("torch storage payload: key list missing")
    for key in keys:
        ref = refs.get(str(key))
        if ref is None:
            raise MotionFormatError(f"torch storage payload: unknown storage key {key!r}")
        head = f.read(8)
        if len(head) != 8:
            raise MotionFormatError("torch storage payload is truncated")
        (numel,) = struct.unpack("<q" if little else ">q", head)
        nbytes = numel * ref.stype.np_dtype.itemsize
        raw = f.read(nbytes)
        if numel != ref.numel or len(raw) != nbytes:
            raise MotionFormatError("torch storage payload is truncated or inconsistent")
        dt = ref.stype.np_dtype.newbyteorder("<" if little else ">")
        ref.data = np.frombuffer(raw, dtype=dt).astype(ref.stype.np_dtype)
    if not isinstance(result, _StorageRef) or result.data is None:
        raise MotionFormatError("torch storage payload holds no storage")
    return _Storage(result.data, result.stype.name)


def _torch_rebuild_tensor_v2(
    storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False, *_rest: Any
) -> TorchTensorData:
    """``torch._utils._rebuild_tensor_v2`` over a decoded storage -> ``TorchTensorData`` (numpy copy)."""
    if not isinstance(storage, _Storage):
        raise MotionFormatError("torch tensor without a decoded storage")
    try:
        offset = int(storage_offset)
        shape = tuple(int(s) for s in size)
        strides = tuple(int(s) for s in stride)
    except (TypeError, ValueError):
        raise MotionFormatError("torch tensor has a malformed size/stride") from None
    data = storage.data
    if len(shape) != len(strides) or offset < 0 or any(s < 0 for s in shape) or any(s < 0 for s in strides):
        raise MotionFormatError("torch tensor has a malformed size/stride")
    last = offset + sum((n - 1) * s for n, s in zip(shape, strides)) if all(shape) else offset - 1
    if last >= data.shape[0]:
        raise MotionFormatError("torch tensor reaches past the end of its storage")
    item = data.itemsize
    arr = np.lib.stride_tricks.as_strided(
        data[offset:], shape=shape, strides=tuple(s * item for s in strides), writeable=False
    ).copy()
    name = storage.type_name.replace("Storage", "").lower()
    return TorchTensorData(arr, name)


def _torch_rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> TorchTensorData:
    return _torch_rebuild_tensor_v2(storage, storage_offset, size, stride)


# ---- the allow-lists ----------------------------------------------------------------------------------
_MIMICKIT_MODULES = ("anim.motion", "mimickit.anim.motion", "motion", "__main__")

_ALLOWED = {
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "int"): int,
    ("builtins", "float"): float,
    ("builtins", "complex"): complex,
    ("builtins", "bool"): bool,
    ("builtins", "object"): object,  # only as copyreg._reconstructor's base (protocol 0/1)
    ("builtins", "getattr"): _safe_getattr,
    ("collections", "OrderedDict"): dict,
    ("copyreg", "_reconstructor"): _copyreg_reconstructor,
    ("_codecs", "encode"): _codecs_encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _np_dtype,
    ("torch._utils", "_rebuild_tensor_v2"): _torch_rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _torch_rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _torch_load_from_bytes,
}  # type: Dict[Tuple[str, str], Callable[..., Any]]
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED[(_core + ".multiarray", "_reconstruct")] = _np_reconstruct
    _ALLOWED[(_core + ".multiarray", "scalar")] = _np_scalar
    _ALLOWED[(_core + ".numeric", "_frombuffer")] = _np_frombuffer
for _mod in _MIMICKIT_MODULES:
    _ALLOWED[(_mod, "Motion")] = LegacyMotion  # type: ignore[assignment]
    _ALLOWED[(_mod, "LoopMode")] = LegacyLoopMode  # type: ignore[assignment]

_TORCH_INNER_ALLOWED = {("builtins", "dict"): dict, ("collections", "OrderedDict"): dict}  # type: Dict[Tuple[str, str], Any]
for _name in _TORCH_STORAGE_DTYPES:
    _TORCH_INNER_ALLOWED[("torch", _name)] = (lambda n: lambda: _StorageType(n))(_name)

# Python 2 module names that protocol 0-2 pickles may carry.
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, source: str, allow: Any = None, persistent: Any = None) -> None:
        super().__init__(file)
        self._source = source
        self._allow = _ALLOWED if allow is None else allow
        self._persistent = persistent

    def find_class(self, module: str, name: str) -> Any:
        module = _PY2_MODULES.get(module, module)
        target = self._allow.get((module, name))
        if target is None:
            raise UnsafePickleError(
                f"{self._source}: refusing to load global '{module}.{name}' — motion pickles may only "
                "contain containers, numbers, numpy arrays and MimicKit's Motion/LoopMode"
            )
        if self._allow is _TORCH_INNER_ALLOWED and module == "torch":
            return target()  # storage type marker, not a callable
        return target

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is not None:
            return self._persistent(pid)
        raise UnsafePickleError(
            f"{self._source}: refusing a persistent reference ({pid!r}) in a motion pickle"
        )


def pickle_protocol(data: bytes) -> int:
    """The protocol a pickle declares (``PROTO`` opcode), or 0/1 when it has none."""
    if len(data) >= 2 and data[0] == 0x80:
        return int(data[1])
    return 0


def safe_loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` through the allow-list. Raises ``UnsafePickleError`` for a forbidden global and
    ``MotionFormatError`` (one line, naming ``source``) for a truncated or corrupt pickle."""
    if len(data) == 0:
        raise MotionFormatError(f"{source}: empty file (0 bytes), not a pickle")
    try:
        return _SafeUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError as exc:
        msg = str(exc)
        raise UnsafePickleError(msg if msg.startswith(source) else f"{source}: {msg}") from None
    except MotionFormatError as exc:
        raise MotionFormatError(f"{source}: {exc}") from None
    except EOFError:
        raise MotionFormatError(
            f"{source}: truncated pickle (the file ends in the middle of the data)"
        ) from None
    except (
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        struct.error,
    ) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "truncated" in detail or "ran out of input" in detail.lower():
            raise MotionFormatError(f"{source}: truncated pickle ({detail})") from None
        raise MotionFormatError(f"{source}: not a valid motion pickle ({detail})") from None
    except (MemoryError, RecursionError, OverflowError) as exc:
        raise MotionFormatError(f"{source}: corrupt pickle ({type(exc).__name__})") from None

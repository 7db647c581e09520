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

Beyond the allow-list, the unpickler (Python's pure-Python pickle machine, so every opcode can be
checked) refuses crafted *state* and memory amplification:

- ``BUILD`` only on a fresh numpy dtype (state checked against what numpy itself writes), a fresh
  array (shape x itemsize must equal the raw bytes present) or a legacy ``Motion``; ``NEWOBJ`` only
  for the legacy ``Motion``; ``numpy.ndarray`` is a marker for ``_reconstruct``, never called;
- everything built by allowed constructors (``list(x)``, ``_codecs.encode``, array data, torch
  storages) counts against a budget that follows from the file: ``16 x file bytes + 1 MiB`` elements;
- the memo is a dict (a huge memo index costs nothing) and the machine is iterative (no recursion).
"""

from __future__ import annotations

import functools
import io
import pickle
import struct
from typing import Any, Callable, Tuple

import numpy as np

from mimictools.errors import MotionFormatError, UnsafePickleError
from mimictools.io_util import short_repr

__all__ = ["LegacyLoopMode", "LegacyMotion", "TorchTensorData", "pickle_protocol", "safe_loads"]


# ---- stand-ins for MimicKit's classes ------------------------------------------------------------
class LegacyMotion:
    """Inert stand-in for a pickled ``anim.motion.Motion``: holds ``loop_mode``, ``fps``, ``frames``."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slots state)
            state = state[0]
        if not isinstance(state, dict):
            raise MotionFormatError(f"anim.motion.Motion state must be a dict, got {type(state).__name__}")
        for k in state:
            if not isinstance(k, str):
                raise MotionFormatError(f"anim.motion.Motion attribute name {short_repr(k)} is not a string")
        self.__dict__.update(state)


class LegacyLoopMode:
    """Inert stand-in for MimicKit's ``anim.motion.LoopMode`` enum: only keeps ``value``."""

    CLAMP = None  # filled below: class-level members, for by-name enum pickles
    WRAP = None

    def __init__(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise MotionFormatError(f"anim.motion.LoopMode value must be an int, got {short_repr(value)}")
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


# ---- numpy: the real reconstructors, wrapped to refuse object dtypes and crafted state -----------------
_NP_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_NP_SCALAR = np.float64(1.0).__reduce__()[0]
_NP_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
_NUMERIC_KINDS = "biufc"  # bool, int, uint, float, complex (complex frames are refused by the motion check)


class _NdarrayMarker:
    """What the global ``numpy.ndarray`` resolves to: an argument of ``_reconstruct``, never callable."""

    def __repr__(self) -> str:
        return "numpy.ndarray"


_NDARRAY = _NdarrayMarker()


def _check_dtype(dt: Any) -> np.dtype:
    if not isinstance(dt, np.dtype):
        raise MotionFormatError(f"expected a numpy dtype, got {type(dt).__name__}")
    if dt.hasobject:
        raise UnsafePickleError("refusing a numpy array of Python objects (dtype 'O')")
    if dt.kind not in _NUMERIC_KINDS or dt.names is not None or dt.subdtype is not None:
        raise UnsafePickleError(f"refusing numpy dtype {short_repr(str(dt))}; only plain numbers are allowed")
    return dt


def _np_scalar(dtype: Any, data: Any = None) -> Any:
    _check_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise MotionFormatError(f"numpy scalar of {dtype} needs {dtype.itemsize} bytes of data")
    return _NP_SCALAR(dtype, data)


def _np_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> Any:
    _check_dtype(dtype)
    if order not in ("C", "F") or not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)):
        raise MotionFormatError("numpy _frombuffer with a malformed buffer or order")
    shape = _check_shape(shape)
    if _prod(shape) * dtype.itemsize != memoryview(buf).nbytes:
        raise MotionFormatError(
            f"numpy array of shape {shape} does not match its {memoryview(buf).nbytes} bytes"
        )
    return _NP_FROMBUFFER(buf, dtype, shape, order)


def _np_dtype(obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
    if not isinstance(obj, str) or len(obj) > 8:
        raise UnsafePickleError(f"numpy dtype built from {short_repr(obj)}; only type codes are allowed")
    try:
        dt = np.dtype(obj, bool(align), True)
    except TypeError:
        raise MotionFormatError(f"unknown numpy type code {short_repr(obj)}") from None
    return _check_dtype(dt)


def _prod(shape: Tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _check_shape(shape: Any) -> Tuple[int, ...]:
    if not isinstance(shape, tuple) or len(shape) > 32:
        raise MotionFormatError(f"numpy array shape {short_repr(shape)} is not a tuple of at most 32 sizes")
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise MotionFormatError(
                f"numpy array shape {short_repr(shape)} has a size that is not an int >= 0"
            )
    return shape


def _canonical_dtype_state(dt: np.dtype, state: Any) -> tuple:
    """The state numpy writes for ``dt`` with the byte order of ``state``; anything else is refused."""
    if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
        raise UnsafePickleError(f"refusing numpy dtype state {short_repr(state)}")
    order = state[1]
    if order not in ("<", ">", "|", "="):
        raise UnsafePickleError(f"refusing numpy dtype state with byte order {short_repr(order)}")
    ref = dt if order in ("|", "=") or dt.byteorder == "|" else dt.newbyteorder(order)
    canon = ref.__reduce__()[2]
    if tuple(state[:8]) != tuple(canon[:8]) or (len(state) == 9 and state[8] not in (None, {})):
        raise UnsafePickleError(f"refusing numpy dtype state {short_repr(state)} (numpy writes {canon})")
    return canon


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """Protocol-2 pickles store bytes as ``_codecs.encode(str, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(
            f"_codecs.encode({type(text).__name__}, {short_repr(encoding)}) is not allowed"
        )
    return text.encode("latin1")


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """Protocol 0/1 object creation; only for the MimicKit stand-ins."""
    if cls is not LegacyMotion or base is not object or state is not None:
        raise UnsafePickleError(
            f"copyreg._reconstructor({short_repr(cls)}, {short_repr(base)}) is not allowed"
        )
    return LegacyMotion.__new__(LegacyMotion)


def _safe_getattr(obj: Any, name: Any) -> Any:
    """By-name enum pickles: ``getattr(LoopMode, 'WRAP')``; nothing else."""
    if obj is LegacyLoopMode and name in ("CLAMP", "WRAP"):
        return getattr(LegacyLoopMode, name)
    raise UnsafePickleError(f"getattr({short_repr(obj)}, {short_repr(name)}) is not allowed")


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
            raise UnsafePickleError(f"unexpected persistent id in torch storage: {short_repr(pid)}")
        if not isinstance(pid[2], (str, int)):
            raise MotionFormatError(f"bad torch storage key {short_repr(pid[2])}")
        stype, key, _location, numel = pid[1], str(pid[2]), pid[3], pid[4]
        if not isinstance(stype, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise MotionFormatError(f"bad torch storage record {short_repr(pid)}")
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
        ref = refs.get(str(key)) if isinstance(key, (str, int)) else None
        if ref is None:
            raise MotionFormatError(f"torch storage payload: unknown storage key {short_repr(key)}")
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
    if len(shape) > 32 or _prod(shape) > max(data.shape[0] - offset, 1):
        raise MotionFormatError(
            "torch tensor has more elements than its storage (zero or overlapping strides)"
        )
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
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _np_dtype,
    ("torch._utils", "_rebuild_tensor_v2"): _torch_rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _torch_rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _torch_load_from_bytes,
}  # type: Dict[Tuple[str, str], Callable[..., Any]]
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED[(_core + ".multiarray", "_reconstruct")] = _NP_RECONSTRUCT
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


_COUNTED = (
    dict,
    list,
    tuple,
    set,
    frozenset,
    _codecs_encode,
    _torch_load_from_bytes,
    _torch_rebuild_tensor_v2,
)
_COUNTED += (_torch_rebuild_tensor, _np_frombuffer)


def _size_of(obj: Any) -> int:
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, (_Storage, TorchTensorData)):
        return int((obj.data if isinstance(obj, _Storage) else obj.array).nbytes)
    try:
        return len(obj)
    except TypeError:
        return 1


class _SafeUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Python's pure-Python unpickler with the allow-list, checked BUILD/NEWOBJ and a size budget."""

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(
        self, file: Any, source: str, allow: Any = None, persistent: Any = None, budget: int = 0
    ) -> None:
        super().__init__(file)
        self._source = source
        self._allow = _ALLOWED if allow is None else allow
        self._persistent = persistent
        self._budget = budget if budget > 0 else (1 << 20)
        self._fresh = {}  # type: Dict[int, Any]  # dtypes/arrays made here, not yet BUILT (kept alive)

    # -- globals ---------------------------------------------------------------------------------
    def find_class(self, module: str, name: str) -> Any:
        module = _PY2_MODULES.get(module, module)
        target = self._allow.get((module, name))
        if target is None:
            raise UnsafePickleError(
                f"{self._source}: refusing to load global '{module[:60]}.{name[:60]}' — "
                "motion pickles may only contain containers, numbers, numpy arrays and MimicKit's Motion/LoopMode"
            )
        if self._allow is _TORCH_INNER_ALLOWED and module == "torch":
            return target()  # storage type marker, not a callable
        if target is _NP_RECONSTRUCT:
            return self._np_reconstruct
        if target is _np_dtype:
            return self._np_dtype
        if target in _COUNTED:
            return functools.partial(self._counted, target)
        return target

    def _spend(self, amount: int) -> None:
        self._budget -= amount
        if self._budget < 0:
            raise MotionFormatError(
                "the pickle builds far more data than the file holds (memory amplification); refused"
            )

    def _counted(self, target: Callable[..., Any], *args: Any) -> Any:
        if target in (dict, list, tuple, set, frozenset) and len(args) == 1:
            self._spend(_size_of(args[0]))  # before copying
        out = target(*args)
        self._spend(_size_of(out))
        return out

    def _np_reconstruct(self, subtype: Any, shape: Any, dtype_code: Any) -> np.ndarray:
        if subtype is not _NDARRAY:
            raise UnsafePickleError(
                f"numpy _reconstruct of {short_repr(subtype)}; only numpy.ndarray is allowed"
            )
        if shape != (0,) or dtype_code != b"b":
            raise MotionFormatError(
                f"numpy _reconstruct{short_repr((shape, dtype_code))}; numpy writes ((0,), b'b')"
            )
        arr = _NP_RECONSTRUCT(np.ndarray, (0,), b"b")
        self._fresh[id(arr)] = arr
        return arr

    def _np_dtype(self, obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
        dt = _np_dtype(obj, align, copy)
        self._fresh[id(dt)] = dt
        return dt

    # -- opcodes -------------------------------------------------------------------------------------
    def _load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, LegacyMotion):
            inst.__setstate__(state)
            return
        if self._fresh.get(id(inst)) is not inst:
            raise UnsafePickleError(f"refusing to set the state of a {type(inst).__name__} (BUILD)")
        del self._fresh[id(inst)]
        if isinstance(inst, np.dtype):
            inst.__setstate__(_canonical_dtype_state(inst, state))
            return
        # a fresh ndarray from _reconstruct: (version, shape, dtype, is_fortran, raw bytes)
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise MotionFormatError(
                f"numpy array state {short_repr(state)} is not (1, shape, dtype, fortran, data)"
            )
        _, shape, dtype, fortran, raw = state
        shape = _check_shape(shape)
        _check_dtype(dtype)
        if not isinstance(fortran, bool) or not isinstance(raw, (bytes, bytearray)):
            raise MotionFormatError("numpy array state has a malformed order flag or data")
        if _prod(shape) * dtype.itemsize != len(raw):
            raise MotionFormatError(
                f"numpy array declares shape {shape} x {dtype.itemsize} bytes but holds {len(raw)} bytes"
            )
        self._spend(len(raw))
        inst.__setstate__((1, shape, dtype, fortran, raw))

    def _load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.stack.append(self._new(cls, args))

    def _load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        if kwargs:
            raise UnsafePickleError(f"refusing keyword arguments in NEWOBJ_EX of {short_repr(cls)}")
        self.stack.append(self._new(cls, args))

    def _new(self, cls: Any, args: Any) -> Any:
        if cls is LegacyMotion and args == ():
            return LegacyMotion.__new__(LegacyMotion)
        raise UnsafePickleError(f"refusing to create {short_repr(cls)} with NEWOBJ")

    def _load_bytearray8(self) -> None:
        (n,) = struct.unpack("<Q", self.read(8))
        data = self.read(n)  # the stock opcode allocates n bytes before reading: a 4-byte amplifier
        if len(data) != n:
            raise EOFError("BYTEARRAY8 runs past the end of the pickle")
        self._spend(n)
        self.append(bytearray(data))

    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8
    dispatch[pickle.BUILD[0]] = _load_build
    dispatch[pickle.NEWOBJ[0]] = _load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = _load_newobj_ex

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is not None:
            return self._persistent(pid)
        raise UnsafePickleError(
            f"{self._source}: refusing a persistent reference ({short_repr(pid)}) in a motion pickle"
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
    bio = io.BytesIO(data)
    try:
        return _SafeUnpickler(bio, source, budget=16 * len(data) + (1 << 20)).load()
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
        detail = short_repr(str(exc).splitlines()[0], 120) if str(exc) else type(exc).__name__
        at_end = bio.tell() >= len(data)  # the machine stopped because the bytes ran out
        if at_end or "truncated" in detail or "ran out of input" in detail.lower():
            raise MotionFormatError(f"{source}: truncated pickle ({detail})") from None
        raise MotionFormatError(f"{source}: not a valid motion pickle ({detail})") from None
    except (MemoryError, RecursionError, OverflowError, ArithmeticError, SystemError) as exc:
        raise MotionFormatError(f"{source}: corrupt pickle ({type(exc).__name__})") from None

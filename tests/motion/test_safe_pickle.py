"""The restricted unpickler: data loads, code never runs."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from motion_testlib import legacy_motion_bytes

from mimictools.errors import MotionFormatError, UnsafePickleError
from mimictools.motion.formats.mimickit_pkl import read_mimickit_pkl
from mimictools.motion.formats.safe_pickle import LegacyLoopMode, LegacyMotion, TorchTensorData, safe_loads


def _frames(n: int = 4, width: int = 34) -> np.ndarray:
    return (np.arange(n * width, dtype=np.float32).reshape(n, width) * 0.01).astype(np.float32)


# ---- malicious pickles ------------------------------------------------------------------------------------
class _SystemCall:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalCall:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import builtins

        return (builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("payload_cls", [_SystemCall, _EvalCall], ids=["os.system", "builtins.eval"])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, payload_cls):
    marker = tmp_path / "pwned"
    data = pickle.dumps({"loop_mode": 1, "fps": 30, "frames": payload_cls(marker)}, protocol=4)
    clip = tmp_path / "evil.pkl"
    clip.write_bytes(data)
    # sanity: the payload really would run under plain pickle (in a throwaway process)
    with pytest.raises(UnsafePickleError) as exc:
        read_mimickit_pkl(clip)
    msg = str(exc.value)
    assert str(clip) in msg
    assert ("system" in msg) if payload_cls is _SystemCall else ("builtins.eval" in msg)
    assert "\n" not in msg
    assert not marker.exists()


def test_malicious_payload_would_really_run_with_plain_pickle(tmp_path):
    """Guards the test above: the same bytes do create the marker under ``pickle.loads``."""
    marker = tmp_path / "pwned"
    data = pickle.dumps({"frames": _SystemCall(marker)})
    subprocess.run(
        [sys.executable, "-c", "import pickle,sys; pickle.loads(sys.stdin.buffer.read())"],
        input=data,
        check=True,
    )
    assert marker.exists()


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


@pytest.mark.parametrize(
    "payload",
    [
        # numpy._reconstruct with a non-ndarray subtype
        b"\x80\x02"
        + _global("numpy.core.multiarray", "_reconstruct")
        + _global("builtins", "dict")
        + b"K\x00\x85C\x01b\x87R.",
        # getattr on an allowed class, reaching for something else
        b"\x80\x02"
        + _global("builtins", "getattr")
        + _global("anim.motion", "LoopMode")
        + b"X\x08\x00\x00\x00__init__\x86R.",
        # copyreg._reconstructor building an arbitrary class
        b"\x80\x02"
        + _global("copyreg", "_reconstructor")
        + _global("builtins", "dict")
        + _global("builtins", "object")
        + b"N\x87R.",
        # numpy dtype 'O' (arrays of arbitrary Python objects)
        b"\x80\x02" + _global("numpy", "dtype") + b"X\x02\x00\x00\x00O8\x89\x88\x87R.",
        # _codecs.encode with another codec
        b"\x80\x02" + _global("_codecs", "encode") + b"X\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.",
    ],
    ids=["reconstruct-dict", "getattr-init", "copyreg-dict", "dtype-object", "codecs-rot13"],
)
def test_allowed_globals_cannot_be_abused(payload):
    with pytest.raises(UnsafePickleError):
        safe_loads(payload, "x.pkl")


def test_object_array_refused():
    with pytest.raises(UnsafePickleError, match="dtype 'O'"):
        safe_loads(pickle.dumps(np.array([1, "a"], dtype=object)), "obj.pkl")


def test_persistent_ids_refused():
    payload = b"\x80\x02X\x03\x00\x00\x00abcQ."  # BINPERSID
    with pytest.raises(UnsafePickleError, match="persistent"):
        safe_loads(payload, "p.pkl")


# ---- legitimate content -------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
def test_numpy_arrays_and_scalars_round_trip(protocol):
    obj = {
        "frames": _frames(),
        "f64": np.linspace(0, 1, 5),
        "scalar": np.float32(2.5),
        "nested": [1, 2.0, (3, "x")],
    }
    got = safe_loads(pickle.dumps(obj, protocol=protocol), "np.pkl")
    np.testing.assert_array_equal(got["frames"], obj["frames"])
    assert got["frames"].dtype == np.float32
    np.testing.assert_array_equal(got["f64"], obj["f64"])
    assert got["scalar"] == np.float32(2.5)
    assert got["nested"] == [1, 2.0, (3, "x")]


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_torch_tensor_fps_is_decoded_without_torch_calls(protocol):
    torch = pytest.importorskip("torch")
    for value, dtype in ((30.0, torch.float32), (60.0, torch.float64), (24, torch.int64)):
        data = pickle.dumps({"fps": torch.tensor(value, dtype=dtype)}, protocol=protocol)
        got = safe_loads(data, "t.pkl")["fps"]
        assert isinstance(got, TorchTensorData)
        assert got.array.shape == ()
        assert float(got.array) == float(value)
    # a non-0-d tensor with an offset view decodes too
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)[1:, 1:3]
    got = safe_loads(pickle.dumps({"x": t}, protocol=4), "t.pkl")["x"]
    np.testing.assert_array_equal(got.array, t.numpy())


def test_torch_fps_clip_loads_without_importing_torch(tmp_path):
    torch = pytest.importorskip("torch")
    clip = tmp_path / "tensor_fps.pkl"
    clip.write_bytes(
        pickle.dumps({"loop_mode": 1, "fps": torch.tensor(30.0), "frames": _frames().tolist()}, protocol=3)
    )
    code = (
        "import sys\n"
        "from mimictools.motion import load_motion\n"
        f"m = load_motion({str(clip)!r})\n"
        "assert 'torch' not in sys.modules, 'loading a motion imported torch'\n"
        "print(m.fps, m.details[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "30.0 fps: 0-d torch tensor (float)"


def test_truncated_and_empty_and_garbage(tmp_path):
    data = pickle.dumps({"loop_mode": 1, "fps": 30, "frames": _frames().tolist()}, protocol=3)
    for cut in (1, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(MotionFormatError, match="truncated") as exc:
            safe_loads(data[:cut], "cut.pkl")
        assert str(exc.value).startswith("cut.pkl: ")
    with pytest.raises(MotionFormatError, match="empty file"):
        safe_loads(b"", "empty.pkl")
    with pytest.raises(MotionFormatError, match="not a valid motion pickle"):
        safe_loads(b"\x80\x04\xff\xff garbage", "junk.pkl")


# ---- MimicKit's legacy Motion object ----------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", [0, 2, 3, 4])
def test_legacy_motion_object(tmp_path, protocol):
    frames = _frames(5)
    data = legacy_motion_bytes(frames, 60.0, 1, protocol)
    assert b"anim.motion" in data and b"LoopMode" in data
    assert "anim" not in sys.modules
    obj = safe_loads(data, "legacy.pkl")
    assert isinstance(obj, LegacyMotion) and isinstance(obj.loop_mode, LegacyLoopMode)
    clip = tmp_path / "legacy.pkl"
    clip.write_bytes(data)
    m = read_mimickit_pkl(clip)
    assert m.variant == "mimickit-legacy-object"
    assert (m.fps, m.loop_mode, m.num_frames) == (60.0, 1, 5)
    np.testing.assert_array_equal(m.frames, frames)

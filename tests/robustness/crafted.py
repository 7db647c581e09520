"""Small hostile input files, one per class of issue 12 (untrusted files): each must end in our own
error (a ``MimicToolsError`` with one line naming the file), quickly and in little memory.

``crafted_files(folder)`` writes them and returns ``[(name, path, kind)]``; ``load(kind, path)`` runs
the loader the CLI runs for that kind (``motion inspect`` / ``fk-check`` / ``train --env-config`` ...).
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import Callable, Dict, List, Tuple

P = pickle


def _proto(n: int = 4) -> bytes:
    return P.PROTO + bytes([n])


def _global(module: str, name: str) -> bytes:
    return P.GLOBAL + module.encode() + b"\n" + name.encode() + b"\n"


def _bu(s: str) -> bytes:
    b = s.encode()
    return P.SHORT_BINUNICODE + bytes([len(b)]) + b


def _motion_dict(frames_ops: bytes) -> bytes:
    """A pickle of {'loop_mode': 0, 'fps': 30, 'frames': <frames_ops>}."""
    return (
        _proto()
        + P.EMPTY_DICT
        + P.MARK
        + _bu("loop_mode")
        + P.BININT1
        + b"\x00"
        + _bu("fps")
        + P.BININT1
        + b"\x1e"
        + _bu("frames")
        + frames_ops
        + P.SETITEMS
        + P.STOP
    )


def pickles() -> Dict[str, bytes]:
    import numpy as np

    out = {}
    # numpy.dtype + BUILD with crafted state: segfaulted / SystemError'd numpy's __setstate__
    out["dtype_build"] = (
        _proto(2)
        + _global("numpy", "dtype")
        + _bu("f8")
        + P.NEWFALSE
        + P.NEWTRUE
        + P.TUPLE3
        + P.REDUCE
        + P.MARK
        + P.BININT1
        + b"\x03"
        + _bu("<")
        + P.NONE
        + P.MARK
        + _bu("a")
        + P.TUPLE
        + P.NONE
        + P.BININT
        + struct.pack("<i", 2**31 - 1)
        + P.BININT1
        + b"\x01"
        + P.BININT1
        + b"\x00"
        + P.TUPLE
        + P.BUILD
        + P.STOP
    )
    # a memo index of 4 G: the C unpickler grows its memo array to that size
    out["huge_memo"] = _proto() + P.EMPTY_LIST + P.LONG_BINPUT + struct.pack("<I", 0xFFFFFFF0) + P.STOP
    # an array declared (2**40,) float64 with 8 bytes of data
    arr = _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray")
    arr += P.BININT1 + b"\x00" + P.TUPLE1 + P.SHORT_BINBYTES + b"\x01b" + P.TUPLE3 + P.REDUCE
    dt = _global("numpy", "dtype") + _bu("f8") + P.NEWFALSE + P.NEWTRUE + P.TUPLE3 + P.REDUCE
    dt += P.MARK + P.BININT1 + b"\x03" + _bu("<") + P.NONE + P.NONE + P.NONE
    dt += (
        P.BININT
        + struct.pack("<i", -1)
        + P.BININT
        + struct.pack("<i", -1)
        + P.BININT1
        + b"\x00"
        + P.TUPLE
        + P.BUILD
    )
    state = (
        P.MARK + P.BININT1 + b"\x01" + P.LONG1 + b"\x06" + (2**40).to_bytes(6, "little") + P.BININT1 + b"\x22"
    )
    state += P.TUPLE2 + dt + P.NEWFALSE + P.SHORT_BINBYTES + b"\x08" + b"\x00" * 8 + P.TUPLE + P.BUILD
    out["array_no_data"] = _motion_dict(arr + state)
    # numpy.ndarray called directly with a huge shape (REDUCE) and via NEWOBJ
    out["ndarray_call"] = _motion_dict(
        _global("numpy", "ndarray") + P.LONG1 + b"\x05" + (2**36).to_bytes(5, "little") + P.TUPLE1 + P.REDUCE
    )
    out["ndarray_newobj"] = _motion_dict(
        _global("numpy", "ndarray") + P.LONG1 + b"\x05" + (2**36).to_bytes(5, "little") + P.TUPLE1 + P.NEWOBJ
    )
    # a zero-stride tensor: 1 stored number viewed as 2**31 x 34
    out["zero_stride_tensor"] = _motion_dict(_zero_stride_tensor())
    # frames = [row] * 30001 where row = [0.0] * 20000: 600 M numbers from a 240 KB file
    row = (
        P.EMPTY_LIST + P.BINPUT + b"\x01" + P.MARK + (P.BINFLOAT + struct.pack(">d", 0.0)) * 20000 + P.APPENDS
    )
    rows = P.EMPTY_LIST + P.MARK + row + (P.BINGET + b"\x01") * 30000 + P.APPENDS
    out["shared_rows"] = _motion_dict(rows)
    # list(x) over a shared 30 K list, 20 K times: the REDUCE amplifier
    big = P.EMPTY_LIST + P.BINPUT + b"\x02" + P.MARK + (P.BININT1 + b"\x00") * 30000 + P.APPENDS + P.POP
    calls = (_global("builtins", "list") + P.BINGET + b"\x02" + P.TUPLE1 + P.REDUCE + P.POP) * 20000
    out["reduce_amplifier"] = _proto() + big + calls + P.NONE + P.STOP
    # 200 K nested lists
    out["deep_nesting"] = _motion_dict(P.EMPTY_LIST * 200000 + P.APPEND * 199999)
    # object and complex frames
    out["object_frames"] = _object_frames_pickle()
    out["complex_frames"] = pickle.dumps(
        {"loop_mode": 0, "fps": 30, "frames": np.ones((3, 34), dtype=np.complex64)}, protocol=4
    )
    out["complex_list_frames"] = pickle.dumps({"loop_mode": 0, "fps": 30, "frames": [[1j] * 34] * 2}, 4)
    out["fps_1e308"] = pickle.dumps({"loop_mode": 0, "fps": 1e308, "frames": [[0.0] * 34] * 2}, 4)
    out["nested_key"] = pickle.dumps({((((1,),),),): 1, "fps": 30}, 4)
    return {k: v for k, v in out.items() if v}


def _object_frames_pickle() -> bytes:
    import numpy as np

    a = np.empty((2, 34), dtype=object)
    a[:] = 1.0
    return pickle.dumps({"loop_mode": 0, "fps": 30, "frames": a}, protocol=4)


def _zero_stride_tensor() -> bytes:
    """``torch._utils._rebuild_tensor_v2(storage(1 double), 0, (2**31, 34), (0, 0))`` without torch."""
    inner = b"".join(
        pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True})
    )
    # the storage record: persistent id ('storage', torch.DoubleStorage, '0', 'cpu', 1)
    pid = (
        P.PROTO
        + b"\x02"
        + P.MARK
        + P.BINUNICODE
        + struct.pack("<I", 7)
        + b"storage"
        + _global("torch", "DoubleStorage")
        + P.BINUNICODE
        + struct.pack("<I", 1)
        + b"0"
        + P.BINUNICODE
        + struct.pack("<I", 3)
        + b"cpu"
        + P.BININT1
        + b"\x01"
        + P.TUPLE
        + P.BINPERSID
        + P.STOP
    )
    keys = pickle.dumps(["0"], protocol=2)
    blob = inner + pid + keys + struct.pack("<q", 1) + struct.pack("<d", 1.0)
    return (
        _global("torch._utils", "_rebuild_tensor_v2")
        + P.MARK
        + _global("torch.storage", "_load_from_bytes")
        + P.BINBYTES
        + struct.pack("<I", len(blob))
        + blob
        + P.TUPLE1
        + P.REDUCE
        + P.BININT1
        + b"\x00"
        + P.LONG1
        + b"\x05"
        + (2**31).to_bytes(5, "little")
        + P.BININT1
        + b"\x22"
        + P.TUPLE2
        + P.BININT1
        + b"\x00"
        + P.BININT1
        + b"\x00"
        + P.TUPLE2
        + P.NEWFALSE
        + P.EMPTY_DICT
        + P.TUPLE
        + P.REDUCE
    )


def texts() -> Dict[str, Tuple[str, str]]:
    """name -> (suffix, text) for the text formats."""
    row = "[" + ", ".join(["0.0333"] + ["0.0"] * 3 + (["1.0", "0.0", "0.0", "0.0"] * 3)) + "]"
    bomb_yaml = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    prev = "a"
    for i in range(9):
        name = f"b{i}"
        refs = ", ".join([f"*{prev}"] * 9)
        bomb_yaml += f"{name}: &{name} [{refs}]\n"
        prev = name
    body = "<body name='b{i}'><joint type='hinge'/>"
    deep_mjcf = (
        "<mujoco><worldbody><body name='root'><freejoint/>"
        + "".join(body.format(i=i) for i in range(3000))
        + "</body>" * 3001
        + "</worldbody></mujoco>"
    )

    def mjcf_joint(attrs: str, body_attrs: str = "", extra: str = "") -> str:
        return (
            f"<mujoco>{extra}<worldbody><body name='root'><freejoint/><geom size='0.1'/>"
            f"<body name='arm' {body_attrs}><joint name='j' type='hinge' {attrs}/><geom size='0.1'/></body>"
            "</body></worldbody></mujoco>"
        )

    bvh_head = (
        "HIERARCHY\nROOT hip\n{{\n OFFSET {off}\n CHANNELS 3 Xposition Yposition Zposition\n}}\nMOTION\n"
    )
    return {
        "txt_deep_json": (".txt", '{"Loop": "wrap", "Frames": ' + "[" * 100000 + "]" * 100000 + "}"),
        "txt_huge_int": (".txt", '{"Loop": "wrap", "Frames": [[' + "9" * 5000 + "]]}"),
        "txt_loop_nested": (".txt", '{"Loop": ' + "[" * 50 + "]" * 50 + ', "Frames": [' + row + "]}"),
        "txt_row_lists": (".txt", '{"Frames": [' + "[" + ",".join(["[1,2]"] * 44) + "]]}"),
        "txt_row_nulls": (".txt", '{"Frames": [' + "[" + ",".join(["null"] * 44) + "]]}"),
        "bvh_frames_0": (".bvh", bvh_head.format(off="0 0 0") + "Frames: 0\nFrame Time: 0.033\n"),
        "bvh_frames_neg": (".bvh", bvh_head.format(off="0 0 0") + "Frames: -5\nFrame Time: 0.033\n"),
        "bvh_nan_offset": (".bvh", bvh_head.format(off="nan 0 0") + "Frames: 1\nFrame Time: 0.033\n0 0 0\n"),
        "bvh_huge_offset": (
            ".bvh",
            bvh_head.format(off="1e300 0 0") + "Frames: 1\nFrame Time: 0.033\n0 0 0\n",
        ),
        "bvh_tiny_frame_time": (
            ".bvh",
            bvh_head.format(off="0 0 0") + "Frames: 1\nFrame Time: 1e-300\n0 0 0\n",
        ),
        "bvh_fk_bomb": (
            ".bvh",
            "HIERARCHY\nROOT r\n{\nOFFSET 0 0 0\nCHANNELS 1 Xposition\n"
            + "".join(f"JOINT j{i}\n{{\nOFFSET 0 1 0\n}}\n" for i in range(20000))
            + "}\nMOTION\nFrames: 150000\nFrame Time: 0.01\n"
            + "0\n" * 150000,
        ),
        "mjcf_deep_bodies": (".xml", deep_mjcf),
        "mjcf_ref_text": (".xml", mjcf_joint("ref='abc'")),
        "mjcf_stiffness_text": (".xml", mjcf_joint("stiffness='stiff'")),
        "mjcf_damping_nan": (".xml", mjcf_joint("damping='nan'")),
        "mjcf_armature_neg": (".xml", mjcf_joint("armature='-1'")),
        "mjcf_euler_overflow": (".xml", mjcf_joint("", "euler='1e309 0 0'")),
        "mjcf_range_inf": (".xml", mjcf_joint("range='-inf inf' limited='true'")),
        # small files that make MuJoCo (fk-check, train) allocate tens of GB when compiled
        "mjcf_texture_bomb": (
            ".xml",
            mjcf_joint(
                "",
                extra="<asset><texture name='t' builtin='checker' width='200000' height='200000'/></asset>",
            ),
        ),
        "mjcf_hfield_bomb": (
            ".xml",
            mjcf_joint(
                "", extra="<asset><hfield name='h' nrow='100000' ncol='100000' size='1 1 1 1'/></asset>"
            ),
        ),
        "mjcf_size_memory": (".xml", mjcf_joint("", extra="<size memory='100G'/>")),
        "yaml_alias_bomb_env": (".yaml", bomb_yaml + "env_name: *b8\n"),
        "yaml_alias_bomb_agent": (
            ".yaml",
            bomb_yaml.replace("a:", "x_a:").replace("b", "xb") + "model: *xb8\n",
        ),
        "yaml_deep": (".yaml", "env_name: " + "[" * 20000 + "]" * 20000 + "\n"),
        "yaml_list_key": (".yaml", "? [a, b]\n: 1\n"),
        "dataset_alias_bomb": (".yaml", bomb_yaml + "motions:\n  - file: *b8\n    weight: 1\n"),
        "dataset_weight_bomb": (".yaml", bomb_yaml + "motions:\n  - file: a.pkl\n    weight: *b8\n"),
    }


_TEXT_KIND = {".txt": "motion", ".bvh": "bvh", ".xml": "mjcf"}


def crafted_files(folder: Path) -> List[Tuple[str, Path, str]]:
    """Write every crafted file into ``folder``; ``[(name, path, kind)]``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, data in pickles().items():
        p = folder / f"{name}.pkl"
        p.write_bytes(data)
        out.append((name, p, "motion"))
    for name, (suffix, text) in texts().items():
        p = folder / f"{name}{suffix}"
        p.write_text(text)
        if suffix == ".yaml":
            kind = "dataset" if name.startswith("dataset") else ("agent" if "agent" in name else "env")
        else:
            kind = _TEXT_KIND[suffix]
        out.append((name, p, kind))
    return out


def special_files(folder: Path) -> List[Tuple[str, Path, str]]:
    """A FIFO (no writer: a plain open() blocks forever) and symlinks to /dev/zero, for every loader."""
    import os

    out = []
    fifo = folder / "fifo.pkl"
    if hasattr(os, "mkfifo"):
        os.mkfifo(str(fifo))
        for kind in ("motion", "bvh", "mjcf", "env", "dataset"):
            out.append((f"fifo_{kind}", fifo, kind))
    if Path("/dev/zero").exists():
        for kind, suffix in (("motion", ".pkl"), ("bvh", ".bvh"), ("mjcf", ".xml"), ("env", ".yaml")):
            link = folder / f"zero{suffix}"
            if not link.exists():
                link.symlink_to("/dev/zero")
            out.append((f"dev_zero_{kind}", link, kind))
    return out


def loaders() -> Dict[str, Callable[[Path], object]]:
    """kind -> the library call the CLI makes for that input."""
    from mimictools.character.mjcf import load_character
    from mimictools.config.load import load_agent_config, load_env_config
    from mimictools.motion.io import load_motion, load_motion_set
    from mimictools.motion.retarget.bvh import bvh_forward_kinematics, load_bvh

    def bvh(p: Path) -> object:
        return bvh_forward_kinematics(load_bvh(p))

    return {
        "motion": lambda p: load_motion(p, warn=False),
        "dataset": lambda p: load_motion_set(p, warn=False),
        "bvh": bvh,
        "mjcf": load_character,
        "env": load_env_config,
        "agent": load_agent_config,
    }

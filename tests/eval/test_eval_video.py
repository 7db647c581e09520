"""mp4 rendering of the simulated character and the reference ghost (only where an offscreen GL backend works)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mimictools.character.kinematics import dof_to_qpos
from mimictools.character.mjcf import load_character
from mimictools.errors import MimicToolsError
from mimictools.eval.video import RenderError, render_video, select_gl_backend, video_size
from mimictools.paths import bundled_data_dir


def _backend_or_skip() -> str:
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        pytest.skip("imageio-ffmpeg not installed (optional dependency of --video)")
    try:
        return select_gl_backend()
    except RenderError as e:
        pytest.skip(f"no offscreen OpenGL backend here: {e}")


def test_render_video_writes_readable_mp4(tmp_path):
    backend = _backend_or_skip()
    import imageio_ffmpeg

    char = load_character(bundled_data_dir() / "humanoid.xml")
    n = 4
    dof = torch.zeros(n, char.num_dofs, dtype=torch.float64)
    root_pos = torch.tensor([[0.0, 0.0, 0.9]], dtype=torch.float64).expand(n, 3)
    root_rot = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64).expand(n, 4)
    qpos = dof_to_qpos(char, root_pos, root_rot, dof).numpy()
    sim = qpos.copy()
    sim[:, 0] += np.linspace(0.0, 0.3, n)  # the simulated one walks off
    out = tmp_path / "sub" / "ep.mp4"
    render_video(
        char,
        sim,
        qpos,
        out,
        fps=30,
        width=160,
        height=128,
        captions=[f"f{i}" for i in range(n)],
        backend=backend,
    )
    assert out.is_file() and out.stat().st_size > 0
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "temp file left behind"
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert tuple(meta["size"]) == (160, 128)
    frames = [np.frombuffer(f, dtype=np.uint8) for f in reader]
    assert len(frames) == n
    assert frames[0].std() > 5.0, "blank frame"


def test_render_video_rejects_bad_input(tmp_path):
    char = load_character(bundled_data_dir() / "humanoid.xml")
    with pytest.raises(MimicToolsError, match="qpos"):
        render_video(char, np.zeros((2, 5)), np.zeros((2, 5)), tmp_path / "x.mp4", fps=30)
    with pytest.raises(MimicToolsError, match="WIDTHxHEIGHT"):
        video_size("640by480")
    assert video_size("320x240") == (320, 240)


def test_forced_unknown_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "wgl")
    with pytest.raises(RenderError, match="MUJOCO_GL"):
        select_gl_backend()

"""Offscreen MuJoCo video of an evaluated episode: the simulated character beside a translucent ghost
of the reference, tracking camera, written as mp4.

Rendering needs an OpenGL backend that works without a window (MuJoCo's ``MUJOCO_GL``):

- ``egl``: NVIDIA GPUs (driver's ``libEGL_nvidia``), and on CPU-only Linux Mesa's EGL with the
  llvmpipe software rasteriser (Debian/Ubuntu ``libegl1`` + ``libgl1-mesa-dri``);
- ``osmesa``: CPU software rendering (Debian/Ubuntu ``libosmesa6``; needs PyOpenGL);
- ``glfw``: only with a display (``$DISPLAY``).

With ``MUJOCO_GL`` set, that backend is used. Otherwise each candidate (egl, osmesa, glfw when a
display exists) is tried in a short subprocess first, because a failed OpenGL initialisation cannot
be undone inside a process; the first that works is used. The mp4 is encoded by ``imageio-ffmpeg``
(optional dependency, ships its own ffmpeg binary: ``pip install imageio-ffmpeg``).

The ghost is a second ``MjData`` of the same model, its geoms added to the scene with
``mjv_addGeoms`` and recoloured translucent, drawn at ``ref_offset`` (the env config's
``ref_char_offset``, MimicKit's default 2 m along x; (0, 0, 0) overlays it on the simulated one).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from mimictools.errors import MimicToolsError

__all__ = ["GHOST_RGBA", "RenderError", "render_video", "select_gl_backend"]

GHOST_RGBA = (0.35, 0.65, 1.0, 0.35)
"""Colour of the reference ghost (RGBA)."""

_CANDIDATES = ("egl", "osmesa", "glfw")
_cache: Dict[str, str] = {}

_PROBE = """
import sys, importlib
import mujoco
backend = sys.argv[1]
ctx = importlib.import_module("mujoco." + backend).GLContext(16, 16)
ctx.make_current()
m = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom type='sphere' size='.1'/></worldbody></mujoco>")
con = mujoco.MjrContext(m, mujoco.mjtFontScale.mjFONTSCALE_100)
con.free()
ctx.free()
print("ok")
"""


class RenderError(MimicToolsError):
    """No offscreen OpenGL backend works, or the video cannot be encoded."""


def _probe(backend: str) -> Optional[str]:
    """None if ``backend`` can create a MuJoCo render context here, else the reason (one line)."""
    env = dict(os.environ, MUJOCO_GL=backend)
    env.pop("PYOPENGL_PLATFORM", None)
    if backend in ("egl", "osmesa"):
        env["PYOPENGL_PLATFORM"] = backend
    try:
        p = subprocess.run(
            [sys.executable, "-c", _PROBE, backend], env=env, capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{type(e).__name__}: {e}"
    if p.returncode == 0 and "ok" in p.stdout:
        return None
    lines = [ln.strip() for ln in (p.stderr or p.stdout).splitlines() if ln.strip()]
    return lines[-1][:200] if lines else f"exit code {p.returncode}"


def select_gl_backend() -> str:
    """The OpenGL backend to render with: ``$MUJOCO_GL`` if set, else the first of egl, osmesa, glfw
    (glfw only with ``$DISPLAY``) that works here. Raises `RenderError` naming what to install."""
    forced = os.environ.get("MUJOCO_GL", "").strip().lower()
    if forced:
        if forced not in _CANDIDATES:
            raise RenderError(f"MUJOCO_GL={forced!r} cannot render offscreen here; use egl, osmesa or glfw")
        return forced
    if "backend" in _cache:
        return _cache["backend"]
    tried = []
    for backend in _CANDIDATES:
        if backend == "glfw" and not os.environ.get("DISPLAY"):
            continue
        why = _probe(backend)
        if why is None:
            _cache["backend"] = backend
            return backend
        tried.append(f"{backend}: {why}")
    raise RenderError(
        "--video: no offscreen OpenGL backend works here (tried "
        + "; ".join(tried)
        + "). Install EGL (NVIDIA driver, or Mesa: apt install libegl1 libgl1-mesa-dri) or OSMesa "
        "(apt install libosmesa6; pip install PyOpenGL) and set MUJOCO_GL=egl or osmesa"
    )


def _gl_context(backend: str, width: int, height: int):
    if backend in ("egl", "osmesa"):
        current = os.environ.get("PYOPENGL_PLATFORM")
        if current and current.lower() != backend:
            raise RenderError(
                f"cannot render with MUJOCO_GL={backend}: PYOPENGL_PLATFORM is {current!r} in this process"
            )
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    try:
        mod = importlib.import_module(f"mujoco.{backend}")
        ctx = mod.GLContext(width, height)
        ctx.make_current()
    except Exception as e:  # ImportError, GL errors of any kind
        raise RenderError(f"cannot create a {backend} OpenGL context: {type(e).__name__}: {e}") from None
    return ctx


def _set_qpos(model, data, qpos_adr: np.ndarray, qpos_row: np.ndarray, offset: np.ndarray) -> None:
    import mujoco

    q = np.array(qpos_row, dtype=np.float64)
    q[0:3] += offset
    data.qpos[qpos_adr] = q
    mujoco.mj_kinematics(model, data)
    mujoco.mj_camlight(model, data)


def render_video(
    char,
    sim_qpos: np.ndarray,
    ref_qpos: np.ndarray,
    out_path: Union[str, Path],
    fps: float,
    ref_offset: Sequence[float] = (2.0, 0.0, 0.0),
    width: int = 640,
    height: int = 480,
    captions: Optional[Sequence[str]] = None,
    title: str = "",
    backend: Optional[str] = None,
) -> Path:
    """Render frames of the simulated character (model colours) and the reference ghost to an mp4.

    ``sim_qpos``/``ref_qpos``: Character-layout qpos per frame (`Trajectory.qpos`), Shape (T, num_qpos).
    ``captions``: one line of text per frame (bottom left), e.g. time and tracking error. ``fps``: playback
    rate (the control rate plays in real time). The file is written atomically. Returns ``out_path``.
    """
    import mujoco

    from mimictools.engines.base import EngineSpec
    from mimictools.engines.mjcf_build import build_sim_model

    try:
        import imageio_ffmpeg
    except ImportError:
        raise RenderError(
            "--video needs the optional package imageio-ffmpeg: pip install imageio-ffmpeg"
        ) from None
    sim_qpos = np.asarray(sim_qpos, dtype=np.float64)
    ref_qpos = np.asarray(ref_qpos, dtype=np.float64)
    if sim_qpos.ndim != 2 or sim_qpos.shape != ref_qpos.shape or sim_qpos.shape[1] != char.num_qpos:
        raise MimicToolsError(
            f"render_video: sim/ref qpos must both have Shape (T, {char.num_qpos}); got {sim_qpos.shape} and {ref_qpos.shape}"
        )
    if sim_qpos.shape[0] == 0:
        raise MimicToolsError("render_video: no frame to render")
    if captions is not None and len(captions) != sim_qpos.shape[0]:
        raise MimicToolsError(f"render_video: {len(captions)} captions for {sim_qpos.shape[0]} frames")
    width, height = int(width) // 16 * 16, int(height) // 16 * 16  # H.264 macro blocks
    if width < 64 or height < 64:
        raise MimicToolsError("render_video: width and height must be at least 64 pixels")
    offset = np.asarray(ref_offset, dtype=np.float64).reshape(3)

    sim_model = build_sim_model(char, EngineSpec(num_envs=1))
    m = sim_model.model
    m.vis.global_.offwidth = max(width, int(m.vis.global_.offwidth))
    m.vis.global_.offheight = max(height, int(m.vis.global_.offheight))
    m.vis.quality.shadowsize = 2048
    d_sim, d_ref = mujoco.MjData(m), mujoco.MjData(m)
    qpos_adr = sim_model.qpos_adr

    ctx = _gl_context(backend or select_gl_backend(), width, height)
    con = None
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.stem}.{os.getpid()}.tmp{out_path.suffix or '.mp4'}")
    try:
        con = mujoco.MjrContext(m, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, con)
        scene = mujoco.MjvScene(m, maxgeom=2 * m.ngeom + 64)
        opt = mujoco.MjvOption()
        pert = mujoco.MjvPerturb()
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        cam.azimuth, cam.elevation = 90.0, -10.0  # from -y: +x (the ghost side) is to the right
        cam.distance = 2.6 + 0.6 * float(np.linalg.norm(offset[:2]))
        viewport = mujoco.MjrRect(0, 0, width, height)
        rgb = np.zeros((height, width, 3), dtype=np.uint8)
        ghost = np.asarray(GHOST_RGBA, dtype=np.float32)
        lookat = None
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (width, height),
            fps=float(fps),
            codec="libx264",
            quality=7,
            macro_block_size=16,
            ffmpeg_log_level="error",
        )
        writer.send(None)
        try:
            for k in range(sim_qpos.shape[0]):
                _set_qpos(m, d_sim, qpos_adr, sim_qpos[k], np.zeros(3))
                _set_qpos(m, d_ref, qpos_adr, ref_qpos[k], offset)
                target = 0.5 * (sim_qpos[k, 0:3] + ref_qpos[k, 0:3] + offset)
                target[2] = 0.8
                lookat = target if lookat is None else lookat + 0.15 * (target - lookat)
                cam.lookat[:] = lookat
                mujoco.mjv_updateScene(m, d_sim, opt, pert, cam, int(mujoco.mjtCatBit.mjCAT_ALL), scene)
                n0 = scene.ngeom
                mujoco.mjv_addGeoms(m, d_ref, opt, pert, int(mujoco.mjtCatBit.mjCAT_DYNAMIC), scene)
                for g in range(n0, scene.ngeom):
                    scene.geoms[g].rgba[:] = ghost
                mujoco.mjr_render(viewport, scene, con)
                top = title + "\n" if title else ""
                mujoco.mjr_overlay(
                    mujoco.mjtFont.mjFONT_NORMAL,
                    mujoco.mjtGridPos.mjGRID_TOPLEFT,
                    viewport,
                    top + "simulated (solid)  |  reference (ghost)",
                    "",
                    con,
                )
                line = captions[k] if captions is not None else f"frame {k}"
                mujoco.mjr_overlay(
                    mujoco.mjtFont.mjFONT_NORMAL, mujoco.mjtGridPos.mjGRID_BOTTOMLEFT, viewport, line, "", con
                )
                mujoco.mjr_readPixels(rgb, None, viewport, con)
                writer.send(np.ascontiguousarray(np.flipud(rgb)))
        finally:
            writer.close()
        os.replace(tmp, out_path)
    except RenderError:
        raise
    except (OSError, RuntimeError) as e:
        raise RenderError(f"--video: writing {out_path} failed: {type(e).__name__}: {e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
        if con is not None:
            con.free()
        ctx.free()
    return out_path


def video_size(text: str) -> Tuple[int, int]:
    """Parse ``WIDTHxHEIGHT`` (e.g. ``640x480``)."""
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise MimicToolsError(f"video size must be WIDTHxHEIGHT, e.g. 640x480; got {text!r}") from None
    return w, h

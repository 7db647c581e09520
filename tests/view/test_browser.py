"""`mimic view` in a real browser: headless Chromium (software WebGL) screenshots of the live viser scene.

Checks that the character is drawn (pixels differ from the same scene with the character hidden, where it
stands), that moving the timeline changes the picture, and that a clip with NaN frames shows its marker (the
offending body in the fault colour). The screenshots go to the test's tmp folder; with MIMIC_SAVE_SCREENSHOTS=1
they are written to docs/img/ (the README's pictures) instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "viser", reason="mimic view needs the optional viser package (pip install mimictools[view])"
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium binary (Debian: apt-get install chromium)"),
    # Software-WebGL screenshots are not reliable on a loaded 2-core machine yet: in a fresh-clone CI run on
    # 2026-12-07 one screenshot hit its 600 s timeout and the G1 scene came back empty (0 dark pixels), while the
    # same tests passed on an idle machine. Opt in until they are made robust (issue 15 stays open for it).
    pytest.mark.skipif(
        os.environ.get("MIMIC_BROWSER_TESTS") != "1",
        reason="browser screenshots are opt-in (MIMIC_BROWSER_TESTS=1): not reliable on a loaded 2-core machine yet",
    ),
]

WIDTH, HEIGHT = 1280, 800
SCENE_W = 930
"""Screenshot columns left of the GUI panel (the 3D view)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _img_dir(repo_dir: Path, tmp_path: Path) -> Path:
    """docs/img with MIMIC_SAVE_SCREENSHOTS=1 (to refresh the README's pictures), else the test's tmp folder."""
    import os

    return repo_dir / "docs" / "img" if os.environ.get("MIMIC_SAVE_SCREENSHOTS") == "1" else tmp_path


def screenshot(url: str, out: Path) -> np.ndarray:
    """Load ``url`` in headless Chromium with SwiftShader WebGL, give it 6 s of virtual time, save a PNG."""
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader", "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}",
        "--virtual-time-budget=6000", f"--screenshot={out}", url,
    ]  # fmt: skip
    # SwiftShader renders on the CPU: ~20 s per shot on an idle 2-core machine, minutes when it is shared.
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    return np.asarray(Image.open(out).convert("RGB")).astype(np.int32)


def fault_pixels(img: np.ndarray) -> int:
    """Pixels of the 3D view in the fault colour (red, lit: r well above g and b), outside the corners where viser draws its own
    notification and axes gizmo."""
    view = img[160 : HEIGHT - 80, 60:SCENE_W]
    r, g, b = view[..., 0], view[..., 1], view[..., 2]
    return int(((r - g > 70) & (r - b > 70)).sum())


@pytest.fixture(scope="module")
def humanoid(repo_dir):
    from mimictools.view.tracks import load_view_character

    return load_view_character(repo_dir / "data" / "humanoid.xml")


def _player(vc, tracks):
    import viser

    from mimictools.view.server import Player, _camera

    server = viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    _camera(server, tracks, vc)
    player = Player(server, vc, tracks)
    player.gui["play"].value = False
    return server, player


def test_character_drawn_timeline_moves_and_nan_marked(shared_dir, humanoid, repo_dir, tmp_path):
    from mimictools.motion.io import load_motion
    from mimictools.view.tracks import clip_track

    clips = shared_dir / "mimickit" / "data" / "motions" / "humanoid"
    img_dir = _img_dir(repo_dir, tmp_path)
    kick = clip_track(humanoid, load_motion(clips / "humanoid_spinkick.pkl"))
    walk = clip_track(humanoid, load_motion(clips / "humanoid_walk.pkl"))
    clean = np.nonzero(~kick.faults.bodies.any(axis=(0, 2)))[0]  # frames without any fault mark
    f0 = int(clean[0])
    f1 = int(clean[clean >= f0 + 30][0])
    server, player = _player(humanoid, [kick, walk])
    url = f"http://127.0.0.1:{server.get_port()}"
    try:
        player.show(f0)
        first = screenshot(url, img_dir / "view_spinkick_a.png")
        for node in player.figure.bodies:
            node.visible = False
        empty = screenshot(url, img_dir / "view_empty_scene.png")
        for node in player.figure.bodies:
            node.visible = True
        player.gui["frame"].value = f1
        later = screenshot(url, img_dir / "view_spinkick_b.png")
        player.select(1)  # humanoid_walk: NaN neck in every frame
        player.gui["frame"].value = 30
        nan_img = screenshot(url, img_dir / "view_walk_nan.png")
    finally:
        server.stop()

    drawn = (np.abs(first - empty).sum(-1) > 40)[:, :SCENE_W]
    # The character stands where the camera looks (the centre of the 3D view): a figure ~1.7 m tall at ~3 m
    # covers thousands of pixels there; the empty scene has only ground there.
    centre = drawn[HEIGHT // 4 : 3 * HEIGHT // 4, SCENE_W // 4 : 3 * SCENE_W // 4]
    assert centre.sum() > 3000, f"character not drawn: {centre.sum()} changed pixels at the centre"
    moved = (np.abs(later - first).sum(-1) > 40)[:, :SCENE_W].sum()
    assert moved > 1000, f"frame {f1} looks like frame {f0} ({moved} changed pixels)"
    assert fault_pixels(first) < 50, "a clean clip shows fault colour"
    assert fault_pixels(nan_img) > 150, "the NaN clip's faulty body (head) is not shown in the fault colour"


def test_g1_meshes_drawn(g1_view, g1_clip, tmp_path, repo_dir):
    from mimictools.view.tracks import clip_track

    vc = g1_view
    track = clip_track(vc, g1_clip)
    server, player = _player(vc, [track])
    url = f"http://127.0.0.1:{server.get_port()}"
    try:
        player.show(15)
        img = screenshot(url, _img_dir(repo_dir, tmp_path) / "view_g1.png")
    finally:
        server.stop()
    # The G1's meshes are dark grey and black; the ground where the robot stands is light (grid lines ~1 px).
    centre = img[HEIGHT // 4 : 3 * HEIGHT // 4, SCENE_W // 4 : 3 * SCENE_W // 4]
    dark = int((centre.sum(-1) < 3 * 110).sum())
    assert dark > 3000, f"G1 not drawn: {dark} dark pixels at the centre"

"""`mimic view` in a real browser: headless Chromium (SwiftShader WebGL) showing the live viser scene.

Checks that the character is drawn (pixels differ from the same scene with the character hidden, where it
stands), that moving the timeline changes the picture, and that a clip with NaN frames shows its marker (the
offending body in the fault colour, and the ``NaN`` mark on the timeline); the G1's meshes are drawn. How the page
is driven and why every wait is bounded and signalled, not slept: ``browser_lib``. The images go to the test's
tmp folder; with MIMIC_SAVE_SCREENSHOTS=1 they are written to docs/img/ (the README's pictures) instead.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

pytest.importorskip(
    "viser", reason="mimic view needs the optional viser package (pip install mimictools[view])"
)

from browser_lib import (  # noqa: E402
    CHROMIUM,
    Browser,
    changed_pixels,
    render_until,
    save_png,
    server_camera,
    shot_dir,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium binary (Debian: apt-get install chromium)"),
]

WINDOW_W, WINDOW_H = 1280, 800
"""The browser window (the 3D view is left of viser's GUI panel)."""
W, H = 800, 600
"""The rendered 3D view (viser's get_render)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def centre(mask: np.ndarray) -> np.ndarray:
    """The middle half of the view in both directions: where the camera looks, i.e. where the character stands."""
    return mask[H // 4 : 3 * H // 4, W // 4 : 3 * W // 4]


def fault_pixels(img: np.ndarray) -> int:
    """Pixels in the fault colour (red, lit: r well above g and b)."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return int(((r - g > 70) & (r - b > 70)).sum())


def stable(client, cam) -> np.ndarray:
    """Render until two renders in a row are the same picture (the scene has settled); bounded."""
    prev = [None]

    def same(img: np.ndarray) -> bool:
        ok = prev[0] is not None and changed_pixels(img, prev[0]).sum() < 50
        prev[0] = img
        return ok

    return render_until(client, W, H, cam, same)


@pytest.fixture(scope="module")
def browser():
    b = Browser(WINDOW_W, WINDOW_H)
    yield b
    b.close()


@pytest.fixture(scope="module")
def humanoid(repo_dir):
    from mimictools.view.tracks import load_view_character

    return load_view_character(repo_dir / "data" / "humanoid.xml")


def _player(vc, tracks, ghost=False):
    import viser

    from mimictools.view.server import Player, _camera

    server = viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    _camera(server, tracks, vc, ghost=ghost)
    player = Player(server, vc, tracks, ghost=ghost)
    player.gui["play"].value = False
    return server, player


def _hide(player, hidden: bool) -> None:
    with player.server.atomic():
        for node in player.figure.bodies:
            node.visible = not hidden


def _open_on_empty_scene(browser, server, player, frame: int):
    """The page opened at clip frame ``frame`` with the character hidden: (client, camera, the settled image of
    the empty scene); the character is shown again before returning."""
    player.show(frame)
    _hide(player, True)
    client = browser.open(f"http://127.0.0.1:{server.get_port()}", server)
    cam = server_camera(server)
    empty = stable(client, cam)
    _hide(player, False)
    return client, cam, empty


def test_character_drawn_timeline_moves_and_nan_marked(browser, shared_dir, humanoid, repo_dir, tmp_path):
    from mimictools.motion.io import load_motion
    from mimictools.view.tracks import clip_track

    clips = shared_dir / "mimickit" / "data" / "motions" / "humanoid"
    img_dir = shot_dir(repo_dir, tmp_path)
    kick = clip_track(humanoid, load_motion(clips / "humanoid_spinkick.pkl"))
    walk = clip_track(humanoid, load_motion(clips / "humanoid_walk.pkl"))
    clean = np.nonzero(~kick.faults.bodies.any(axis=(0, 2)))[0]  # frames without any fault mark
    f0 = int(clean[0])
    f1 = int(clean[clean >= f0 + 30][0])
    server, player = _player(humanoid, [kick, walk])
    try:
        client, cam, empty = _open_on_empty_scene(browser, server, player, f0)
        # The character stands where the camera looks: a figure ~1.7 m tall at ~3 m covers thousands of pixels
        # of the centre, where the empty scene has only ground.
        first = render_until(client, W, H, cam, lambda im: centre(changed_pixels(im, empty)).sum() > 3000)
        player.gui["frame"].value = f1
        later = render_until(client, W, H, cam, lambda im: changed_pixels(im, first).sum() > 1000)
        player.select(1)  # humanoid_walk: NaN neck in every frame
        player.gui["frame"].value = 30
        nan_img = render_until(client, W, H, cam, lambda im: fault_pixels(im) > 150)
        page = browser.wait_text("NaN")
        browser.screenshot(img_dir / "view_walk_gui.png")
    finally:
        server.stop()
    for name, img in [
        ("empty_scene", empty),
        ("spinkick_a", first),
        ("spinkick_b", later),
        ("walk_nan", nan_img),
    ]:
        save_png(img, img_dir / f"view_{name}.png")

    drawn = centre(changed_pixels(first, empty)).sum()
    assert drawn > 3000, f"character not drawn: {drawn} changed pixels at the centre"
    moved = changed_pixels(later, first).sum()
    assert moved > 1000, f"frame {f1} looks like frame {f0} ({moved} changed pixels)"
    assert fault_pixels(first) < 50, "a clean clip shows fault colour"
    assert fault_pixels(nan_img) > 150, "the NaN clip's faulty body (head) is not shown in the fault colour"
    assert "NaN" in page, "the timeline of the NaN clip has no NaN mark"
    assert "nan at this frame: head" in page, "the panel does not name the NaN body"


def test_g1_meshes_drawn(browser, g1_view, g1_clip, tmp_path, repo_dir):
    from mimictools.view.tracks import clip_track

    track = clip_track(g1_view, g1_clip)
    server, player = _player(g1_view, [track])
    try:
        client, cam, empty = _open_on_empty_scene(browser, server, player, 15)
        # The G1 (1.3 m, slim) covers fewer pixels than the humanoid: ~4000 of the centre at this camera.
        img = render_until(client, W, H, cam, lambda im: centre(changed_pixels(im, empty)).sum() > 1500)
    finally:
        server.stop()
    save_png(img, shot_dir(repo_dir, tmp_path) / "view_g1.png")
    save_png(empty, tmp_path / "view_g1_empty.png")
    drawn = centre(changed_pixels(img, empty)).sum()
    assert drawn > 1500, f"G1 not drawn: {drawn} changed pixels at the centre"
    # its meshes, not only their outline: the pelvis, head and feet are near-black, the ground is light
    dark = int((centre(img).sum(-1) < 3 * 60).sum()) - int((centre(empty).sum(-1) < 3 * 60).sum())
    assert dark > 200, (
        f"the G1's dark parts are not drawn: {dark} more near-black pixels than the empty scene"
    )


def ghost_pixels(img: np.ndarray) -> int:
    """Pixels of the translucent blue ghost over the light ground (blue well above red; the ground is beige)."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return int(((b - r > 30) & (b > g)).sum())


def test_policy_live_with_ghost_and_error(browser, tiny_checkpoint, tmp_path, repo_dir):
    """`mimic view --model`: the policy steps the character in the viewer process; the page shows it, the
    reference ghost beside it, and the live tracking error; more steps change the picture."""
    from mimictools.view.live import LiveController, open_live_session

    session = open_live_session(tiny_checkpoint, episode_length_s=2.0)
    server, player = _player(session.vc, session.reference_tracks(), ghost=True)
    ctl = LiveController(player, session)
    ctl.gui["repeat"].value = False
    try:
        ctl.start()
        ctl.tick(session.control_dt)
        client = browser.open(f"http://127.0.0.1:{server.get_port()}", server)
        cam = server_camera(server)
        first = render_until(client, W, H, cam, lambda im: ghost_pixels(im) > 500)
        page = browser.wait_text("body position error")
        browser.screenshot(shot_dir(repo_dir, tmp_path) / "view_policy_live.png")
        for _ in range(10):
            ctl.tick(session.control_dt)
        later = render_until(client, W, H, cam, lambda im: changed_pixels(im, first).sum() > 200)
    finally:
        server.stop()
        session.close()
    save_png(first, tmp_path / "view_policy_a.png")
    save_png(later, tmp_path / "view_policy_b.png")
    assert ghost_pixels(first) > 500, f"the reference ghost is not drawn ({ghost_pixels(first)} blue pixels)"
    assert "live: t = " in page and "body position error" in page, "the panel shows no live tracking error"
    moved = changed_pixels(later, first).sum()
    assert moved > 200, f"10 more policy steps did not change the picture ({moved} changed pixels)"

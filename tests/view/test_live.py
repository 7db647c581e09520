"""`mimic view --model`: the policy driving the character live in the viewer process, without a browser.

The viewer's state is driven directly: a viser server with no page open, the `Player` and its `LiveController`,
``tick`` called as the player's loop would. The live episode must be `mimic eval`'s episode (same env, policy and
step loop), drawn frame by frame, with the reference as a ghost and the tracking error in the panel.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip(
    "viser", reason="mimic view needs the optional viser package (pip install mimictools[view])"
)

EPISODE_S = 0.5
"""Episode length of these tests (s): 15 control steps at 30 Hz."""


@pytest.fixture()
def session(tiny_checkpoint):
    from mimictools.view.live import open_live_session

    s = open_live_session(tiny_checkpoint, episode_length_s=EPISODE_S)
    yield s
    s.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def viewer(session):
    import viser

    from mimictools.view.live import LiveController
    from mimictools.view.server import Player

    server = viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    player = Player(server, session.vc, session.reference_tracks(), ghost=True)
    player.gui["play"].value = False
    ctl = LiveController(player, session)
    yield player, ctl
    server.stop()


def test_live_episode_is_mimic_evals_episode(tiny_checkpoint, session):
    """Clip 0 from t = 0, stepped live, gives exactly `mimic eval`'s first episode (one step loop)."""
    from mimictools.app.evaluate import EvalOptions, evaluate

    session.start(0, 0.0)
    frames = [session.step()]
    while frames[-1].episode is None:
        frames.append(session.step())
        assert len(frames) < 1000
    result = evaluate(tiny_checkpoint, EvalOptions(episodes=1, episode_length_s=EPISODE_S))
    ep, err = result.episodes[0], result.errors[0]
    assert len(frames) == ep.num_frames
    pos, _ = session.vc.body_poses(ep.sim.qpos(result.char))
    np.testing.assert_allclose(np.stack([f.body_pos for f in frames]), pos, atol=1e-6)
    np.testing.assert_allclose(np.stack([f.body_pos_err_m for f in frames]), err.body_pos_err_m, atol=1e-6)
    track = frames[-1].episode
    np.testing.assert_allclose(track.body_pos, pos, atol=1e-6)  # the replay of the live episode


def test_controller_draws_each_step_with_ghost_and_error(viewer, session):
    player, ctl = viewer
    ctl.gui["repeat"].value = False
    ctl.start()
    (frame,) = ctl.tick(session.control_dt)
    # the scene shows this step: character bodies and the ghost (reference + offset, 1 m to the side)
    got = np.stack([np.asarray(n.position) for n in player.figure.bodies])
    np.testing.assert_allclose(got, frame.body_pos, atol=1e-6)
    ghost = np.stack([np.asarray(n.position) for n in player.ghost.bodies])
    np.testing.assert_allclose(ghost, frame.ghost_pos, atol=1e-6)
    root = session.vc.body_ids[0]
    np.testing.assert_allclose(ghost[root] - got[root], [0.0, 1.0, 0.0], atol=0.1)  # one step after ref init
    assert "body position error" in player.gui["now"].content and "worst" in player.gui["now"].content
    # the rest of the episode; its replay joins the clip list and is selected
    frames = [frame] + _run_episode_rest(ctl)
    n_tracks = len(session.clip_names) + 1
    assert len(player.tracks) == n_tracks and player.track is player.tracks[-1]
    assert player.track.name.startswith("live 1: ") and player.track.num_frames == len(frames)
    assert player.gui["clip"].options[-1] == player.track.name  # the clip list offers its replay
    np.testing.assert_allclose(player.track.body_pos, np.stack([f.body_pos for f in frames]), atol=1e-6)


def _run_episode_rest(ctl, max_ticks: int = 1000):
    frames = []
    for _ in range(max_ticks):
        frames += ctl.tick(ctl.session.control_dt)
        if not ctl.running:
            return frames
    raise AssertionError(f"the live episode did not end in {max_ticks} ticks")


def test_start_time_and_clip_come_from_the_panel(viewer, session):
    player, ctl = viewer
    ctl.gui["repeat"].value = False
    assert ctl.gui["clip"].value == session.clip_names[0]
    ctl.gui["start"].value = 0.3
    ctl.start()
    (frame,) = ctl.tick(session.control_dt)
    # the reference starts at the chosen clip time (the first frame is one control step after it)
    assert frame.motion_time_s == pytest.approx(0.3 + session.control_dt, abs=1e-6)
    # repeat on: the next episode starts by itself when one ends
    ctl.gui["repeat"].value = True
    _ = [ctl.tick(session.control_dt) for _ in range(int(EPISODE_S / session.control_dt) + 5)]
    assert ctl.running and any(t.name.startswith("live 1: ") for t in player.tracks)


def test_a_person_scrubbing_stops_the_live_policy(viewer, session):
    player, ctl = viewer
    ctl.start()
    ctl.tick(session.control_dt)
    assert ctl.running
    player._user_took_over(SimpleNamespace(client=object()))  # what a slider move from the page does
    assert not ctl.running and ctl.tick(session.control_dt) == []
    player._user_took_over(SimpleNamespace(client=None))  # our own timeline updates do not


def test_model_cli_export_and_bad_input(tiny_checkpoint, tmp_path):
    """`mimic view --model` without a server: --export writes mimic eval's first episode; bad input is one
    line and exit 2 (before any server starts)."""
    from typer.testing import CliRunner

    from mimictools.cli.app import app

    runner = CliRunner()
    out = tmp_path / "policy.html"
    res = runner.invoke(app, ["view", "--model", str(tiny_checkpoint), "--export", str(out)])
    assert res.exit_code == 0, res.output
    assert "0: demo_squat from 0.00 s" in res.output and out.is_file()
    res = runner.invoke(app, ["view", "--model", str(tiny_checkpoint), "--motion", str(tmp_path / "no.pkl")])
    assert res.exit_code == 2 and "no.pkl" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["view", "--model", str(tmp_path / "none.pt")])
    assert res.exit_code == 2 and "none.pt" in res.output

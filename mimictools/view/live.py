"""A policy driving the simulated character live in the viewer process, its reference beside it as a ghost.

`LiveSession` is the checkpoint's policy and its run's env with one env (``app.evaluate.open_policy_env``: the
same env, deterministic policy and checks as ``mimic eval``), stepped one control step at a time by
``eval.rollout.EpisodeStepper`` (the step loop of ``mimic eval``'s episodes, not a second one). Each step gives a
`LiveFrame`: body poses of the simulated character and of the reference (MuJoCo's kinematics, as every other
track) and the tracking error of that frame (``eval.metrics.compute_frame_errors``). A finished episode becomes a
`Track` (the same as ``mimic view --model --episodes``' and an ``errors.npz`` replay's), for the clip list.

`LiveController` puts it in the `server.Player`: a "policy" panel (reference clip, start time, run, repeat) and a
``tick`` the player's loop calls in real time. GUI callbacks only post requests; the env is stepped only from
the player's loop thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import numpy as np

from mimictools.errors import MimicToolsError
from mimictools.view.tracks import Track, ViewCharacter

__all__ = ["LiveController", "LiveFrame", "LiveSession", "open_live_session"]

_MAX_STEPS_PER_TICK = 8
"""A slow machine drops real time rather than falling ever further behind."""


@dataclass(frozen=True, eq=False)
class LiveFrame:
    """The state after one live control step."""

    time_s: float
    """Episode time (s)."""
    motion_time_s: float
    """Clip time of the reference (s)."""
    body_pos: np.ndarray
    """Simulated character, MuJoCo body order (m), Shape (nbody, 3)."""
    body_quat: np.ndarray
    """Shape (nbody, 4), wxyz."""
    ghost_pos: np.ndarray
    """The reference, shifted by the ghost offset, Shape (nbody, 3)."""
    ghost_quat: np.ndarray
    body_pos_err_m: np.ndarray
    """World body position error per Character body (m), Shape (num_bodies,)."""
    episode: Optional[Track]
    """The finished episode as a Track when this step ended it, else None."""


class LiveSession:
    """One env and the policy, stepped on demand (see module docstring). ``close`` when done."""

    def __init__(self, policy_env: Any, vc: ViewCharacter, ghost_offset_m: Tuple[float, float, float]):
        self.pe = policy_env
        self.env = policy_env.env
        self.vc = vc
        self.char = self.env.character
        self.ghost_offset_m = np.asarray(ghost_offset_m, dtype=np.float64)
        self.control_dt = float(self.env.control_dt)
        self.clip_lengths_s: List[float] = list(policy_env.clip_lengths_s)
        from mimictools.eval.rollout import clip_names

        self.clip_names = clip_names(self.env) or [f"clip{i}" for i in range(len(self.clip_lengths_s))]
        self._stepper: Any = None
        self.episodes = 0

    def start(self, motion_id: int, start_time_s: float) -> None:
        """Begin an episode on clip ``motion_id`` from clip time ``start_time_s`` (reference state init)."""
        from mimictools.eval.rollout import EpisodeSpec, EpisodeStepper

        if not 0 <= motion_id < len(self.clip_lengths_s):
            raise MimicToolsError(
                f"clip {motion_id} out of range: the run has {len(self.clip_lengths_s)} clips"
            )
        length = self.clip_lengths_s[motion_id]
        if not 0.0 <= start_time_s <= length:
            raise MimicToolsError(
                f"start time {start_time_s:g} s is outside clip {self.clip_names[motion_id]} (0-{length:g} s)"
            )
        if self._stepper is not None:
            self._stepper.close()
        self._stepper = EpisodeStepper(
            self.env, self.pe.policy, [EpisodeSpec(motion_id, float(start_time_s))]
        )
        self._stepper.start()

    def step(self) -> LiveFrame:
        """One control step of the policy; raises `MimicToolsError` if no episode was started."""
        import torch

        from mimictools.eval.metrics import compute_frame_errors

        if self._stepper is None or self._stepper.finished:
            raise MimicToolsError("no live episode running: start() one")
        with torch.no_grad():
            ended = self._stepper.step()
        sim, ref = self._stepper.last_frame(0)
        err = compute_frame_errors(self.char, sim.track_state(), ref.track_state())
        pos, quat = self.vc.body_poses(sim.qpos(self.char))
        gpos, gquat = self.vc.body_poses(ref.qpos(self.char))
        track = self._episode_track(ended[0]) if ended else None
        time_s, motion_time_s = self._stepper.last_time_s(0)
        return LiveFrame(
            time_s=time_s,
            motion_time_s=motion_time_s,
            body_pos=pos[0],
            body_quat=quat[0],
            ghost_pos=gpos[0] + self.ghost_offset_m,
            ghost_quat=gquat[0],
            body_pos_err_m=err.body_pos_err_m[0],
            episode=track,
        )

    def _episode_track(self, ep: Any) -> Track:
        from mimictools.eval.metrics import compute_frame_errors
        from mimictools.view.sources import episode_track

        self.episodes += 1
        err = compute_frame_errors(self.char, ep.sim.track_state(), ep.ref.track_state())
        name = f"live {self.episodes}: {ep.clip} from {ep.spec.start_time_s:.2f} s ({ep.end})"
        info = [f"{self.pe.checkpoint}: live episode {self.episodes} on {ep.clip}, ended {ep.end}"]
        return episode_track(
            self.vc,
            name,
            self.control_dt,
            ep.sim.qpos(self.char),
            ep.ref.qpos(self.char),
            err.body_pos_err_m,
            tuple(self.ghost_offset_m),
            info,
        )

    def reference_tracks(self) -> List[Track]:
        """The run's clips (what the policy tracks) as Tracks, to look at between live episodes."""
        from mimictools.view.tracks import clip_track

        return [
            clip_track(self.vc, m, name=f"reference: {n}")
            for m, n in zip(self.env.motion_lib.motions, self.clip_names)
        ]

    def caption(self, frame: LiveFrame) -> str:
        """The panel's line for a live frame: time and tracking error (mean over bodies, and the worst)."""
        worst = int(np.argmax(frame.body_pos_err_m))
        return (
            f"live: t = {frame.time_s:.2f} s (clip {frame.motion_time_s:.2f} s)  \n"
            f"body position error {100.0 * frame.body_pos_err_m.mean():.1f} cm "
            f"(worst: {self.char.body_names[worst]} {100.0 * frame.body_pos_err_m[worst]:.1f} cm)"
        )

    def close(self) -> None:
        if self._stepper is not None:
            self._stepper.close()
            self._stepper = None
        self.env.close()


def open_live_session(
    checkpoint: Any,
    motion: Optional[str] = None,
    ghost_offset_m: Tuple[float, float, float] = (0.0, 1.0, 0.0),
    episode_length_s: Optional[float] = None,
    fps: Optional[float] = None,
) -> LiveSession:
    """The checkpoint's policy on one env of its run (``motion``: another clip/dataset of the same character),
    on the CPU MuJoCo engine with one thread, whatever engine the run trained on (the viewer steps one character
    in real time, on any machine: a GPU-trained run plays on a laptop). ``fps``: ``--fps`` of a robot .csv
    ``motion`` (default: the rate the run recorded)."""
    from pathlib import Path

    from mimictools.app.evaluate import EvalOptions, open_policy_env
    from mimictools.view.tracks import load_view_character

    pe = open_policy_env(
        checkpoint,
        EvalOptions(
            motion=motion,
            episode_length_s=episode_length_s,
            device="cpu",
            engine="mujoco",
            num_threads=1,
            fps=fps,
        ),
        num_envs=1,
    )
    try:
        vc = load_view_character(Path(pe.spec.char_file))
    except BaseException:
        pe.env.close()
        raise
    return LiveSession(pe, vc, ghost_offset_m)


class LiveController:
    """The live policy inside a `server.Player` (see module docstring)."""

    def __init__(self, player: Any, session: LiveSession):
        self.player = player
        self.session = session
        self.running = False
        self._lock = threading.Lock()
        self._request: Optional[Tuple[int, float]] = None
        self._stop = False
        self._behind_s = 0.0
        self.last: Optional[LiveFrame] = None
        self.gui = {}
        g = player.server.gui
        with g.add_folder("policy (live)"):
            self.gui["clip"] = g.add_dropdown(
                "reference clip", tuple(session.clip_names), initial_value=session.clip_names[0]
            )
            self.gui["start"] = g.add_slider(
                "start (s)", 0.0, max(session.clip_lengths_s[0], 0.01), 0.01, 0.0
            )
            self.gui["run"] = g.add_button("run policy")
            self.gui["repeat"] = g.add_checkbox("repeat", True)
            self.gui["status"] = g.add_markdown("")
        self.gui["clip"].on_update(lambda _: self._clip_changed())
        self.gui["run"].on_click(lambda _: self.start())
        player.live = self

    def _clip_index(self) -> int:
        return self.session.clip_names.index(self.gui["clip"].value)

    def _clip_changed(self) -> None:
        length = self.session.clip_lengths_s[self._clip_index()]
        self.gui["start"].max = max(length, 0.01)
        self.gui["start"].value = min(float(self.gui["start"].value), length)

    def start(self) -> None:
        """Ask for a new episode with the panel's clip and start time (taken up by the next ``tick``)."""
        with self._lock:
            self._request = (self._clip_index(), float(self.gui["start"].value))
            self._stop = False
            self.running = True

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            self.running = False

    def tick(self, elapsed_s: float) -> List[LiveFrame]:
        """Advance the live episode by ``elapsed_s`` of (scaled) real time: the control steps due, at most
        `_MAX_STEPS_PER_TICK`; draws the last one. Returns the frames stepped. Called from the player's loop."""
        with self._lock:
            request, self._request = self._request, None
            if self._stop:
                self._stop, request = False, None
                return []
        if request is not None:
            self.session.start(*request)
            self._behind_s = 0.0
        self._behind_s += elapsed_s
        frames: List[LiveFrame] = []
        while self._behind_s >= self.session.control_dt and len(frames) < _MAX_STEPS_PER_TICK:
            self._behind_s -= self.session.control_dt
            frame = self.session.step()
            frames.append(frame)
            if frame.episode is not None:
                self._finished(frame)
                break
        self._behind_s = min(self._behind_s, self.session.control_dt)
        if frames:
            f = frames[-1]
            self.last = f
            self.player.draw_live(f.body_pos, f.body_quat, f.ghost_pos, f.ghost_quat, self.session.caption(f))
        return frames

    def _finished(self, frame: LiveFrame) -> None:
        track = frame.episode
        if track is None:
            return
        self.player.add_track(track)
        self.gui[
            "status"
        ].content = f"last episode: {track.name.split(': ', 1)[1]}; replay it from the clip list"
        if self.gui["repeat"].value:
            self.start()
        else:
            with self._lock:
                self.running = False
            self.player.select(len(self.player.tracks) - 1)  # its replay, on the timeline

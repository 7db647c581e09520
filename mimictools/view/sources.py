"""Turn what a user points ``mimic view`` at into `Track`s: clips, folders and datasets; a policy checkpoint
(run through ``mimic eval``'s own episodes); an ``errors.npz`` that ``mimic eval`` recorded; a retargeting
source next to its result."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from mimictools.errors import MimicToolsError
from mimictools.view.tracks import Skeleton, Track, ViewCharacter, clip_track

__all__ = ["clip_tracks", "compare_track", "episode_track", "eval_replay_tracks", "policy_tracks"]


def clip_tracks(vc: ViewCharacter, paths: Sequence[Path], fps: Optional[float] = None) -> List[Track]:
    """One Track per clip of ``paths`` (clips, folders, dataset yaml), in order. ``fps``: ``--fps``, the frame
    rate of robot .csv clips (`mimictools.motion.io.resolve_clip_fps`)."""
    from mimictools.motion.io import expand_motion_paths, load_motion, resolve_clips_fps

    tracks = []
    for p, p_fps in zip(paths, resolve_clips_fps(paths, fps)):
        for clip, _weight in expand_motion_paths(p):
            tracks.append(clip_track(vc, load_motion(clip, char=vc.char, warn=False, fps=p_fps)))
    return tracks


def episode_track(
    vc: ViewCharacter,
    name: str,
    dt_s: float,
    sim_qpos: np.ndarray,
    ref_qpos: np.ndarray,
    body_err_m: np.ndarray,
    ghost_offset_m: Tuple[float, float, float],
    info: List[str],
) -> Track:
    """A policy episode: the simulated character, the reference as a ghost shifted by ``ghost_offset_m``,
    and the mean body position error per frame as the caption. qpos: Character layout, Shape (T, num_qpos);
    body_err_m: Shape (T, num_bodies)."""
    pos, quat = vc.body_poses(sim_qpos)
    gpos, gquat = vc.body_poses(ref_qpos)
    gpos = gpos + np.asarray(ghost_offset_m, dtype=np.float64)
    mean_cm = 100.0 * body_err_m.mean(axis=1)
    worst = [vc.char.body_names[i] for i in body_err_m.argmax(axis=1)]
    captions = [f"body position error {c:.1f} cm (worst: {w})" for c, w in zip(mean_cm, worst)]
    info = info + [f"mean body position error over the episode {mean_cm.mean():.1f} cm"]
    return Track(name, dt_s, pos, quat, ghost_pos=gpos, ghost_quat=gquat, captions=captions, info=info)


def policy_tracks(
    checkpoint: Path,
    motion: Optional[Path] = None,
    episodes: Optional[int] = None,
    rand_start: bool = False,
    seed: int = 0,
    ghost_offset_m: Tuple[float, float, float] = (0.0, 1.0, 0.0),
    fps: Optional[float] = None,
) -> Tuple[ViewCharacter, List[Track]]:
    """Run the checkpoint's deterministic evaluation episodes (``app.evaluate``: the same env, policy and
    episode plan as ``mimic eval``) and return one Track per episode on the run's character."""
    from mimictools.app.evaluate import EvalOptions, evaluate
    from mimictools.view.tracks import load_view_character

    result = evaluate(
        checkpoint,
        EvalOptions(
            motion=str(motion) if motion else None,
            episodes=episodes,
            rand_start=rand_start,
            seed=seed,
            fps=fps,
        ),
    )
    vc = load_view_character(Path(result.spec.char_file))
    tracks = []
    for i, (e, err) in enumerate(zip(result.episodes, result.errors)):
        name = f"{i}: {e.clip} from {e.spec.start_time_s:.2f} s ({e.end})"
        info = [
            f"{result.checkpoint}: episode {i} on {e.clip}, start {e.spec.start_time_s:.2f} s, ended {e.end}"
        ]
        tracks.append(
            episode_track(
                vc,
                name,
                result.control_dt,
                e.sim.qpos(result.char),
                e.ref.qpos(result.char),
                err.body_pos_err_m,
                ghost_offset_m,
                info,
            )
        )
    return vc, tracks


def eval_replay_tracks(
    npz: Path, char_path: Optional[Path], ghost_offset_m: Tuple[float, float, float] = (0.0, 1.0, 0.0)
) -> Tuple[ViewCharacter, List[Track]]:
    """The episodes ``mimic eval`` wrote to ``errors.npz`` (``app.evaluate.write_errors``). The character
    is ``char_path``, else the ``char_file`` of the ``metrics.json`` next to the npz."""
    import json

    from mimictools.view.tracks import load_view_character

    if char_path is None:
        meta = npz.parent / "metrics.json"
        if not meta.is_file():
            raise MimicToolsError(f"{npz}: no metrics.json next to it to name the character; pass --char")
        char_path = Path(json.loads(meta.read_text())["char_file"])
    try:
        data = np.load(npz, allow_pickle=False)
        arrays = {
            k: data[k] for k in ("episode", "clip_index", "clips", "sim_qpos", "ref_qpos", "body_pos_err_m")
        }
        dt = float(data["control_dt_s"])
    except (OSError, KeyError, ValueError) as exc:
        raise MimicToolsError(f"{npz}: not an errors.npz written by mimic eval ({exc})") from None
    vc = load_view_character(char_path)
    if arrays["sim_qpos"].shape[1] != vc.char.num_qpos:
        raise MimicToolsError(
            f"{npz}: qpos has {arrays['sim_qpos'].shape[1]} entries, {char_path} has {vc.char.num_qpos}; pass --char"
        )
    tracks = []
    for ep in np.unique(arrays["episode"]):
        sel = arrays["episode"] == ep
        clip = str(arrays["clips"][int(arrays["clip_index"][sel][0])])
        tracks.append(
            episode_track(
                vc,
                f"{int(ep)}: {clip}",
                dt,
                arrays["sim_qpos"][sel],
                arrays["ref_qpos"][sel],
                arrays["body_pos_err_m"][sel],
                ghost_offset_m,
                [f"{npz}: episode {int(ep)} on {clip}, {int(sel.sum())} frames"],
            )
        )
    return vc, tracks


def compare_track(vc: ViewCharacter, source: Path, result: Path, offset_m: float = 1.0) -> Track:
    """A retargeting result on its character with the source (BVH skeleton, or any clip the retargeter reads)
    as a stick figure ``offset_m`` to its side (+y), on the result's timeline (source frames resampled by time)."""
    from mimictools.motion.io import load_motion
    from mimictools.motion.retarget.source import load_source

    src: Any = load_source(str(source))
    track = clip_track(vc, load_motion(result, char=vc.char, warn=False))
    n = track.num_frames
    idx = np.clip(np.round(np.arange(n) * track.dt_s * float(src.fps)).astype(int), 0, src.pos.shape[0] - 1)
    pos = src.pos[idx] + np.array([0.0, offset_m, 0.0])
    info = track.info + [
        f"source {Path(source).name} ({src.kind}): {src.pos.shape[0]} frames at {src.fps:g} fps, drawn {offset_m:g} m to the side"
    ]
    return Track(
        track.name, track.dt_s, track.body_pos, track.body_quat,
        skeleton=Skeleton(pos, tuple(src.parents)), faults=track.faults, info=info,
    )  # fmt: skip

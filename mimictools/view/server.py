"""The browser player (viser): draws a `ViewCharacter`, plays `Track`s, marks faults, exports HTML.

``Player`` owns the scene: the ground, one scene node per MuJoCo body with its geoms as children (so a frame
update moves bodies, not vertices), an optional translucent ghost (the reference a policy tracks), an optional
stick-figure skeleton (a retargeting source) and the root path. The GUI has a clip list, play/pause, a frame
slider whose marks are the fault frames, speed, loop, and a text panel (track info, per-frame caption, the
faults at the current frame). Bodies with a fault at the current frame turn red.

``export_html`` records the same scene frame by frame into viser's self-contained HTML player.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mimictools.errors import MimicToolsError
from mimictools.view.faults import FAULT_KINDS
from mimictools.view.tracks import Track, ViewCharacter

__all__ = ["FAULT_RGB", "GHOST_OPACITY", "Player", "ViewOptions", "export_html", "import_viser", "serve"]

FAULT_RGB = (230, 20, 20)
"""Colour of a body with a fault at the current frame."""
GHOST_OPACITY = 0.35
"""Opacity of the reference ghost."""
_GHOST_RGB = (80, 160, 255)
_SKELETON_RGB = (255, 170, 0)
_PATH_RGB = (40, 120, 40)


@dataclass(frozen=True)
class ViewOptions:
    """How the viewer is served."""

    host: str = "127.0.0.1"
    """Interface to bind; 127.0.0.1 keeps it local (use an ssh port-forward from a laptop)."""
    port: int = 8080
    """TCP port."""
    speed: float = 1.0
    """Initial playback speed (1 = real time)."""
    loop: bool = True
    """Start over at the end of a track."""
    autoplay: bool = True
    """Start playing at once."""


def import_viser() -> Any:
    """The viser module, or a `MimicToolsError` naming the extra that provides it."""
    try:
        import viser
    except ImportError:
        raise MimicToolsError(
            'mimic view needs the optional package viser: pip install "mimictools[view]" (or pip install viser)'
        ) from None
    return viser


def _rgb(rgba: Sequence[float]) -> Tuple[int, int, int]:
    return (int(255 * rgba[0]), int(255 * rgba[1]), int(255 * rgba[2]))


class _Figure:
    """One drawn character: a frame node per MuJoCo body, its geoms as child meshes."""

    def __init__(self, scene: Any, vc: ViewCharacter, root: str, opacity: Optional[float] = None):
        self.bodies = [scene.add_frame(f"{root}/b{b}", show_axes=False) for b in range(vc.model.nbody)]
        self.meshes: Dict[int, List[Tuple[Any, Tuple[int, int, int]]]] = {}
        for i, g in enumerate(vc.meshes):
            color = _GHOST_RGB if opacity is not None else _rgb(g.rgba)
            h = scene.add_mesh_simple(
                f"{root}/b{g.body}/g{i}",
                g.vertices,
                g.faces,
                color=color,
                opacity=opacity,
                position=g.pos,
                wxyz=g.quat,
                flat_shading=False,
            )
            self.meshes.setdefault(g.body, []).append((h, color))
        self.bad = np.zeros(vc.model.nbody, dtype=bool)

    def pose(self, pos: np.ndarray, quat: np.ndarray) -> None:
        for b, node in enumerate(self.bodies):
            node.position = pos[b]
            node.wxyz = quat[b]

    def mark(self, bad: np.ndarray) -> None:
        for b in np.nonzero(bad != self.bad)[0]:
            for h, color in self.meshes.get(int(b), []):
                h.color = FAULT_RGB if bad[b] else color
        self.bad = bad.copy()


class Player:
    """Scene + playback state for a list of tracks on one character (see module docstring)."""

    def __init__(
        self, server: Any, vc: ViewCharacter, tracks: Sequence[Track], gui: bool = True, ghost: bool = False
    ):
        if not tracks:
            raise MimicToolsError("nothing to view: no clips")
        self.server = server
        self.vc = vc
        self.tracks = list(tracks)
        self.names = _unique([t.name for t in self.tracks])
        """The clip list's entries (track names; a repeated name gets " (2)", ...)."""
        self.track = self.tracks[0]
        self.frame = 0
        self._lock = threading.Lock()
        scene = server.scene
        scene.set_up_direction("+z")
        scene.add_grid(
            "/ground", width=20.0, height=20.0, plane="xy", cell_size=0.5, plane_color=(235, 235, 225),
            plane_opacity=1.0, section_size=1.0, position=(0.0, 0.0, -0.001),
        )  # fmt: skip
        self.figure = _Figure(scene, vc, "/char")
        self.ghost = (
            _Figure(scene, vc, "/ghost", opacity=GHOST_OPACITY)
            if ghost or any(t.ghost_pos is not None for t in self.tracks)
            else None
        )
        self._skeleton: Any = None
        self._path: Any = None
        self.live: Any = None
        """A `view.live.LiveController` while the policy drives the character (the timeline then waits)."""
        self.gui: Dict[str, Any] = {}
        if gui:
            self._build_gui()
        self.select(0)

    # ---- GUI -----------------------------------------------------------------------------------------------
    def _build_gui(self) -> None:
        g = self.server.gui
        gui = self.gui
        if len(self.tracks) > 1 or self.ghost is not None:  # a policy adds its episodes to the list
            gui["clip"] = g.add_dropdown("clip", tuple(self.names), initial_value=self.names[0])
            gui["clip"].on_update(lambda ev: self._clip_chosen(ev))
        gui["play"] = g.add_checkbox("play", True)
        self._frame_slider(self.track)
        gui["speed"] = g.add_slider("speed", 0.1, 4.0, 0.1, 1.0)
        gui["loop"] = g.add_checkbox("loop", True)
        gui["next_fault"] = g.add_button("next fault")
        gui["next_fault"].on_click(lambda _: self._next_fault())
        gui["now"] = g.add_markdown("")
        gui["info"] = g.add_markdown("")

    def _user_took_over(self, event: Any) -> None:
        """A person moved the timeline or picked a clip: the live policy (if running) stops."""
        if getattr(event, "client", None) is not None and self.live is not None:
            self.live.stop()

    def _clip_chosen(self, event: Any = None) -> None:
        self._user_took_over(event)
        index = self.names.index(self.gui["clip"].value)
        if self.tracks[index] is not self.track:
            self.select(index)

    def _frame_slider(self, track: Track) -> None:
        """(Re)make the frame slider for ``track``: its range, and its fault marks (viser draws a slider's
        marks only as created, so a new track gets a new slider in the old one's place)."""
        g = self.server.gui
        old = self.gui.get("frame")
        order = None
        if old is not None:
            order = old.order
            old.remove()
        slider = g.add_slider(
            "frame", 0, max(track.num_frames - 1, 1), 1, 0, marks=self._marks(track), order=order
        )

        def moved(event: Any) -> None:
            self._user_took_over(event)
            self.show(int(slider.value))

        slider.on_update(moved)
        self.gui["frame"] = slider

    def _next_fault(self) -> None:
        marks = self.track.faults
        if marks is None:
            return
        bad = np.nonzero(marks.bodies.any(axis=(0, 2)))[0]
        later = bad[bad > self.frame]
        if bad.size:
            self.gui["play"].value = False
            self.gui["frame"].value = int(later[0] if later.size else bad[0])

    # ---- state ---------------------------------------------------------------------------------------------
    def select(self, index: int) -> None:
        """Switch to track ``index``: timeline range and marks, root path, skeleton, info text."""
        track = self.tracks[index]
        self.track = track
        scene = self.server.scene
        root = track.body_pos[:, self.vc.body_ids[0]]
        seg = np.stack([root[:-1], root[1:]], axis=1) if root.shape[0] > 1 else np.zeros((0, 2, 3))
        seg = seg.copy()
        seg[..., 2] = 0.002
        self._path = scene.add_line_segments("/root_path", seg, _PATH_RGB, thickness=0.01)
        if self._skeleton is not None:
            self._skeleton.remove()
            self._skeleton = None
        if self.ghost is not None:
            for node in self.ghost.bodies:
                node.visible = track.ghost_pos is not None
        if "clip" in self.gui and self.gui["clip"].value != self.names[index]:
            self.gui["clip"].value = self.names[index]
        if "frame" in self.gui:
            self._frame_slider(track)
            self.gui["info"].content = "  \n".join(_md(s) for s in track.info)
        self.show(0)

    def add_track(self, track: Track) -> None:
        """Append ``track`` to the clip list (e.g. a finished live episode, for replay)."""
        self.tracks.append(track)
        self.names = _unique([t.name for t in self.tracks])
        if "clip" in self.gui:
            self.gui["clip"].options = tuple(self.names)

    def draw_live(
        self, pos: np.ndarray, quat: np.ndarray, ghost_pos: np.ndarray, ghost_quat: np.ndarray, text: str
    ) -> None:
        """Draw a pose that is not on a track (the policy's live step): the character, its reference ghost
        (MuJoCo body order, Shapes (nbody, 3) and (nbody, 4), wxyz) and ``text`` in the panel."""
        with self._lock, self.server.atomic():
            self.figure.pose(pos, quat)
            self.figure.mark(np.zeros(self.vc.model.nbody, bool))
            if self.ghost is not None:
                for node in self.ghost.bodies:
                    node.visible = True
                self.ghost.pose(ghost_pos, ghost_quat)
            if "now" in self.gui:
                self.gui["now"].content = _md(text)

    @staticmethod
    def _marks(track: Track) -> Optional[Tuple[Tuple[int, str], ...]]:
        if track.faults is None:
            return None
        marks: List[Tuple[int, str]] = []
        short = {"nan": "NaN", "joint_limit": "limit", "below_floor": "floor"}
        for kind in FAULT_KINDS:
            fr = track.faults.frames(kind)
            if fr.size:  # the first frame of each run of faulty frames
                starts = fr[np.concatenate([[True], np.diff(fr) > 1])]
                marks += [(int(f), short[kind]) for f in starts[:8]]
        return tuple(sorted(marks)) or None

    def show(self, frame: int) -> None:
        """Draw frame ``frame`` of the current track."""
        track = self.track
        t = int(np.clip(frame, 0, track.num_frames - 1))
        with self._lock, self.server.atomic():
            self.frame = t
            self.figure.pose(track.body_pos[t], track.body_quat[t])
            if self.ghost is not None and track.ghost_pos is not None and track.ghost_quat is not None:
                self.ghost.pose(track.ghost_pos[t], track.ghost_quat[t])
            bad = (
                track.faults.bad_bodies(t)
                if track.faults is not None
                else np.zeros(self.vc.model.nbody, bool)
            )
            self.figure.mark(bad)
            if track.skeleton is not None:
                sk = track.skeleton
                p = sk.pos[min(t, sk.pos.shape[0] - 1)]
                pairs = [(j, pa) for j, pa in enumerate(sk.parents) if pa >= 0]
                pts = np.array([[p[pa], p[j]] for j, pa in pairs]).reshape(-1, 2, 3)
                self._skeleton = self.server.scene.add_line_segments(
                    "/skeleton", pts, _SKELETON_RGB, thickness=0.025
                )
            if "now" in self.gui:
                self.gui["now"].content = _md(self._now_text(t))

    def _now_text(self, t: int) -> str:
        track = self.track
        lines = [f"frame {t} / {track.num_frames - 1} · t = {t * track.dt_s:.3f} s"]
        if track.captions is not None and t < len(track.captions):
            lines.append(track.captions[t])
        if track.faults is not None:
            names = self._body_names(track.faults.bad_bodies(t))
            for k, kind in enumerate(FAULT_KINDS):
                hit = track.faults.bodies[k, t]
                if hit.any():
                    lines.append(f"**{kind}** at this frame: {', '.join(self._body_names(hit))}")
            if not names:
                lines.append("no fault at this frame")
        return "  \n".join(lines)

    def _body_names(self, mask: np.ndarray) -> List[str]:
        import mujoco

        return [
            mujoco.mj_id2name(self.vc.model, mujoco.mjtObj.mjOBJ_BODY, int(b)) or f"body{b}"
            for b in np.nonzero(mask)[0]
        ]

    def run_forever(self, options: ViewOptions) -> None:
        """Advance the timeline in real time (times ``speed``) while ``play`` is on, or the live policy while it
        runs; returns on Ctrl-C."""
        gui = self.gui
        pos = float(self.frame)
        last = time.perf_counter()
        while True:
            time.sleep(1.0 / 60.0)
            now = time.perf_counter()
            elapsed, last = now - last, now
            if self.live is not None and self.live.running:
                self.live.tick(elapsed * float(gui["speed"].value))
                pos = float(self.frame)
                continue
            if not gui["play"].value:
                pos = float(self.frame)
                continue
            pos += elapsed * float(gui["speed"].value) / self.track.dt_s
            n = self.track.num_frames
            if pos > n - 1:
                if gui["loop"].value:
                    pos = pos % max(n - 1, 1)
                else:
                    pos = float(n - 1)
                    gui["play"].value = False
            if int(pos) != self.frame:
                gui["frame"].value = int(pos)


def _unique(names: List[str]) -> List[str]:
    seen: Dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


def _md(text: str) -> str:
    return text.replace("_", "\\_").replace("\\_\\_", "__") if "**" not in text else text


def _camera(server: Any, tracks: Sequence[Track], vc: ViewCharacter, ghost: bool = False) -> None:
    """Look at the first track's first root position from the side (-y); with a ``ghost`` (a policy's
    reference, 1 m to +y by default) from further round, so that the two stand side by side."""
    root = tracks[0].body_pos[0, vc.body_ids[0]]
    look = np.array([root[0], root[1], max(float(root[2]) * 0.8, 0.5)])
    away = np.array([0.4, -3.2, 0.6])
    if ghost or tracks[0].ghost_pos is not None:
        look[1] += 0.5
        away = np.array([2.0, -2.8, 0.6])
    server.initial_camera.look_at = look
    server.initial_camera.position = look + away


def serve(
    vc: ViewCharacter,
    tracks: Sequence[Track],
    options: ViewOptions = ViewOptions(),
    on_ready: Any = None,
    live: Any = None,
) -> None:
    """Serve the player at ``options.host:port`` until interrupted; ``on_ready(url)`` is called once it listens.
    ``live``: a `view.live.LiveSession` whose policy drives the character (its controls join the panel)."""
    viser = import_viser()
    try:
        server = viser.ViserServer(host=options.host, port=options.port, verbose=False)
    except OSError as exc:
        raise MimicToolsError(
            f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}"
        ) from None
    _camera(server, tracks, vc, ghost=live is not None)
    player = Player(server, vc, tracks, ghost=live is not None)
    if live is not None:
        from mimictools.view.live import LiveController

        LiveController(player, live).start()
    player.gui["speed"].value = float(options.speed)
    player.gui["loop"].value = bool(options.loop)
    player.gui["play"].value = bool(options.autoplay)
    if on_ready is not None:
        on_ready(f"http://{options.host}:{server.get_port()}")
    try:
        player.run_forever(options)
    finally:
        if live is not None:
            live.close()
        server.stop()


def export_html(vc: ViewCharacter, track: Track, out: Path) -> Path:
    """Write ``track`` as one self-contained HTML file (viser's recording player: it animates in any browser,
    no server). Returns ``out``."""
    from mimictools.io_util import atomic_write_text

    viser = import_viser()
    server = viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    try:
        _camera(server, [track], vc)
        player = Player(server, vc, [track], gui=False)
        rec = server.get_scene_serializer()
        for t in range(track.num_frames):
            player.show(t)
            rec.insert_sleep(track.dt_s)
        html = rec.as_html()
    finally:
        server.stop()
    atomic_write_text(Path(out), html)
    return Path(out)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

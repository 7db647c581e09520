"""Headless Chromium driving a live viser page, for the browser test of `mimic view`. Every wait is bounded.

Why not ``chromium --screenshot --virtual-time-budget=N`` (what the test did before): virtual time makes Chromium
render every animation frame of the budget (6 s = ~360 WebGL frames) in SwiftShader before the shot, minutes on a
loaded 2-core machine (a 600 s timeout in CI), and it does not wait for viser's websocket messages, so a scene with
large meshes (the G1) could be shot before they arrived (an empty scene in CI). Here the page runs in real time and
the images come from viser's own ``ClientHandle.get_render``: the browser renders the canvas after it has applied
every scene message queued before the request (viser processes its message queue in order and gives React one frame
to commit first). A scene update broadcast just before the request can still overtake it (viser says so), so the
checks render again until the expected change shows, up to a deadline. DOM text and full-page screenshots (the GUI
panel) go through the DevTools protocol (``--remote-debugging-port``), with ``websockets`` (a viser dependency).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

START_TIMEOUT_S = 120.0
"""Chromium up and the viser page connected (a cold start on a loaded 2-core machine takes ~10-40 s)."""
RENDER_TIMEOUT_S = 120.0
"""One ``get_render`` round trip (one SwiftShader frame; seconds when the machine is loaded)."""
CHANGE_DEADLINE_S = 180.0
"""Rendering again until an expected change shows."""


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page (a tab) driven through the DevTools protocol."""

    def __init__(self, width: int, height: int):
        if CHROMIUM is None:
            raise BrowserError("no chromium binary")
        self.width, self.height = width, height
        self._profile = tempfile.mkdtemp(prefix="mimic-chromium-")
        cmd = [
            CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader", "--hide-scrollbars", "--mute-audio", "--no-first-run",
            "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
            f"--window-size={width},{height}", f"--user-data-dir={self._profile}",
            "--remote-debugging-port=0", "about:blank",
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._stderr: list = []
        port: Dict[str, int] = {}
        found = threading.Event()

        def read() -> None:  # drain stderr (a full pipe would block Chromium) and find the DevTools port
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self._stderr.append(line)
                m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
                if m:
                    port["p"] = int(m.group(1))
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(START_TIMEOUT_S) or "p" not in port:
            self.close()
            raise BrowserError(
                f"chromium did not start within {START_TIMEOUT_S:.0f} s: {''.join(self._stderr)[-2000:]}"
            )
        with urllib.request.urlopen(f"http://127.0.0.1:{port['p']}/json/list", timeout=30) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        from websockets.sync.client import connect

        self._ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self._id = 0

    def call(self, method: str, timeout_s: float = 60.0, **params: Any) -> Dict[str, Any]:
        """One DevTools command; its result (events in between are skipped)."""
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        end = time.monotonic() + timeout_s
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise BrowserError(f"DevTools {method}: no answer within {timeout_s:.0f} s")
            msg = json.loads(self._ws.recv(timeout=left))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise BrowserError(f"DevTools {method}: {msg['error']}")
                return msg.get("result", {})

    def open(self, url: str, server: Any) -> Any:
        """Load ``url`` (a viser server's page) and return the viser ``ClientHandle`` once the page connected."""
        self.call("Page.navigate", url=url)
        end = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < end:
            clients = server.get_clients()
            if clients:
                return next(iter(clients.values()))
            time.sleep(0.2)
        raise BrowserError(f"the viser page {url} did not connect within {START_TIMEOUT_S:.0f} s")

    def text(self) -> str:
        """The page's visible text (``document.body.innerText``)."""
        r = self.call("Runtime.evaluate", expression="document.body.innerText", returnByValue=True)
        return str(r.get("result", {}).get("value", ""))

    def wait_text(self, needle: str, deadline_s: float = CHANGE_DEADLINE_S) -> str:
        """Poll the page text until it contains ``needle`` (returns the text) or the deadline passes (returns the last)."""
        end = time.monotonic() + deadline_s
        text = self.text()
        while needle not in text and time.monotonic() < end:
            time.sleep(0.5)
            text = self.text()
        return text

    def screenshot(self, out: Path) -> None:
        """The whole page (3D view and GUI panel) as a PNG."""
        import base64

        r = self.call("Page.captureScreenshot", timeout_s=RENDER_TIMEOUT_S, format="png")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(r["data"]))

    def close(self) -> None:
        try:
            if hasattr(self, "_ws"):
                self._ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
            shutil.rmtree(self._profile, ignore_errors=True)


def server_camera(server: Any) -> Dict[str, Any]:
    """The server's initial camera (position, look-at, up, fov) as ``get_render``'s camera arguments. Every
    render of a test uses it: the page's own camera may still be moving (it eases into its initial pose, and a
    resize of the page re-fits it), which would move the ground grid between two renders."""
    from scipy.spatial.transform import Rotation

    cam = server.initial_camera
    pos = np.asarray(cam.position, dtype=np.float64)
    fwd = np.asarray(cam.look_at, dtype=np.float64) - pos
    fwd /= np.linalg.norm(fwd)
    up = (
        np.array([0.0, 0.0, 1.0]) if cam.up is None else np.asarray(cam.up, dtype=np.float64)
    )  # None: the scene's (+z)
    right = np.cross(fwd, up)
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    # viser's camera frame is OpenCV's: +x right, +y down, +z forward
    x, y, z, w = Rotation.from_matrix(np.stack([right, down, fwd], axis=1)).as_quat()
    return {"wxyz": (w, x, y, z), "position": tuple(pos), "fov": float(cam.fov)}


def render(client: Any, width: int, height: int, camera: Dict[str, Any]) -> np.ndarray:
    """The canvas as the browser draws it from ``camera`` (`server_camera`), after the scene messages queued
    before this call: int32 RGB (height, width, 3) on a white background (as the page shows it). PNG transport
    (lossless: unchanged pixels compare equal; RGBA with a transparent background)."""
    img = np.asarray(
        client.get_render(height, width, transport_format="png", timeout=RENDER_TIMEOUT_S, **camera)
    )
    rgb, alpha = img[..., :3].astype(np.float64), img[..., 3:4].astype(np.float64) / 255.0
    return np.round(rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.int32)


def render_until(
    client: Any,
    width: int,
    height: int,
    camera: Dict[str, Any],
    done: Callable[[np.ndarray], bool],
    deadline_s: float = CHANGE_DEADLINE_S,
) -> np.ndarray:
    """Render until ``done(image)`` or the deadline passes; returns the last image (the caller asserts on it)."""
    end = time.monotonic() + deadline_s
    img = render(client, width, height, camera)
    while not done(img) and time.monotonic() < end:
        img = render(client, width, height, camera)
    return img


def changed_pixels(a: np.ndarray, b: np.ndarray, threshold: int = 40) -> np.ndarray:
    """bool (H, W): pixels whose summed |RGB difference| exceeds ``threshold``."""
    return np.abs(a - b).sum(-1) > threshold


def save_png(img: np.ndarray, out: Path) -> None:
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img.astype(np.uint8)).save(out)


def shot_dir(repo_dir: Path, tmp_path: Path) -> Path:
    """docs/img with MIMIC_SAVE_SCREENSHOTS=1 (to refresh the README's pictures), else the test's tmp folder."""
    return repo_dir / "docs" / "img" if os.environ.get("MIMIC_SAVE_SCREENSHOTS") == "1" else tmp_path

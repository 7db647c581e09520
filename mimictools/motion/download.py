"""Fetch the public DeepMimic ``humanoid3d`` clips and convert them to MimicKit ``.pkl``.

Source: xbpeng/DeepMimic (MIT), ``data/motions/humanoid3d_<clip>.txt``. Only ``urllib`` is used; the base
URL is configurable (a mirror, or a local ``http.server`` in tests). Files are written atomically.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

from mimictools.errors import MimicToolsError

DEFAULT_DEEPMIMIC_BASE_URL = "https://raw.githubusercontent.com/xbpeng/DeepMimic/master/data/motions/"

DEEPMIMIC_CLIPS = (
    "backflip",
    "cartwheel",
    "crawl",
    "dance_a",
    "dance_b",
    "dance_spin",
    "getup_facedown",
    "getup_faceup",
    "jog",
    "jump",
    "kick",
    "punch",
    "roll",
    "run",
    "sideflip",
    "spin",
    "spinkick",
    "stealthy_walk",
    "walk",
    "zombie_walk",
)
"""The 20 humanoid3d clips in xbpeng/DeepMimic ``data/motions/``."""

_CLIP_NAME = re.compile(r"^[a-z0-9_]+$")
_CHUNK = 64 * 1024
MAX_BYTES = 64 * 1024 * 1024
"""Refuse responses larger than this (the largest DeepMimic clip is ~210 KB)."""

ProgressFn = Callable[[str, int, Optional[int]], None]
"""progress(clip, bytes_done, bytes_total or None)."""


class DownloadError(MimicToolsError):
    """A download failed (HTTP error, unreachable host, timeout); the message names the URL."""


@dataclass
class DownloadResult:
    """What happened to one clip."""

    clip: str
    url: str
    pkl_path: Optional[Path] = None
    txt_path: Optional[Path] = None
    num_frames: int = 0
    fps: float = 0.0
    loop_name: str = ""
    warnings: List[str] = field(default_factory=list)
    error: Optional[str] = None


def parse_clip_list(text: Optional[str]) -> Tuple[str, ...]:
    """``'spinkick, run'`` -> ``('spinkick', 'run')``; None/empty -> all clips. Names are checked
    (lower-case letters, digits, '_'; a ``humanoid3d_`` prefix or ``.txt`` suffix is dropped)."""
    if not text:
        return DEEPMIMIC_CLIPS
    names = []
    for raw in text.split(","):
        name = raw.strip()
        if name.startswith("humanoid3d_"):
            name = name[len("humanoid3d_") :]
        if name.endswith(".txt"):
            name = name[: -len(".txt")]
        if not name:
            continue
        if not _CLIP_NAME.match(name):
            raise DownloadError(
                f"--clips: {raw.strip()!r} is not a clip name; known: {', '.join(DEEPMIMIC_CLIPS)}"
            )
        names.append(name)
    if not names:
        raise DownloadError(f"--clips is empty; known clips: {', '.join(DEEPMIMIC_CLIPS)}")
    return tuple(names)


def clip_url(base_url: str, clip: str) -> str:
    """``<base_url>/humanoid3d_<clip>.txt``."""
    return base_url.rstrip("/") + "/" + f"humanoid3d_{clip}.txt"


def fetch_bytes(
    url: str, progress: Optional[Callable[[int, Optional[int]], None]] = None, timeout_s: float = 30.0
) -> bytes:
    """GET ``url``; ``DownloadError`` naming the URL on HTTP errors, refused connections and timeouts."""
    req = urllib.request.Request(url, headers={"User-Agent": "mimictools"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            chunks = []
            done = 0
            if progress is not None:
                progress(0, total)
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
                done += len(chunk)
                if done > MAX_BYTES:
                    raise DownloadError(f"{url}: response larger than {MAX_BYTES} bytes; not a motion clip")
                if progress is not None:
                    progress(done, total)
            return b"".join(chunks)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            raise DownloadError(f"connection refused: {url}") from None
        if isinstance(reason, socket.timeout):
            raise DownloadError(f"timed out after {timeout_s:g} s: {url}") from None
        raise DownloadError(f"cannot reach {url} ({reason})") from None
    except socket.timeout:
        raise DownloadError(f"timed out after {timeout_s:g} s: {url}") from None
    except ConnectionError as exc:
        raise DownloadError(f"connection failed for {url} ({exc})") from None
    except ValueError as exc:  # malformed URL
        raise DownloadError(f"bad URL {url!r} ({exc})") from None


def download_deepmimic(
    to_dir: Union[str, Path],
    base_url: str = DEFAULT_DEEPMIMIC_BASE_URL,
    clips: Optional[Sequence[str]] = None,
    keep_txt: bool = True,
    progress: Optional[ProgressFn] = None,
    timeout_s: float = 30.0,
) -> List[DownloadResult]:
    """Fetch each clip, convert it (``deepmimic_txt``) and write ``<to_dir>/humanoid_<clip>.pkl`` (and, with
    ``keep_txt``, the source ``humanoid3d_<clip>.txt``). A failing clip gets ``error`` set; the others go on."""
    from mimictools.errors import MotionFormatError
    from mimictools.io_util import atomic_open
    from mimictools.motion.formats.deepmimic_txt import deepmimic_doc_to_motion
    from mimictools.motion.formats.mimickit_pkl import write_mimickit_pkl

    out_dir = Path(to_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"{out_dir}: cannot create folder ({exc.strerror or exc})") from None
    results = []
    for clip in clips if clips is not None else DEEPMIMIC_CLIPS:
        url = clip_url(base_url, clip)
        res = DownloadResult(clip=clip, url=url)
        results.append(res)
        cb = None
        if progress is not None:
            cb = (lambda c: lambda done, total: progress(c, done, total))(clip)
        try:
            data = fetch_bytes(url, cb, timeout_s=timeout_s)
            try:
                doc = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise MotionFormatError(f"{url}: not a DeepMimic motion (not JSON: {exc})") from None
            motion = deepmimic_doc_to_motion(doc, url, warn=False)
            txt_path = out_dir / f"humanoid3d_{clip}.txt"
            pkl_path = out_dir / f"humanoid_{clip}.pkl"
            if keep_txt:
                with atomic_open(txt_path, "wb") as f:
                    f.write(data)
                res.txt_path = txt_path
            write_mimickit_pkl(motion.replace(source=str(pkl_path)), pkl_path)
        except MimicToolsError as exc:
            res.error = str(exc)
            continue
        except OSError as exc:
            res.error = f"cannot write into {out_dir} ({exc.strerror or exc})"
            continue
        res.pkl_path = pkl_path
        res.num_frames = motion.num_frames
        res.fps = motion.fps
        res.loop_name = motion.loop_name
        res.warnings = [n.message for n in motion.notes if n.kind != "quat_sign_flip"]
    return results

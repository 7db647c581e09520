"""Fetch robot models (MJCF + meshes) from MuJoCo Menagerie, or a mirror of its layout.

``download_asset('unitree_g1', to_dir)`` GETs ``<base_url>/unitree_g1/<file>`` for the model's MJCF files
and license, then every ``<mesh file=...>`` those MJCFs name (under their ``<compiler meshdir>``), and
writes them under ``<to_dir>/unitree_g1/`` with the same layout, atomically, so the MJCF loads as it is.
The default base URL is Menagerie's raw GitHub tree at the commit the shared test data came from; a mirror
or a local ``http.server`` (tests) works the same. Only ``urllib`` and ``xml.etree`` are used; file names
taken from a downloaded MJCF must be plain relative paths (no ``..``, no absolute paths).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Dict, List, Optional, Tuple, Union

from mimictools.errors import MimicToolsError

__all__ = ["ASSETS", "DEFAULT_ASSET_BASE_URL", "AssetSpec", "DownloadedAsset", "download_asset"]

DEFAULT_ASSET_BASE_URL = "https://raw.githubusercontent.com/google-deepmind/mujoco_menagerie/1f2300db40caa341786bffdad5ee02966c5f8d0a/"
"""MuJoCo Menagerie at commit 1f2300db (2025-09-14), the version in the shared robot data."""


@dataclass(frozen=True)
class AssetSpec:
    """One downloadable robot: its folder under the base URL, the MJCF files and extra files to fetch."""

    folder: str
    mjcf_files: Tuple[str, ...]
    """MJCFs to fetch; their meshes are fetched too. The first is the one to pass to ``--char``."""
    extra_files: Tuple[str, ...] = ()
    license: str = ""


ASSETS: Dict[str, AssetSpec] = {
    "unitree_g1": AssetSpec(
        folder="unitree_g1",
        mjcf_files=("g1.xml", "scene.xml", "g1_mjx.xml", "scene_mjx.xml"),
        extra_files=("LICENSE", "README.md"),
        license="BSD-3-Clause (Unitree Robotics)",
    ),
}


@dataclass
class DownloadedAsset:
    name: str
    folder: Path
    files: List[Path] = field(default_factory=list)
    bytes: int = 0

    @property
    def main_mjcf(self) -> Path:
        return self.folder / ASSETS[self.name].mjcf_files[0]


def _safe_rel(name: str, where: str) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if not name or p.is_absolute() or ".." in p.parts:
        raise MimicToolsError(f"{where}: refusing file name {name!r} (must be a relative path without '..')")
    return p


def _mesh_files(xml: bytes, where: str) -> List[PurePosixPath]:
    """Files an MJCF's ``<mesh>``/``<texture>``/``<hfield>`` elements name, with ``meshdir``/``texturedir``."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise MimicToolsError(f"{where}: not valid XML ({exc})") from None
    meshdir, texdir = PurePosixPath("."), PurePosixPath(".")
    for c in root.iter("compiler"):
        assetdir = c.get("assetdir")
        if assetdir:
            meshdir = texdir = _safe_rel(assetdir, where)
        if c.get("meshdir"):
            meshdir = _safe_rel(c.get("meshdir", ""), where)
        if c.get("texturedir"):
            texdir = _safe_rel(c.get("texturedir", ""), where)
    out = []
    for tag, base in (("mesh", meshdir), ("hfield", meshdir), ("texture", texdir)):
        for e in root.iter(tag):
            if e.get("file"):
                out.append(base / _safe_rel(e.get("file", ""), where))
    return out


def download_asset(
    name: str,
    to_dir: Union[str, Path],
    base_url: str = DEFAULT_ASSET_BASE_URL,
    progress: Optional[Callable[[str], None]] = None,
    timeout_s: float = 60.0,
) -> DownloadedAsset:
    """Fetch robot ``name`` (see ``ASSETS``) into ``<to_dir>/<folder>/``; DownloadError names a failing URL."""
    from mimictools.io_util import atomic_open
    from mimictools.motion.download import fetch_bytes

    if name not in ASSETS:
        raise MimicToolsError(f"unknown asset {name!r}; available: {', '.join(sorted(ASSETS))}")
    spec = ASSETS[name]
    folder = Path(to_dir) / spec.folder
    url_base = base_url.rstrip("/") + "/" + spec.folder + "/"
    result = DownloadedAsset(name=name, folder=folder)
    todo: List[PurePosixPath] = [PurePosixPath(f) for f in spec.mjcf_files + spec.extra_files]
    done = set()
    while todo:
        rel = todo.pop(0)
        if rel in done:
            continue
        done.add(rel)
        if progress is not None:
            progress(str(rel))
        data = fetch_bytes(url_base + rel.as_posix(), timeout_s=timeout_s)
        if rel.suffix.lower() == ".xml":
            todo.extend(_mesh_files(data, url_base + rel.as_posix()))
        dest = folder.joinpath(*rel.parts)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(dest, "wb") as f:
                f.write(data)
        except OSError as exc:
            raise MimicToolsError(f"{dest}: cannot write ({exc.strerror or exc})") from None
        result.files.append(dest)
        result.bytes += len(data)
    return result

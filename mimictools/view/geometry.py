"""Triangle meshes of a character's geoms, read from MuJoCo's compiled model (no viser here).

Every geom MuJoCo would draw by default (groups 0-2, alpha > 0; the plane and height fields excepted) becomes
one `GeomMesh`: vertices in the geom's own frame, faces, colour, and the geom's pose in its body's frame.
Meshes come from ``model.mesh_vert``/``mesh_face`` (so the G1's STL parts look like a G1); primitives
(sphere, capsule, ellipsoid, cylinder, box) are tessellated here from ``model.geom_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

__all__ = ["GeomMesh", "character_meshes", "primitive_mesh"]

# mjtGeom values (stable in MuJoCo's C API): plane 0, hfield 1, sphere 2, capsule 3, ellipsoid 4, cylinder 5,
# box 6, mesh 7.
_SPHERE, _CAPSULE, _ELLIPSOID, _CYLINDER, _BOX, _MESH = 2, 3, 4, 5, 6, 7
_VISIBLE_GROUPS = (0, 1, 2)
"""Geom groups MuJoCo's own viewer shows by default; robot MJCFs put collision copies in group 3."""


@dataclass(frozen=True, eq=False)
class GeomMesh:
    """One drawable geom."""

    name: str
    body: int
    """MuJoCo body id it is attached to."""
    pos: np.ndarray
    """Geom origin in the body frame (m), Shape (3,)."""
    quat: np.ndarray
    """Geom orientation in the body frame, wxyz, Shape (4,)."""
    vertices: np.ndarray
    """float32, geom frame (m), Shape (V, 3)."""
    faces: np.ndarray
    """uint32, Shape (F, 3)."""
    rgba: Tuple[float, float, float, float]


def _sphere_grid(n_lat: int = 10, n_lon: int = 16) -> Tuple[np.ndarray, np.ndarray]:
    """Unit sphere as a lat-long grid: vertices (V, 3), faces (F, 3); poles are rows of coincident points."""
    theta = np.linspace(0.0, np.pi, n_lat + 1)
    phi = np.linspace(0.0, 2.0 * np.pi, n_lon, endpoint=False)
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    v = np.stack([st * np.cos(phi), st * np.sin(phi), np.broadcast_to(ct, (n_lat + 1, n_lon))], axis=-1)
    return v.reshape(-1, 3), _grid_faces(n_lat + 1, n_lon)


def _grid_faces(rows: int, cols: int) -> np.ndarray:
    """Faces of a (rows, cols) vertex grid wrapped in the column direction (outward for our winding)."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols), indexing="ij")
    a = r * cols + c
    b = r * cols + (c + 1) % cols
    d = (r + 1) * cols + c
    e = (r + 1) * cols + (c + 1) % cols
    return np.concatenate([np.stack([a, d, b], -1).reshape(-1, 3), np.stack([b, d, e], -1).reshape(-1, 3)])


def primitive_mesh(geom_type: int, size: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and faces (F, 3) of a MuJoCo primitive with MuJoCo's ``size`` semantics, geom frame:
    sphere (r), capsule (r, half-length along z), ellipsoid (rx, ry, rz), cylinder (r, half-length), box
    (half-sizes). Raises ValueError for other types."""
    size = np.asarray(size, dtype=np.float64)
    if geom_type in (_SPHERE, _ELLIPSOID):
        v, f = _sphere_grid()
        scale = np.full(3, size[0]) if geom_type == _SPHERE else size[:3]
        return v * scale, f
    if geom_type == _CAPSULE:
        v, f = _sphere_grid(n_lat=10)  # even n_lat: the equator row is duplicated into the two caps
        v = v * size[0]
        v[:, 2] += np.where(v[:, 2] >= -1e-12, size[1], -size[1])
        return v, f
    if geom_type == _CYLINDER:
        n = 24
        phi = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
        ring = np.stack([np.cos(phi), np.sin(phi)], -1) * size[0]
        top = np.concatenate([ring, np.full((n, 1), size[1])], 1)
        bot = np.concatenate([ring, np.full((n, 1), -size[1])], 1)
        v = np.concatenate([top, bot, [[0.0, 0.0, size[1]], [0.0, 0.0, -size[1]]]])
        i = np.arange(n)
        j = (i + 1) % n
        side = np.concatenate([np.stack([i, n + i, j], -1), np.stack([j, n + i, n + j], -1)])
        caps = np.concatenate(
            [np.stack([np.full(n, 2 * n), i, j], -1), np.stack([np.full(n, 2 * n + 1), n + j, n + i], -1)]
        )
        return v, np.concatenate([side, caps])
    if geom_type == _BOX:
        corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
        faces = np.array(
            [
                [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3],
            ]
        )  # fmt: skip
        return corners * size[:3], faces
    raise ValueError(f"no primitive mesh for MuJoCo geom type {geom_type}")


def character_meshes(model) -> List[GeomMesh]:
    """The drawable geoms of a compiled ``mujoco.MjModel``, in geom order (see module docstring)."""
    import mujoco

    out: List[GeomMesh] = []
    for g in range(model.ngeom):
        gtype = int(model.geom_type[g])
        rgba = np.array(model.geom_rgba[g], dtype=np.float64)
        matid = int(model.geom_matid[g])
        if matid >= 0:
            rgba = np.array(model.mat_rgba[matid], dtype=np.float64)
        if int(model.geom_group[g]) not in _VISIBLE_GROUPS or rgba[3] <= 0.0:
            continue
        if gtype == _MESH:
            m = int(model.geom_dataid[g])
            va, vn = int(model.mesh_vertadr[m]), int(model.mesh_vertnum[m])
            fa, fn = int(model.mesh_faceadr[m]), int(model.mesh_facenum[m])
            verts = np.array(model.mesh_vert[va : va + vn], dtype=np.float32)
            faces = np.array(model.mesh_face[fa : fa + fn], dtype=np.uint32)
        elif gtype in (_SPHERE, _CAPSULE, _ELLIPSOID, _CYLINDER, _BOX):
            v, f = primitive_mesh(gtype, model.geom_size[g])
            verts, faces = v.astype(np.float32), f.astype(np.uint32)
        else:  # plane, height field, SDF: not part of a character
            continue
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or f"geom{g}"
        out.append(
            GeomMesh(
                name=name,
                body=int(model.geom_bodyid[g]),
                pos=np.array(model.geom_pos[g], dtype=np.float64),
                quat=np.array(model.geom_quat[g], dtype=np.float64),
                vertices=verts,
                faces=faces,
                rgba=(float(rgba[0]), float(rgba[1]), float(rgba[2]), float(rgba[3])),
            )
        )
    return out

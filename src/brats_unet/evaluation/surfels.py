"""Surface-element ("surfel") areas of the 256 binary 2x2x2 neighbourhoods.

The surface Dice and surface-distance metrics weight each boundary voxel by the area of the
marching-cubes surface passing through its 2x2x2 neighbourhood, exactly as DeepMind's
``surface-distance`` library does (``lookup_tables.create_table_neighbour_code_to_surface_area``).
That library is not a runtime dependency: its PyPI release (0.1) fails on numpy 2 (``np.Inf``)
and is not maintained, so the areas are derived here from the cube's geometry instead of being
copied from its hand-written table. ``tests/evaluation/test_surfels.py`` checks all 256 codes
against the reference whenever a virtual environment holding it is available.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import cache, lru_cache

import numpy as np

__all__ = ["corner_bit", "neighbour_code_areas"]

_CORNERS: tuple[tuple[int, int, int], ...] = tuple(itertools.product((0, 1), repeat=3))
_Edge = tuple[tuple[int, int, int], tuple[int, int, int]]


def corner_bit(corner: tuple[int, int, int]) -> int:
    """Weight of corner ``(i, j, k)`` in the neighbourhood code (the kernel K[i, j, k])."""
    i, j, k = corner
    return 128 >> (4 * i + 2 * j + k)


def _face_cycles() -> list[list[tuple[int, int, int]]]:
    """The six faces of the unit cube, each as its four corners in cyclic order."""
    faces = []
    for axis, value in itertools.product(range(3), (0, 1)):
        u, v = (a for a in range(3) if a != axis)
        faces.append([])
        for p, q in ((0, 0), (1, 0), (1, 1), (0, 1)):
            corner = [0, 0, 0]
            corner[axis], corner[u], corner[v] = value, p, q
            faces[-1].append(tuple(corner))
    return faces


def _polygons(minority: frozenset[tuple[int, int, int]]) -> list[list[_Edge]]:
    """Closed polygons (as cyclic lists of cut edges) separating ``minority`` from the rest.

    On every face each maximal run of consecutive minority corners is cut off by one segment
    joining the two cut edges at the ends of the run, so diagonal minority corners on a face are
    kept apart (no disambiguation of the ambiguous faces beyond that).
    """
    neighbours: dict[_Edge, list[_Edge]] = {}
    for face in _face_cycles():
        inside = [c in minority for c in face]
        if all(inside) or not any(inside):
            continue
        start = inside.index(False)  # walk the face from an outside corner
        order = face[start:] + face[:start]
        cuts = [tuple(sorted((order[t], order[(t + 1) % 4]))) for t in range(4)]
        flags = [c in minority for c in order] + [False]
        run_start = None
        for t in range(1, 5):
            if flags[t] and not flags[t - 1]:
                run_start = cuts[t - 1]  # the edge entering the run
            elif not flags[t] and flags[t - 1]:
                a, b = run_start, cuts[t - 1]  # ... and the edge leaving it
                neighbours.setdefault(a, []).append(b)
                neighbours.setdefault(b, []).append(a)
    polygons, seen = [], set()
    for edge in neighbours:
        if edge in seen:
            continue
        cycle = [edge]
        seen.add(edge)
        while nxt := [e for e in neighbours[cycle[-1]] if e not in seen]:
            cycle.append(nxt[0])
            seen.add(nxt[0])
        polygons.append(cycle)
    return polygons


@cache
def _triangulations(n: int) -> tuple[tuple[tuple[int, int, int], ...], ...]:
    """All triangulations of a polygon with vertices 0..n-1 (the triangle on edge 0-(n-1))."""

    def split(i: int, j: int) -> list[tuple[tuple[int, int, int], ...]]:
        if j - i < 2:
            return [()]
        return [a + b + ((i, k, j),)
                for k in range(i + 1, j) for a in split(i, k) for b in split(k, j)]

    return tuple(split(0, n - 1))


def _triangle_vectors(points: np.ndarray) -> np.ndarray:
    """Area vectors of the largest-area triangulation of the (possibly skew) polygon ``points``."""
    best, best_area = None, -1.0
    for triangles in _triangulations(len(points)):
        idx = np.array(triangles)
        p, q, r = points[idx[:, 0]], points[idx[:, 1]], points[idx[:, 2]]
        vectors = 0.5 * np.cross(q - p, r - p)
        area = float(np.linalg.norm(vectors, axis=1).sum())
        if area > best_area + 1e-12:
            best, best_area = vectors, area
    assert best is not None
    return best


@lru_cache(maxsize=1)
def _unit_surfels() -> tuple[np.ndarray, np.ndarray]:
    """(code of each triangle, its area vector for 1 mm voxels), over all 256 codes.

    A code's surface separates its minority corners (the inside ones when at most four are
    inside, otherwise the outside ones, so a code and its complement share their surface). Each
    edge-connected group of minority corners gives one polygon through the midpoints of the cube
    edges leaving it (iso-level 0.5). Triangles, pentagons and planar quadrilaterals/hexagons are
    triangulated in any way; the skew pentagons (three corners on a face) and hexagons (four
    corners in a chain) take the triangulation of largest area, as DeepMind's table does.
    """
    codes, vectors = [], []
    for code in range(256):
        inside = frozenset(c for c in _CORNERS if code & corner_bit(c))
        minority = inside if len(inside) <= 4 else frozenset(_CORNERS) - inside
        for polygon in _polygons(minority):
            points = np.array([np.add(a, b) / 2.0 for a, b in polygon])
            tri = _triangle_vectors(points)
            codes.extend([code] * len(tri))
            vectors.append(tri)
    return np.array(codes, dtype=np.intp), np.concatenate(vectors)


def neighbour_code_areas(spacing_mm: Sequence[float]) -> np.ndarray:
    """Surfel area (mm^2) for each of the 256 neighbourhood codes at voxel spacing ``spacing_mm``.

    The code of a 2x2x2 block ``b`` is ``sum(b * K)`` with
    ``K = [[[128, 64], [32, 16]], [[8, 4], [2, 1]]]``; a triangle's area vector ``n`` at 1 mm
    becomes ``(n0 s1 s2, n1 s0 s2, n2 s0 s1)`` at spacing ``(s0, s1, s2)``.
    """
    s0, s1, s2 = (float(s) for s in spacing_mm)
    codes, vectors = _unit_surfels()
    scaled = vectors * np.array([s1 * s2, s0 * s2, s0 * s1])
    return np.bincount(codes, weights=np.linalg.norm(scaled, axis=1), minlength=256)

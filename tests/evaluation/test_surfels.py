"""Surfel areas of the 2x2x2 neighbourhood codes: known answers, symmetry, and DeepMind's table."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from brats_unet.evaluation.surfels import corner_bit, neighbour_code_areas

REPO = Path(__file__).resolve().parents[2]
REFERENCE_PYTHON = REPO / ".venv-official/bin/python"
SPACINGS = ((1.0, 1.0, 1.0), (1.0, 1.0, 2.5), (0.5, 0.8, 3.0), (2.0, 1.0, 1.0), (0.3, 1.7, 0.9))


def code_of(*corners: tuple[int, int, int]) -> int:
    return sum(corner_bit(c) for c in corners)


def test_code_matches_the_kernel():
    kernel = np.array([[[128, 64], [32, 16]], [[8, 4], [2, 1]]])
    for corner in itertools.product((0, 1), repeat=3):
        assert corner_bit(corner) == kernel[corner]


def test_shape_and_empty_and_full_codes():
    areas = neighbour_code_areas((1.0, 1.0, 1.0))
    assert areas.shape == (256,) and areas.dtype == np.float64
    assert areas[0] == 0.0 and areas[255] == 0.0
    assert np.all(areas[1:255] > 0)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_single_corner_is_the_triangle_of_three_edge_midpoints(spacing):
    s0, s1, s2 = spacing
    expected = 0.5 * math.hypot(s1 * s2 / 4, s0 * s2 / 4, s0 * s1 / 4)  # sqrt(3)/8 at 1 mm
    areas = neighbour_code_areas(spacing)
    for corner in itertools.product((0, 1), repeat=3):
        assert areas[code_of(corner)] == pytest.approx(expected, rel=1e-12)
    assert neighbour_code_areas((1, 1, 1))[1] == pytest.approx(math.sqrt(3) / 8, rel=1e-12)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_two_adjacent_corners_give_a_rectangle(spacing):
    s0, s1, s2 = spacing
    areas = neighbour_code_areas(spacing)
    # along axis 2: length s2, width the diagonal between the axis-0 and axis-1 midpoints
    assert areas[code_of((0, 0, 0), (0, 0, 1))] == pytest.approx(s2 * math.hypot(s0, s1) / 2)
    assert areas[code_of((1, 0, 1), (1, 1, 1))] == pytest.approx(s1 * math.hypot(s0, s2) / 2)
    assert areas[code_of((0, 1, 0), (1, 1, 0))] == pytest.approx(s0 * math.hypot(s1, s2) / 2)
    assert neighbour_code_areas((1, 1, 1))[3] == pytest.approx(math.sqrt(0.5), rel=1e-12)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_four_corners_on_a_face_give_the_face_parallel_square(spacing):
    s0, s1, s2 = spacing
    areas = neighbour_code_areas(spacing)
    cube = list(itertools.product((0, 1), repeat=3))
    for value in (0, 1):
        assert areas[code_of(*[c for c in cube if c[0] == value])] == pytest.approx(s1 * s2)
        assert areas[code_of(*[c for c in cube if c[1] == value])] == pytest.approx(s0 * s2)
        assert areas[code_of(*[c for c in cube if c[2] == value])] == pytest.approx(s0 * s1)


def test_planar_hexagon_and_skew_pentagon_at_1mm():
    areas = neighbour_code_areas((1.0, 1.0, 1.0))
    # a corner and its three neighbours: regular hexagon of side sqrt(1/2)
    assert areas[code_of((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1))] == pytest.approx(
        3 * math.sqrt(3) / 4, rel=1e-12)
    # three corners on a face: the largest triangulation of the skew pentagon
    assert areas[7] == pytest.approx(0.5 + 3 * math.sqrt(3) / 8, rel=1e-12)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_a_code_and_its_complement_have_the_same_surface(spacing):
    areas = neighbour_code_areas(spacing)
    np.testing.assert_allclose(areas, areas[::-1], rtol=1e-12, atol=0)


def test_axis_permutations_and_mirrors_permute_the_spacing():
    spacing = np.array([0.5, 0.8, 3.0])
    areas = neighbour_code_areas(spacing)
    weights = np.array([[[128, 64], [32, 16]], [[8, 4], [2, 1]]])
    for perm in itertools.permutations(range(3)):
        moved = neighbour_code_areas(spacing[list(perm)])
        for flip in itertools.product((False, True), repeat=3):
            for code in range(256):
                block = (code & weights) > 0
                block = np.flip(block, [a for a in range(3) if flip[a]])
                new = int((np.transpose(block, perm) * weights).sum())
                assert moved[new] == pytest.approx(areas[code], rel=1e-12)


_DUMP = """
import importlib.util, json, os, sys
spec = importlib.util.find_spec("surface_distance")
if spec is None:
    sys.exit(3)
path = os.path.join(spec.submodule_search_locations[0], "lookup_tables.py")
module_spec = importlib.util.spec_from_file_location("lookup_tables", path)
tables = importlib.util.module_from_spec(module_spec)
module_spec.loader.exec_module(tables)
spacings = json.loads(sys.argv[1])
print(json.dumps([list(map(float, tables.create_table_neighbour_code_to_surface_area(s)))
                  for s in spacings]))
"""


def test_matches_deepmind_surface_distance_table():
    python = REFERENCE_PYTHON
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{python} is missing: bin/setup with the test extra makes it")
        pytest.skip(f"no reference venv with DeepMind's surface-distance at {python}")
    done = subprocess.run([str(python), "-c", _DUMP, json.dumps(SPACINGS)], check=False,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 3, f"{python} has no surface_distance module"
    assert done.returncode == 0, done.stderr
    for spacing, reference in zip(SPACINGS, json.loads(done.stdout), strict=True):
        np.testing.assert_allclose(neighbour_code_areas(spacing), reference, rtol=0, atol=1e-12,
                                   err_msg=f"spacing {spacing}")

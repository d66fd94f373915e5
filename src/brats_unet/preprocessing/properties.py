"""``properties.json``, a preprocessed case's record: what puts a prediction back into the input's
space (original geometry, crop box, storage axes) and what was learnt from its voxels.

Written by :func:`write_case_properties` and read only through :func:`read_case_properties`,
so a missing or unknown key is an error naming the file, not a ``KeyError`` in prediction.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brats_unet.io import Geometry, read_record, write_json

PROPERTIES_FILE = "properties.json"


@dataclass(frozen=True)
class CaseProperties:
    """One preprocessed case: where its crop sits in the input and what its voxels held."""

    subject: str
    geometry: Geometry  # the input's shape, affine and pixdim (mm)
    crop_start: tuple[int, ...]  # file axes (i, j, k), inclusive
    crop_stop: tuple[int, ...]  # exclusive
    storage_axes: str  # the order of image.npy's spatial axes ("kji")
    channels: tuple[str, ...]  # image.npy's channels, in order
    brain_voxels: int
    intensity: dict[str, dict[str, float]]  # contrast -> brain_mean, brain_std
    has_label: bool
    region_voxels: dict[str, int] | None  # region -> voxels, and outside_brain; None unlabelled

    @property
    def cropped_shape_ijk(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self.crop_start, self.crop_stop))

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "geometry": self.geometry.to_json(),
            "crop_start": list(self.crop_start),
            "crop_stop": list(self.crop_stop),
            "storage_axes": self.storage_axes,
            "channels": list(self.channels),
            "cropped_shape_ijk": list(self.cropped_shape_ijk),
            "brain_voxels": self.brain_voxels,
            "intensity": self.intensity,
            "has_label": self.has_label,
            "region_voxels": self.region_voxels,
        }


#: The keys of properties.json: the fields, and the crop's shape written for people to read.
KEYS = (*(f.name for f in dataclasses.fields(CaseProperties)), "cropped_shape_ijk")


def write_case_properties(properties: CaseProperties, case_dir: str | os.PathLike) -> None:
    """Write ``properties.json`` into the case folder ``case_dir``."""
    write_json(properties.to_json(), Path(case_dir) / PROPERTIES_FILE)


def read_case_properties(case_dir: str | os.PathLike) -> CaseProperties:
    """The properties of the preprocessed case in ``case_dir``; a ValueError naming the file
    and the keys if it holds no such record."""
    path = Path(case_dir) / PROPERTIES_FILE
    record = read_record(path, KEYS, "a case's properties")
    properties = CaseProperties(
        subject=record["subject"],
        geometry=Geometry.from_json(record["geometry"]),
        crop_start=tuple(int(a) for a in record["crop_start"]),
        crop_stop=tuple(int(b) for b in record["crop_stop"]),
        storage_axes=record["storage_axes"],
        channels=tuple(record["channels"]),
        brain_voxels=int(record["brain_voxels"]),
        intensity=record["intensity"],
        has_label=bool(record["has_label"]),
        region_voxels=record["region_voxels"],
    )
    if list(properties.cropped_shape_ijk) != list(record["cropped_shape_ijk"]):
        raise ValueError(f"{path}: cropped_shape_ijk {record['cropped_shape_ijk']} is not "
                         f"crop_stop - crop_start {list(properties.cropped_shape_ijk)}")
    return properties

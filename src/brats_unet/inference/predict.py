"""Whole-case prediction: labels from probabilities, back into the input's geometry, files.

The probabilities come from :mod:`brats_unet.models.windows` (sliding windows in 3D, slice
by slice in 2D, mirroring), as in validation during training. Labels written to files are
put back into the input's ``(i, j, k)`` voxel grid with exactly the input's affine and pixdim.

Only numpy and Keras' public API are used, so prediction runs on the
TensorFlow and PyTorch back ends alike.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np

from brats_unet.io import save_nifti
from brats_unet.labels import ENHANCING, NECROSIS, from_canonical, regions_to_labels
from brats_unet.models.windows import predict_case
from brats_unet.preprocessing.cases import restore_to_input_space
from brats_unet.preprocessing.properties import CaseProperties


def probabilities_to_labels(probabilities: np.ndarray, threshold: float | Sequence[float] = 0.5,
                            min_et_voxels: int = 0) -> np.ndarray:
    """Canonical (BraTS 2020) labels from WT, TC, ET probabilities.

    Args:
        probabilities: ``(..., 3)`` in WT, TC, ET order, any spatial axes.
        threshold: a region is present where its probability is above this
            (one value, or one per region).
        min_et_voxels: if the predicted ET has fewer voxels than this (but
            some), they become label 1 (necrosis / non-enhancing core): a
            BraTS-challenge trick, since a case without ET scores Dice 1 only
            when nothing is predicted, and a few scattered ET voxels are more
            often false positives. 0 disables.

    Returns:
        uint8 labels of shape ``probabilities.shape[:-1]``: 4 where ET, 1 where
        TC but not ET, 2 where WT but not TC (ET implies TC implies WT, as in
        :func:`brats_unet.labels.regions_to_labels`), 0 elsewhere.
    """
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=np.float32), (3,))
    labels = regions_to_labels(np.asarray(probabilities) > thresholds)
    if min_et_voxels > 0:
        enhancing = labels == ENHANCING
        if np.count_nonzero(enhancing) < min_et_voxels:
            labels[enhancing] = NECROSIS
    return labels


def segment_case(model: keras.Model, image: np.ndarray, properties: CaseProperties, *,
                 spatial_dims: int, patch_size: Sequence[int] | None = None,
                 overlap: float = 0.5, batch_size: int | None = None, mirror: bool = False,
                 threshold: float | Sequence[float] = 0.5,
                 min_et_voxels: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Segment one preprocessed case and put the labels back into the input's space.

    Args:
        model, spatial_dims, patch_size, overlap, batch_size, mirror: as in
            :func:`predict_case`.
        image: float32 ``(k, j, i, channel)`` over the brain crop (``open_case``).
        properties: the case's record (crop box, geometry).
        threshold, min_et_voxels: as in :func:`probabilities_to_labels`.

    Returns:
        ``(labels, probabilities)``: uint8 canonical labels in the input's full
        shape and axes ``(i, j, k)``, 0 outside the brain (the input is
        skull-stripped: no tumour lies where every contrast is 0); and float32
        probabilities ``(k, j, i, 3)`` over the crop (storage axes).
    """
    probabilities = predict_case(model, image, spatial_dims=spatial_dims, patch_size=patch_size,
                                 overlap=overlap, batch_size=batch_size, mirror=mirror)
    return labels_in_input_space(probabilities, image, properties, threshold=threshold,
                                 min_et_voxels=min_et_voxels), probabilities


def labels_in_input_space(probabilities: np.ndarray, image: np.ndarray,
                          properties: CaseProperties, *,
                          threshold: float | Sequence[float] = 0.5,
                          min_et_voxels: int = 0) -> np.ndarray:
    """Labels from probabilities over the crop ``(k, j, i, 3)`` (one model's, or an ensemble's
    mean), put back into the input's ``(i, j, k)`` grid; 0 outside the brain, as in
    :func:`segment_case`."""
    labels = probabilities_to_labels(probabilities, threshold, min_et_voxels)
    labels[~np.any(np.asarray(image) != 0, axis=-1)] = 0
    return restore_to_input_space(labels, properties)


def write_segmentation(labels_ijk: np.ndarray, properties: CaseProperties,
                       path: str | os.PathLike, label_convention: str = "brats2020") -> None:
    """Write canonical labels ``(i, j, k)`` as a uint8 NIfTI in the input's exact geometry.

    Args:
        labels_ijk: uint8 canonical labels in the input's shape (from :func:`segment_case`).
        properties: the case's record (its ``geometry``: affine, pixdim in mm).
        path: ``.nii.gz`` (compressed) or ``.nii``.
        label_convention: the dataset convention whose label values the file gets
            (:data:`brats_unet.labels.FILE_LABELS`: brats2020 and brats2021 ET = 4, brats2023
            ET = 3, msd-task01 its own order).
    """
    geometry = properties.geometry
    if tuple(labels_ijk.shape) != geometry.shape:
        raise ValueError(f"labels of shape {labels_ijk.shape} do not match the input's "
                         f"{geometry.shape}")
    save_nifti(from_canonical(labels_ijk, label_convention), geometry.affine, path,
               pixdim=geometry.pixdim)


def write_probabilities(probabilities_storage: np.ndarray, properties: CaseProperties,
                        path: str | os.PathLike) -> None:
    """Write WT, TC, ET probabilities as a float32 4D NIfTI ``(i, j, k, 3)`` in the input's space.

    Args:
        probabilities_storage: float32 ``(k, j, i, 3)`` over the crop (from
            :func:`segment_case`); 0 is written outside the crop.
        properties: the case's record (geometry, crop box).
        path: output NIfTI path. The 4th axis has pixdim 1 (no unit).
    """
    geometry = properties.geometry
    volume = restore_to_input_space(np.asarray(probabilities_storage, np.float32), properties)
    save_nifti(volume, geometry.affine, path, pixdim=tuple(geometry.pixdim) + (1.0,))

"""BraTS label conventions and tumour regions.

BraTS 2018 to 2021 labels: 0 background, 1 necrotic / non-enhancing core (NCR/NET),
2 peritumoural oedema (ED), 4 enhancing tumour (ET). BraTS 2023 and later label ET 3
(``brats2023``); the 2024 post-treatment glioma release adds 4, the resection cavity
(``brats2024-post``); the Medical Segmentation Decathlon's Task01 labels 1 oedema,
2 non-enhancing tumour, 3 enhancing tumour (``msd-task01``). Inside the pipeline every label
map is canonical, i.e. in the 2020 values, with the resection cavity as
:data:`RESECTION_CAVITY`; a dataset's own values apply only when files are read and written
(:data:`FILE_LABELS`, the one table of them).

Regions (nested, evaluated as in the BraTS challenge):
whole tumour WT = {1, 2, 4}, tumour core TC = {1, 4}, enhancing tumour ET = {4}. The
resection cavity is in none of them.
"""

from __future__ import annotations

import numpy as np

NECROSIS = 1
OEDEMA = 2
ENHANCING = 4

REGIONS: tuple[str, ...] = ("WT", "TC", "ET")
REGION_LABELS: dict[str, tuple[int, ...]] = {
    "WT": (NECROSIS, OEDEMA, ENHANCING),
    "TC": (NECROSIS, ENHANCING),
    "ET": (ENHANCING,),
}


def region_rank(region: str) -> int:
    """Where ``region`` sorts: WT, TC, ET in that order, any other name after them."""
    return REGIONS.index(region) if region in REGIONS else len(REGIONS)


def ordered_regions(regions) -> list[str]:
    """The distinct regions of ``regions``: WT, TC, ET first, then any other by name."""
    return sorted(dict.fromkeys(map(str, regions)), key=lambda r: (region_rank(r), r))


#: The resection cavity's canonical value (BraTS 2024 post-treatment's 4): in no region.
RESECTION_CAVITY = 5

#: Each dataset convention's label values as found in its files -> the canonical value.
FILE_LABELS: dict[str, dict[int, int]] = {
    "brats2020": {0: 0, 1: NECROSIS, 2: OEDEMA, 4: ENHANCING},
    "brats2021": {0: 0, 1: NECROSIS, 2: OEDEMA, 4: ENHANCING},  # as 2020: ET is still 4
    "brats2023": {0: 0, 1: NECROSIS, 2: OEDEMA, 3: ENHANCING},  # 2023 and later: ET is 3
    "brats2024-post": {0: 0, 1: NECROSIS, 2: OEDEMA, 3: ENHANCING, 4: RESECTION_CAVITY},
    "msd-task01": {0: 0, 1: OEDEMA, 2: NECROSIS, 3: ENHANCING},
}
#: Allowed label values of each convention, as found in files.
LABEL_SETS: dict[str, frozenset[int]] = {c: frozenset(m) for c, m in FILE_LABELS.items()}


def check_convention(convention: str) -> None:
    if convention not in FILE_LABELS:
        raise ValueError(
            f"unknown label convention {convention!r}; expected one of {sorted(FILE_LABELS)}"
        )


def to_canonical(labels: np.ndarray, convention: str) -> np.ndarray:
    """Map a label map read from a file in ``convention`` to the canonical values (uint8);
    values outside the convention are left as they are (validation refuses them first)."""
    check_convention(convention)
    labels = np.asarray(labels)
    out = labels.astype(np.uint8, copy=True)
    for value, canonical in FILE_LABELS[convention].items():
        if value != canonical:
            out[labels == value] = canonical
    return out


def from_canonical(labels: np.ndarray, convention: str) -> np.ndarray:
    """Map a canonical label map to ``convention``'s values for writing (uint8)."""
    check_convention(convention)
    labels = np.asarray(labels)
    out = labels.astype(np.uint8, copy=True)
    for value, canonical in FILE_LABELS[convention].items():
        if value != canonical:
            out[labels == canonical] = value
    return out


def tumour_mask(labels: np.ndarray) -> np.ndarray:
    """Where a canonical label map has tumour (the whole tumour, WT): not the background and
    not the resection cavity."""
    return np.isin(labels, REGION_LABELS["WT"])


def region_masks(labels: np.ndarray) -> np.ndarray:
    """Boolean masks of WT, TC and ET stacked on a new last axis, from a canonical label map."""
    return np.stack([np.isin(labels, REGION_LABELS[r]) for r in REGIONS], axis=-1)


def regions_to_labels(masks: np.ndarray) -> np.ndarray:
    """Canonical label map from WT, TC, ET masks on the last axis.

    The nesting is enforced the BraTS way: ET is 4, TC without ET is 1,
    WT without TC is 2.
    """
    masks = np.asarray(masks, dtype=bool)
    wt, tc, et = masks[..., 0], masks[..., 1], masks[..., 2]
    out = np.zeros(wt.shape, dtype=np.uint8)
    out[wt] = OEDEMA
    out[tc] = NECROSIS
    out[et] = ENHANCING
    return out

"""BraTS label conventions and tumour regions.

BraTS 2018 to 2021 labels: 0 background, 1 necrotic / non-enhancing core (NCR/NET),
2 peritumoural oedema (ED), 4 enhancing tumour (ET). BraTS 2023 and later label ET 3
(``brats2023``). Inside the pipeline every label map is canonical, i.e. in the 2020
convention; the configured convention is applied only when reading and writing files.

Regions (nested, evaluated as in the BraTS challenge):
whole tumour WT = {1, 2, 4}, tumour core TC = {1, 4}, enhancing tumour ET = {4}.
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


#: Allowed label values of each convention, as found in files.
LABEL_SETS: dict[str, frozenset[int]] = {
    "brats2020": frozenset({0, 1, 2, 4}),
    "brats2021": frozenset({0, 1, 2, 4}),  # the same as 2020: ET is still 4
    "brats2023": frozenset({0, 1, 2, 3}),  # 2023 and later: ET is 3
}
#: Value of the enhancing tumour in each convention's files.
ET_LABEL: dict[str, int] = {"brats2020": 4, "brats2021": 4, "brats2023": 3}


def check_convention(convention: str) -> None:
    if convention not in LABEL_SETS:
        raise ValueError(
            f"unknown label convention {convention!r}; expected one of {sorted(LABEL_SETS)}"
        )


def to_canonical(labels: np.ndarray, convention: str) -> np.ndarray:
    """Map a label map read from a file in ``convention`` to the 2020 convention (uint8)."""
    check_convention(convention)
    out = labels.astype(np.uint8, copy=True)
    if ET_LABEL[convention] != ENHANCING:
        out[labels == ET_LABEL[convention]] = ENHANCING
    return out


def from_canonical(labels: np.ndarray, convention: str) -> np.ndarray:
    """Map a canonical (2020) label map to ``convention`` for writing (uint8)."""
    check_convention(convention)
    out = labels.astype(np.uint8, copy=True)
    out[labels == ENHANCING] = ET_LABEL[convention]
    return out


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

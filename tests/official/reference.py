"""Reference numbers from the official BraTS evaluation packages, for one case.

Run with the *reference* virtual environment (see requirements.txt next to this
file), never with the project's own environment; this script does not import
brats_unet:

    python reference.py IN.npz OUT.json [IN.npz OUT.json ...]

IN.npz holds
    pred, truth : integer label maps (BraTS 2023 labels 0..4), 3-D, same shape and
                  the same axis order;
    spacing     : 3 floats, millimetres per *array axis* (spacing[i] is axis i).

OUT.json holds "versions", "shape", "spacing" and "regions": one entry per region
    wt = {1,2,3}, tc = {1,3}, et = {3}, netc = {1}, snfh = {2}, rc = {4}
with the fields
    deepmind_hd95        surface_distance.compute_robust_hausdorff(
                             compute_surface_distances(truth_mask, pred_mask, spacing), 95)
                         (DeepMind surface-distance 0.1: surfel-area weighted,
                         max of the two directed 95th percentiles);
    deepmind_distances   the four arrays of compute_surface_distances
                         (distances_gt_to_pred, distances_pred_to_gt, surfel_areas_gt,
                         surfel_areas_pred), only when both surfaces together have
                         fewer than 20000 surfels, else null;
    panoptica            PanopticaResult.to_dict(True) of panoptica's
                         Panoptica_Evaluator loaded from brats_evaluation's bundled
                         configs/config_gli.yaml, called on the numpy arrays with
                         voxelspacing=spacing (the array-axis order, i.e. correct).
                         Keys: n_ref_instances, n_pred_instances, tp, fp, fn, prec, rec,
                         rq (= F1), sq_dsc(_std), sq_hd95(_std), sq_nsd(_std), pq_dsc,
                         global_bin_dsc/_hd95/_nsd, instance_voxel_count_ref,
                         instance_volume_ref, and reference_instances: one row per
                         reference instance (matched rows first, with their
                         sq_dsc/sq_hd95/sq_nsd, voxel_count, volume, is_matched).
                         A key panoptica could not compute (prec or rec at 0/0) is absent.
    panoptica_from_nifti the same dict as produced by
                         brats_evaluation.evaluation.evaluate_single_exam on pred and
                         truth written as .nii.gz (nibabel, affine diag(spacing)), i.e.
                         what the official package gives a user who passes files. Note:
                         panoptica reads such files with SimpleITK, whose arrays are
                         (z,y,x) while the spacing it takes is (x,y,z); for anisotropic
                         spacing its surface metrics therefore differ from "panoptica".
JSON encoding: NaN -> null, +inf -> the string "inf", -inf -> "-inf".
"""

import contextlib
import json
import math
import os
import sys
import tempfile
import warnings
from importlib.metadata import version
from importlib.resources import files

import nibabel as nib
import numpy as np
import surface_distance
from brats_evaluation.evaluation import evaluate_single_exam
from panoptica import Panoptica_Evaluator
from panoptica.utils.citation_reminder import disable_citation_reminder

if not hasattr(np, "Inf"):  # surface-distance 0.1 reads np.Inf (gone in numpy 2) at call time
    np.Inf = np.inf

REGIONS = {
    "wt": (1, 2, 3),
    "tc": (1, 3),
    "et": (3,),
    "netc": (1,),
    "snfh": (2,),
    "rc": (4,),
}
MAX_SURFELS = 20000
PACKAGES = (
    "panoptica",
    "brats-evaluation",
    "surface-distance",
    "numpy",
    "scipy",
    "connected-components-3d",
    "SimpleITK",
    "nibabel",
)


def clean(value):
    """Convert numpy scalars/arrays, NaN and inf into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [clean(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if value is None or isinstance(value, str):
        return value
    return str(value)


def deepmind(truth_mask, pred_mask, spacing):
    distances = surface_distance.compute_surface_distances(truth_mask, pred_mask, spacing)
    out = {"deepmind_hd95": surface_distance.compute_robust_hausdorff(distances, 95)}
    n_surfels = len(distances["distances_gt_to_pred"]) + len(distances["distances_pred_to_gt"])
    out["deepmind_distances"] = (
        {k: np.asarray(v, dtype=float) for k, v in distances.items()}
        if n_surfels < MAX_SURFELS
        else None
    )
    return out


def load_evaluator():
    config = files("brats_evaluation").joinpath("configs", "config_gli.yaml")
    return Panoptica_Evaluator.load_from_config(str(config))


def panoptica_numpy(evaluator, pred, truth, spacing):
    results = evaluator.evaluate(pred, truth, voxelspacing=tuple(spacing))
    return {name: result.to_dict(True) for name, result in results.items()}


def panoptica_nifti(evaluator, pred, truth, spacing):
    affine = np.diag([*spacing, 1.0])
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for name, array in (("pred", pred), ("truth", truth)):
            paths[name] = os.path.join(folder, f"{name}.nii.gz")
            nib.save(nib.Nifti1Image(array, affine), paths[name])
        return evaluate_single_exam(paths["pred"], paths["truth"], "case", evaluator)


def main(argv):
    if len(argv) < 3 or len(argv) % 2 == 0:
        sys.exit("usage: python reference.py IN.npz OUT.json [IN.npz OUT.json ...]")
    disable_citation_reminder()
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluator = load_evaluator()
    for source, target in zip(argv[1::2], argv[2::2]):
        one_case(evaluator, source, target)


def one_case(evaluator, source, target):
    with np.load(source) as data:
        pred = np.asarray(data["pred"])
        truth = np.asarray(data["truth"])
        spacing = [float(s) for s in np.asarray(data["spacing"]).ravel()]
    if pred.shape != truth.shape or pred.ndim != 3 or len(spacing) != 3:
        sys.exit(
            f"need two 3-D maps of one shape and 3 spacings, got "
            f"{pred.shape}, {truth.shape}, {spacing}"
        )
    for name, array in (("pred", pred), ("truth", truth)):
        if not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() > 4:
            sys.exit(f"{name} must hold integer labels 0..4")
    pred = pred.astype(np.uint8)
    truth = truth.astype(np.uint8)

    # panoptica prints notices and warns (e.g. NSD "threshold is set to 0.5");
    # keep stdout free of them.
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_numpy = panoptica_numpy(evaluator, pred, truth, spacing)
        from_nifti = panoptica_nifti(evaluator, pred, truth, spacing)
        regions = {}
        for region, labels in REGIONS.items():
            entry = deepmind(np.isin(truth, labels), np.isin(pred, labels), spacing)
            entry["panoptica"] = from_numpy.get(region)
            entry["panoptica_from_nifti"] = from_nifti.get(
                region, {"error": from_nifti.get("error")}
            )
            regions[region] = entry

    out = {
        "versions": {p: version(p) for p in PACKAGES},
        "shape": list(pred.shape),
        "spacing": spacing,
        "regions": regions,
    }
    with open(target, "w") as handle:
        json.dump(clean(out), handle, allow_nan=False)


if __name__ == "__main__":
    main(sys.argv)

"""A prediction job over several subjects: the model loaded once, a bad case costing no other."""

from __future__ import annotations

import json
import shutil

import keras
import nibabel as nib
import numpy as np
import pytest

from brats_unet.data.subjects import discover_subjects
from brats_unet.data.synthetic import generate_dataset
from brats_unet.inference.batches import take_from_batch
from brats_unet.models.unets import build_model
from brats_unet.preprocessing.cases import preprocess_to_folder
from brats_unet.segment import predict_batch

INFERENCE = dict(overlap=0.5, windows_per_batch=2, slices_per_batch=8, mirror=False,
                 threshold=0.5, min_et_voxels=0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    generate_dataset(root / "data", n=2, seed=3, shape=(32, 32, 24), spacing_mm=(6.0, 6.0, 6.0))
    cases = []
    for files in discover_subjects(root / "data").subjects:
        preprocess_to_folder(files, root / "pre" / files.subject)
        cases.append(root / "pre" / files.subject)
    keras.utils.set_random_seed(0)
    model_path = root / "unet3d.keras"
    build_model("unet3d", base_filters=4, depth=3).save(model_path)
    return root, model_path, cases


def test_a_batch_predicts_every_case_and_records_the_job(setup, tmp_path):
    root, model_path, cases = setup
    plan = {c.name: ["unet3d"] for c in cases}
    record = predict_batch({"unet3d": model_path}, plan, cases, tmp_path / "part-001",
                           patch_size=(16, 16, 16), **INFERENCE)
    subjects = [c.name for c in cases]
    assert record["subjects"] == subjects and record["failed"] == []
    assert json.loads((tmp_path / "part-001/job.json").read_text()) == record
    assert 0 < record["startup_seconds"] <= record["job_seconds"]
    for case in cases:
        out = root / "out" / case.name
        take_from_batch(tmp_path / "part-001", case.name, "unet3d", out.with_suffix(".nii.gz"),
                        out.with_suffix(".json"))
        written = nib.load(out.with_suffix(".nii.gz"))
        source = nib.load(root / "data" / case.name / f"{case.name}_flair.nii.gz")
        assert written.shape == source.shape
        np.testing.assert_array_equal(written.affine, source.affine)
        assert json.loads(out.with_suffix(".json").read_text())["subject"] == case.name


def test_a_bad_case_is_reported_by_its_own_subject_and_spares_the_others(setup, tmp_path):
    root, model_path, cases = setup
    broken = tmp_path / "BraTS20_Training_099"
    shutil.copytree(cases[0], broken)
    (broken / "properties.json").write_text('{"subject": "BraTS20_Training_099"}')
    batch = tmp_path / "part-001"
    plan = {broken.name: ["unet3d"], cases[1].name: ["unet3d"]}
    record = predict_batch({"unet3d": model_path}, plan, [broken, cases[1]], batch,
                           patch_size=(16, 16, 16), **INFERENCE)
    assert record["failed"] == [broken.name]
    assert not list(batch.glob(f"{broken.name}.unet3d*"))
    take_from_batch(batch, cases[1].name, "unet3d", tmp_path / "ok.nii.gz", tmp_path / "ok.json")
    assert (tmp_path / "ok.nii.gz").exists()
    with pytest.raises(ValueError, match=r"subject BraTS20_Training_099: prediction with "
                                         r"unet3d failed \(part-001\): ValueError: .*properties"):
        take_from_batch(batch, broken.name, "unet3d", tmp_path / "x.nii.gz", tmp_path / "x.json")
    assert not (tmp_path / "x.nii.gz").exists()
    with pytest.raises(FileNotFoundError, match="BraTS20_Training_050.*did not predict it"):
        take_from_batch(batch, "BraTS20_Training_050", "unet3d", tmp_path / "y.nii.gz",
                        tmp_path / "y.json")


def test_an_ensemble_of_two_identical_models_equals_the_model(setup, tmp_path):
    root, model_path, cases = setup
    plan = {cases[0].name: ["unet3d.fold0", "unet3d.fold1"], cases[1].name: ["unet3d.fold1"]}
    record = predict_batch({"unet3d.fold0": model_path, "unet3d.fold1": model_path}, plan, cases,
                           tmp_path, ensemble="unet3d.ensemble", patch_size=(16, 16, 16),
                           keep_probabilities=True, **INFERENCE)
    assert record["failed"] == [] and record["models"] == ["unet3d.fold0", "unet3d.fold1"]
    test, validation = cases[0].name, cases[1].name
    stems = {p.name.split(".", 1)[1] for p in tmp_path.glob(f"{test}.*.nii.gz")}
    assert stems == {f"{m}.{kind}" for m in ("unet3d.fold0", "unet3d.fold1", "unet3d.ensemble")
                     for kind in ("nii.gz", "probabilities.nii.gz")}
    # a validation subject is predicted by its own fold only: no ensemble of one
    assert sorted(p.name for p in tmp_path.glob(f"{validation}.*.nii.gz")) == [
        f"{validation}.unet3d.fold1.nii.gz", f"{validation}.unet3d.fold1.probabilities.nii.gz"]

    def voxels(name):
        return np.asarray(nib.load(tmp_path / f"{test}.{name}").dataobj)

    np.testing.assert_array_equal(voxels("unet3d.ensemble.nii.gz"), voxels("unet3d.fold0.nii.gz"))
    probabilities = voxels("unet3d.ensemble.probabilities.nii.gz")
    np.testing.assert_array_equal(probabilities, voxels("unet3d.fold0.probabilities.nii.gz"))
    assert probabilities.shape[-1] == 3 and probabilities.max() > 0
    timing = json.loads((tmp_path / f"{test}.unet3d.ensemble.json").read_text())
    members = [json.loads((tmp_path / f"{test}.unet3d.fold{f}.json").read_text())
               for f in (0, 1)]
    assert timing["model"] == "unet3d.ensemble"
    assert timing["predict_seconds"] >= sum(m["predict_seconds"] for m in members)


def test_the_ensemble_averages_probabilities_before_the_thresholds(setup, tmp_path):
    """Two different models: the ensemble's labels are the thresholded mean of theirs."""
    root, model_path, cases = setup
    keras.utils.set_random_seed(7)
    other = tmp_path / "other.keras"
    build_model("unet3d", base_filters=4, depth=3).save(other)
    plan = {cases[0].name: ["a", "b"]}
    predict_batch({"a": model_path, "b": other}, plan, cases[:1], tmp_path / "out",
                  ensemble="e", patch_size=(16, 16, 16), keep_probabilities=True, **INFERENCE)
    out = tmp_path / "out"

    def voxels(name):
        return np.asarray(nib.load(out / f"{cases[0].name}.{name}").dataobj)

    mean = (voxels("a.probabilities.nii.gz") + voxels("b.probabilities.nii.gz")) / 2
    np.testing.assert_allclose(voxels("e.probabilities.nii.gz"), mean, atol=1e-6)
    assert not np.array_equal(voxels("a.probabilities.nii.gz"), voxels("b.probabilities.nii.gz"))

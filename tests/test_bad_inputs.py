"""Bad inputs through the whole DAG, each a real damaged file among good subjects.

One run (module fixture): every bad subject is excluded with one line naming the
subject, the file and the problem -- in the QC table, its log and the report --
while the good ones, one with an empty label map among them, are trained on,
predicted and scored.
"""

from __future__ import annotations

import copy
import gzip
import html
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brats_unet.data.qc import read_qc_table
from brats_unet.data.split import make_split
from brats_unet.data.subjects import raw_file_name
from brats_unet.data.synthetic import generate_dataset, subject_name
from brats_unet.evaluation.metrics import HD95_ONE_EMPTY_MM
from brats_unet.io import read_json, save_nifti
from test_workflow import TINY, snakemake

pytestmark = pytest.mark.workflow

SHAPE = (40, 40, 28)
N_GOOD = 6  # enough for train, validation and test
SPLIT = {"seed": 42, "test_fraction": 0.34, "validation_fraction": 0.17, "n_folds": 0}
CONFIG = {**copy.deepcopy(TINY), "model_names": ["unet2d"], "split": SPLIT,
          "evaluation": {"bootstrap_samples": 100, "seed": 0}}
GOOD = [subject_name(i) for i in range(1, N_GOOD + 1)]
# The empty label map goes to a test subject, so that it is scored.
EMPTY_LABEL = make_split(GOOD, **SPLIT)["test"][0]
# A test subject with tumour labels where every contrast is 0: included and scored, with a warning.
LABEL_OUTSIDE = make_split(GOOD, **SPLIT)["test"][1]


@dataclass(frozen=True)
class Case:
    subject: str  # the folder's name
    file: str  # the QC table's file column
    problem: str  # the QC table's problem starts with this
    discovery: bool  # refused from its file names alone: no preprocess job, no per-subject log
    corrupt: Callable[[Path, Case], None]


CASES: dict[str, Case] = {}


def case(case_id: str, file: str, problem: str, *, discovery: bool = False, subject: str = ""):
    """Register a bad case: ``corrupt(folder, case)`` damages a fresh good subject's folder."""
    def register(corrupt):
        name = subject_name(N_GOOD + 1 + len(CASES))
        CASES[case_id] = Case(subject or name, file.format(name=name), problem.format(name=name),
                              discovery, corrupt)
        return corrupt
    return register


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = nib.load(path)
    return np.asarray(image.dataobj), image.affine


def _file(folder: Path, role: str) -> Path:
    return folder / raw_file_name(folder.name, role)


@case("missing contrast", "{name}/",
      "missing contrast t1ce (expected *_t1ce.nii[.gz]; found: {name}_flair.nii.gz, ",
      discovery=True)
def _missing_contrast(folder, _):
    _file(folder, "t1ce").unlink()


@case("truncated gzip", "{name}_flair.nii.gz", "truncated or corrupt gzip data (")
def _truncated_gzip(folder, _):
    path = _file(folder, "flair")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@case("text named .nii.gz", "{name}_t1.nii.gz",
      "not a NIfTI file: named .gz but not gzip-compressed (it starts with b'BraTS_2020_subje')")
def _text_file(folder, _):
    _file(folder, "t1").write_text("BraTS_2020_subject_ID,Grade\n")


@case("gzipped, not a NIfTI", "{name}_t2.nii.gz",
      "not a NIfTI file: no NIfTI-1 or NIfTI-2 header (it starts with b'BraTS_2020_subje')")
def _gzipped_text(folder, _):
    _file(folder, "t2").write_bytes(gzip.compress(b"BraTS_2020_subject_ID,Grade\n" * 50))


@case("4D image", "{name}_t2.nii.gz", "expected a 3D volume, got 4D of shape (40, 40, 28, 2)")
def _four_d(folder, _):
    voxels, affine = _read(_file(folder, "t2"))
    save_nifti(np.stack([voxels, voxels], axis=-1), affine, _file(folder, "t2"))


@case("shape mismatch", "{name}_t1ce.nii.gz",
      "shape (39, 40, 28) differs from {name}_flair.nii.gz's (40, 40, 28)")
def _shape_mismatch(folder, _):
    voxels, affine = _read(_file(folder, "t1ce"))
    save_nifti(voxels[:-1], affine, _file(folder, "t1ce"))


@case("affine mismatch", "{name}_seg.nii.gz",
      "affine differs from {name}_flair.nii.gz's by up to 2 mm (tolerance 0.001 mm)")
def _affine_mismatch(folder, _):
    voxels, affine = _read(_file(folder, "seg"))
    shifted = affine.copy()
    shifted[0, 3] += 2.0
    save_nifti(voxels, shifted, _file(folder, "seg"))


@case("NaN and infinite voxels", "{name}_flair.nii.gz",
      f"1 NaN and 1 infinite voxels (of {np.prod(SHAPE)})")
def _non_finite(folder, _):
    voxels, affine = _read(_file(folder, "flair"))
    voxels = voxels.astype(np.float32)
    voxels[20, 20, 14] = np.nan
    voxels[21, 20, 14] = -np.inf
    save_nifti(voxels, affine, _file(folder, "flair"))


@case("label 3 in a 2020 set", "{name}_seg.nii.gz",
      "labels [3] are outside the brats2020 set [0, 1, 2, 4] (are these brats2023 labels? "
      "then set dataset: brats2023)")
def _label_3(folder, _):
    voxels, affine = _read(_file(folder, "seg"))
    voxels[voxels == 4] = 3
    voxels[tuple(np.argwhere(voxels > 0)[0])] = 3  # even when this case has no ET
    save_nifti(voxels, affine, _file(folder, "seg"))


@case("all-zero contrast", "{name}_t2.nii.gz", "contrast is empty (every voxel is 0)")
def _all_zero(folder, _):
    voxels, affine = _read(_file(folder, "t2"))
    save_nifti(np.zeros_like(voxels), affine, _file(folder, "t2"))


@case("BraTS 2023 naming", "BraTS-GLI-00017-000/",
      "file names do not follow the BraTS 2018-2021 naming (expected <subject>_flair, "
      "<subject>_t1, <subject>_t1ce, <subject>_t2 and optionally <subject>_seg, each .nii or "
      ".nii.gz; "
      "found: BraTS-GLI-00017-000-seg.nii.gz, BraTS-GLI-00017-000-t1c.nii.gz, ",
      discovery=True, subject="BraTS-GLI-00017-000")
def _brats2023_naming(folder, bad):
    new = {"flair": "t2f", "t1": "t1n", "t1ce": "t1c", "t2": "t2w", "seg": "seg"}
    for role, renamed in new.items():
        _file(folder, role).rename(folder / f"{bad.subject}-{renamed}.nii.gz")
    folder.rename(folder.with_name(bad.subject))


@case("no subject prefix", "patient_bare/",
      "file names do not follow the BraTS 2018-2021 naming (expected <subject>_flair, ",
      discovery=True, subject="patient_bare")
def _bare_names(folder, bad):
    for role in ("flair", "t1", "t1ce", "t2", "seg"):
        _file(folder, role).rename(folder / f"{role}.nii.gz")
    folder.rename(folder.with_name(bad.subject))


@case("another subject's file", "BraTS20_Training_999_t1.nii.gz",
      "the file names name different subjects ({name}, BraTS20_Training_999)", discovery=True)
def _mixed_subjects(folder, _):
    _file(folder, "t1").rename(folder / "BraTS20_Training_999_t1.nii.gz")


@case("unsafe subject name", "Patient 7 (copy)/",
      "subject name 'Patient 7 (copy)' is not allowed: it must match ", discovery=True,
      subject="Patient 7 (copy)")
def _unsafe_name(folder, bad):
    folder.rename(folder.with_name(bad.subject))


STRAYS = {  # entry of data_dir -> the note the run logs
    "name_mapping.csv": "'name_mapping.csv': a file outside any subject folder",
    "stray_flair.nii.gz": "'stray_flair.nii.gz': a NIfTI file outside any subject folder",
    "notes": "'notes': folder without NIfTI files",
    ".ipynb_checkpoints": "'.ipynb_checkpoints': hidden folder",
}


def _make_data(data: Path) -> None:
    generate_dataset(data, n=N_GOOD + len(CASES), seed=5, shape=SHAPE, spacing_mm=(5.0, 5.0, 5.5))
    voxels, affine = _read(data / EMPTY_LABEL / f"{EMPTY_LABEL}_seg.nii.gz")
    save_nifti(np.zeros_like(voxels), affine, data / EMPTY_LABEL / f"{EMPTY_LABEL}_seg.nii.gz")
    voxels, affine = _read(_file(data / LABEL_OUTSIDE, "seg"))
    voxels[0, 0, :3] = 2  # a corner of the volume: no brain there
    save_nifti(voxels, affine, _file(data / LABEL_OUTSIDE, "seg"))
    for index, bad in enumerate(CASES.values(), start=N_GOOD + 1):
        bad.corrupt(data / subject_name(index), bad)
    (data / "name_mapping.csv").write_text("BraTS_2020_subject_ID,Grade\n")
    shutil.copy(data / GOOD[0] / f"{GOOD[0]}_flair.nii.gz", data / "stray_flair.nii.gz")
    (data / "notes").mkdir()
    (data / "notes" / "README.txt").write_text("scanner notes\n")
    shutil.copytree(data / GOOD[1], data / ".ipynb_checkpoints" / GOOD[1])


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


@dataclass
class Run:
    root: Path
    data: Path
    study: Path
    output: str
    data_before: dict

    def qc(self) -> pd.DataFrame:
        return read_qc_table(self.study / "results/qc/subjects.tsv").set_index("subject")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    """The whole DAG once on the good and bad subjects."""
    root = tmp_path_factory.mktemp("bad_inputs")
    data, study = root / "BraTS2020", root / "study"
    _make_data(data)
    study.mkdir()
    before = _snapshot(data)
    result = snakemake(study, config={**CONFIG, "data_dir": str(data)})
    return Run(root, data, study, result.stdout + result.stderr, before)


@pytest.mark.parametrize("case_id", CASES)
def test_bad_subject_is_excluded_with_file_and_problem(run: Run, case_id: str):
    bad = CASES[case_id]
    row = run.qc().loc[bad.subject]
    assert row["status"] == "excluded"
    assert row["file"] == bad.file
    assert row["problem"].startswith(bad.problem), row["problem"]
    assert "\n" not in row["problem"] and "Traceback" not in row["problem"]


@pytest.mark.parametrize("case_id", CASES)
def test_bad_subject_message_is_in_its_logs(run: Run, case_id: str):
    bad = CASES[case_id]
    row = run.qc().loc[bad.subject]
    line = f"excluded {bad.subject}: {row['file']}: {row['problem']}"
    logs = [run.study / "logs/qc_table.log"]
    own_log = run.study / "logs/preprocess" / f"{bad.subject}.log"
    if bad.discovery:
        assert not own_log.exists()  # no job: its name alone refused it
    else:
        logs.append(own_log)
    for log in logs:
        text = log.read_text()
        assert line in text, f"{log}:\n{text}"
        assert "Traceback" not in text


@pytest.mark.parametrize("case_id", CASES)
def test_bad_subject_is_listed_in_the_report_and_used_nowhere(run: Run, case_id: str):
    bad = CASES[case_id]
    page = (run.study / "reports/report.html").read_text()
    section = page.split("Quality control: excluded subjects</h2>")[1].split("<h2>")[0]
    row = run.qc().loc[bad.subject]
    assert html.escape(bad.subject) in section and html.escape(row["problem"]) in section
    split = read_json(run.study / "results/split.json")
    assert bad.subject not in [s for group in ("train", "validation", "test", "unlabelled")
                               for s in split[group]]
    assert not (run.study / "results/preprocessed" / bad.subject / "image.npy").exists()


def test_good_subjects_are_preprocessed_split_and_the_test_ones_scored(run: Run):
    table = run.qc()
    assert sorted(table.index[table["status"] == "included"]) == GOOD
    assert set(table.index) == set(GOOD) | {c.subject for c in CASES.values()}
    split = read_json(run.study / "results/split.json")
    assert split["test"] == sorted(make_split(GOOD, **SPLIT)["test"])
    assert sorted(split["train"] + split["validation"] + split["test"]) == GOOD
    for subject in GOOD:
        assert (run.study / "results/preprocessed" / subject / "image.npy").exists()
        assert "preprocessed into" in (run.study / f"logs/preprocess/{subject}.log").read_text()
    per_case = pd.read_csv(run.study / "results/per_case.csv")
    assert sorted(per_case["subject"].unique()) == split["test"]
    assert len(per_case) == len(split["test"]) * 3  # one model, three regions
    for subject in split["test"]:
        assert (run.study / f"results/predictions/unet2d/{subject}.nii.gz").exists()
    assert "QC: 20 subjects checked, 14 excluded, 1 with a warning" in (
        run.study / "reports/report.html").read_text()


def test_tumour_labels_outside_the_brain_are_scored_with_a_warning(run: Run):
    note = run.qc().loc[LABEL_OUTSIDE, "note"]
    assert note.startswith(f"{LABEL_OUTSIDE}_seg.nii.gz: 3 tumour voxels where every "
                           "contrast is 0")
    assert (run.qc()["note"] != "").sum() == 1
    for log in (f"logs/preprocess/{LABEL_OUTSIDE}.log", "logs/qc_table.log"):
        assert f"{LABEL_OUTSIDE}: {note}" in (run.study / log).read_text()
    report = (run.study / "reports/report.html").read_text()
    assert "Quality control: warnings" in report and html.escape(note) in report
    truth = pd.read_csv(run.study / "results/per_case.csv").query(
        "subject == @LABEL_OUTSIDE and region == 'WT'")["volume_true_ml"].item()
    voxels, affine = _read(_file(run.data / LABEL_OUTSIDE, "seg"))
    ml = np.count_nonzero(voxels) * abs(np.linalg.det(affine[:3, :3])) / 1000
    assert truth == pytest.approx(ml)  # the voxels outside the brain are counted


def test_empty_label_map_is_included_and_scored_the_brats_way(run: Run):
    properties = read_json(run.study / "results/preprocessed" / EMPTY_LABEL / "properties.json")
    assert properties["has_label"] and not any(
        n for region, n in properties["region_voxels"].items())
    rows = pd.read_csv(run.study / "results/per_case.csv").query("subject == @EMPTY_LABEL")
    assert list(rows["region"]) == ["WT", "TC", "ET"]
    assert (rows["volume_true_ml"] == 0).all()
    for row in rows.itertuples():
        if row.volume_pred_ml == 0:  # both empty: a perfect score
            assert (row.dice, row.hd95_mm) == (1.0, 0.0)
        else:  # a false alarm: the worst score
            assert (row.dice, row.hd95_mm) == (0.0, pytest.approx(HD95_ONE_EMPTY_MM))


@pytest.mark.parametrize("entry", STRAYS)
def test_stray_entry_is_noted_and_not_a_subject(run: Run, entry: str):
    assert f"data_dir: ignored {STRAYS[entry]}" in run.output
    assert entry not in run.qc().index


def test_nothing_is_written_outside_the_study_folder(run: Run):
    assert _snapshot(run.data) == run.data_before
    assert sorted(p.name for p in run.root.iterdir()) == ["BraTS2020", "study"]
    unsafe = CASES["unsafe subject name"].subject
    assert not [p for p in run.study.rglob("*") if unsafe.split()[0] in p.name]

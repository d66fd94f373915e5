"""``snakemake -n`` time for 369 subjects x 3 models, and a no-op re-run's time.

A data folder of 369 BraTS-named subjects (BraTS 2020 training size), each
with five tiny but valid NIfTI files (4 x 4 x 4): discovery reads names, and
Snakemake only stats files, so the size of the volumes does not matter.

1. ``dry run, nothing done``: a fresh working directory; ``snakemake -n``
   builds the DAG up to the split checkpoint (369 preprocess jobs, QC table,
   split; the models' jobs are known only once the split exists).
2. ``after the split``: the preprocessed folders and the QC table faked
   (empty), ``results/split.json`` written (``make_split`` on the 369 names,
   as the split job would) and the three stamped with ``snakemake --touch``;
   the dry run now plans everything after the checkpoint (training of 3
   models, the prediction jobs of 3 x 92 test subjects, scoring, tables, report); the
   jobs per rule are printed too.
3. ``no-op re-run``: every output that ``snakemake --summary`` lists is
   created empty (folders for ``directory()`` outputs), then
   ``snakemake --touch`` stamps them in DAG order and records their
   metadata; ``snakemake -n`` then finds nothing to do. The outputs are
   fakes, so this times Snakemake's planning over a finished state (mtimes,
   the metadata in .snakemake/), not real results.

Each figure is the median of --repeats runs of ``snakemake -n --cores 2``.

    .venv/bin/python bench/dag_speed.py
    .venv/bin/python bench/dag_speed.py --subjects 369 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from brats_unet.data.split import make_split
from brats_unet.data.subjects import raw_subject_files
from brats_unet.data.synthetic import subject_name
from brats_unet.io import write_json

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def make_data(root: Path, n: int) -> list[str]:
    from brats_unet.io import nifti_bytes

    image = nifti_bytes(np.ones((4, 4, 4), np.float32), np.eye(4), pixdim=(1.0, 1.0, 1.0))
    label = nifti_bytes(np.zeros((4, 4, 4), np.uint8), np.eye(4), pixdim=(1.0, 1.0, 1.0))
    names = [subject_name(i) for i in range(1, n + 1)]
    for name in names:
        files = raw_subject_files(root, name)
        (root / name).mkdir(parents=True)
        for path in files.images.values():
            path.write_bytes(image)
        files.label.write_bytes(label)
    return names


def snakemake(workdir: Path, data: Path, *extra: str, check: bool = True) -> tuple[float, str]:
    command = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--cores", "2", "--config", f"data_dir={data}", *extra]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if check and proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def create_outputs(workdir: Path, data: Path) -> int:
    """Create every output ``snakemake --summary`` lists as missing, as an empty file, or
    a folder for the workflow's ``directory()`` outputs (the names without a suffix)."""
    created = 0
    for _ in range(5):  # checkpoints reveal more outputs once their inputs exist
        _, text = snakemake(workdir, data, "--summary")
        missing = [line.split("\t")[0] for line in text.splitlines()
                   if "\tmissing\t" in line]
        if not missing:
            break
        for name in missing:
            path = workdir / name
            if path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            else:
                path.mkdir(parents=True, exist_ok=True)
            created += 1
    # --summary leaves out the predictions that scoring reads (jobs it does not
    # plan); a finished run has them, so they are there too.
    split = json.loads((workdir / "results" / "split.json").read_text())
    for model in ("unet2d", "unet3d", "resunet3d"):
        for subject in split["test"] + split["unlabelled"]:
            for suffix in (".nii.gz", ".json"):
                path = workdir / "results" / "predictions" / model / f"{subject}{suffix}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
                created += 1
    return created


def median_dry_run(workdir: Path, data: Path, repeats: int) -> tuple[float, str]:
    times, text = [], ""
    for _ in range(repeats):
        seconds, text = snakemake(workdir, data, "-n")
        times.append(seconds)
    return float(np.median(times)), text


def job_table(text: str) -> dict[str, int]:
    """Snakemake's 'Job stats' table: jobs per rule."""
    counts, in_table = {}, False
    for line in text.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
        elif in_table and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
        elif in_table and counts and not parts:
            break
    return counts


def jobs_planned(text: str) -> str:
    for line in text.splitlines():
        if line.strip().startswith("total"):
            return line.split()[-1] + " jobs"
    return "nothing to do" if "Nothing to be done" in text else "?"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=369)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    data, work = root / "data", root / "work"
    names = make_data(data, args.subjects)
    work.mkdir()
    rows = []

    seconds, text = median_dry_run(work, data, args.repeats)
    rows.append(("dry run, nothing done", seconds, jobs_planned(text)))

    write_json(make_split(names, seed=42, test_fraction=0.25, validation_fraction=0.25),
               work / "results" / "split.json")
    for name in names:
        (work / "results" / "preprocessed" / name).mkdir(parents=True)
    (work / "results" / "qc").mkdir(parents=True)
    (work / "results" / "qc" / "subjects.tsv").touch()
    snakemake(work, data, "--touch", "--until", "split")
    seconds, text = median_dry_run(work, data, args.repeats)
    rows.append(("dry run after the split (preprocessing, QC, split faked)", seconds,
                 jobs_planned(text)))
    after_split = job_table(text)

    created = create_outputs(work, data)
    touch_seconds, _ = snakemake(work, data, "--touch")
    seconds, text = median_dry_run(work, data, args.repeats)
    rows.append((f"no-op re-run ({created} outputs faked, then --touch)", seconds, jobs_planned(text)))

    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"{args.subjects} subjects x 3 models, `snakemake -n --cores 2`, median of {args.repeats}")
    for what, seconds, planned in rows:
        print(f"{what:62} {seconds:6.2f} s   ({planned})")
    print(f"(`snakemake --touch` of the whole DAG took {touch_seconds:.1f} s, once)")
    print("jobs after the split, by rule:", ", ".join(f"{r} {n}" for r, n in after_split.items()))
    shutil.rmtree(root)


if __name__ == "__main__":
    main()

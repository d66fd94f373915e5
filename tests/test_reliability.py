"""Kills at any stage, two runs at once, determinism and writes outside the study folder.

One study is killed (SIGKILL to Snakemake and its jobs) while a preprocessing job runs, while a
model trains, and while a prediction runs; each time it is unlocked and started again, and the
last run finishes. The finished study is then checked: every output loads, training resumed
rather than restarted, and nothing from a killed job is taken for a result.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from test_workflow import REPO, SNAKEMAKE, TINY, snakemake  # noqa: E402

from training_state import backed_up_epoch  # noqa: E402

pytestmark = [pytest.mark.workflow, pytest.mark.skipif(
    not Path("/proc/self/cmdline").exists(), reason="finds running jobs through /proc")]

MODEL = "unet3d"
EPOCHS = 8
KILL_CONFIG = copy.deepcopy(TINY)
KILL_CONFIG["model_names"] = [MODEL]
KILL_CONFIG["training"] = {"epochs": EPOCHS, "steps_per_epoch": 2}


def workflow(study: Path) -> list[str]:
    """Snakemake on the kill test's config in ``study``; options follow."""
    return [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(study),
            "--configfile", str(study / "kill-config.yaml")]


def start(study: Path, home: Path, name: str) -> subprocess.Popen:
    """Snakemake in its own process group (so that its jobs can be killed with it)."""
    (study / "kill-config.yaml").write_text(yaml.safe_dump(KILL_CONFIG))
    log = open(study / f"{name}.log", "w")
    return subprocess.Popen(
        [*workflow(study), "--cores", "2",
         "--workflow-profile", str(REPO / "workflow/profiles/default")],
        cwd=study, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env=isolated_env(home))


def isolated_env(home: Path) -> dict[str, str]:
    """The caller's environment with an empty home and temporary folder, to see what lands there."""
    (home / "home").mkdir(parents=True, exist_ok=True)
    (home / "tmp").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "KERAS_", "MPL"))}
    return {**env, "HOME": str(home / "home"), "TMPDIR": str(home / "tmp"),
            "PYTHONHASHSEED": "0"}


def job_scripts(group: int) -> dict[int, str]:
    """The processes in process group ``group`` that run a rule's script, by pid, with the
    rule's name (Snakemake runs them as ``python .snakemake/scripts/tmpXXXX.<script>.py``)."""
    jobs = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != group:
                continue
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ProcessLookupError):
            continue
        for arg in args:
            text = arg.decode(errors="replace")
            name = Path(text).name
            if name.startswith("tmp") and name.endswith(".py") and ".snakemake" in text:
                jobs[int(proc.name)] = name.split(".")[-2]
    return jobs


def running_rules(group: int) -> set[str]:
    """Rules whose script runs in process group ``group``."""
    return set(job_scripts(group).values())


def signal_all(pids, sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def kill_when(proc: subprocess.Popen, ready, what: str, timeout: float = 600) -> None:
    """SIGKILL the whole run as soon as ``ready()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}")
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"timed out waiting for {what}")


def stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except (OSError, IndexError):
        return False


def pause_a_job(proc: subprocess.Popen, timeout: float = 600) -> list[int]:
    """SIGSTOP the job scripts running under ``proc`` once there is one; their pids, once at
    least one of them is seen stopped (a job that ended just before the signal does not count)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before a job was paused")
        jobs = list(job_scripts(proc.pid))
        signal_all(jobs, signal.SIGSTOP)
        time.sleep(0.05)
        if any(stopped(pid) for pid in jobs):
            return jobs
        signal_all(jobs, signal.SIGCONT)
    raise AssertionError("timed out waiting for a job to pause")


def unlock(study: Path) -> None:
    subprocess.run([*workflow(study), "--unlock"],
                   cwd=study, check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def killed_study(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("killed")
    study, home = root / "study", root / "outside"
    study.mkdir()
    facts = {"study": study, "home": home}

    run = start(study, home, "run1")
    kill_when(run, lambda: "preprocess" in running_rules(run.pid), "a preprocessing job ran")
    unlock(study)

    # training killed twice: as it starts, then once it has backed up an epoch
    run = start(study, home, "run2")
    kill_when(run, lambda: "train" in running_rules(run.pid), "training started")
    unlock(study)
    run = start(study, home, "run3")
    state = study / f"state/train/{MODEL}/backup/training_metadata.json"
    seen = []  # the epoch read when the kill was sent (Keras rewrites the record in place)
    kill_when(run, lambda: seen.append(backed_up_epoch(state)) or seen[-1] is not None,
              "an epoch was backed up")
    facts["backed_up_epoch"] = seen[-1]
    facts["weights_after_training_kill"] = (study / f"results/models/{MODEL}.keras").exists()
    unlock(study)

    run = start(study, home, "run4")
    kill_when(run, lambda: "predict" in running_rules(run.pid), "a prediction job ran")
    unlock(study)

    run = start(study, home, "run5")
    # A second Snakemake in the same folder while a job runs must refuse, not run alongside.
    # The running job is paused meanwhile: otherwise the first run may finish before the second
    # has built its DAG, and the second rightly finds nothing to do (seen once in CI).
    jobs = pause_a_job(run)
    try:
        facts["second_run"] = subprocess.run(  # the same profile: --rerun-incomplete
            [*workflow(study), "--cores", "1",
             "--workflow-profile", str(REPO / "workflow/profiles/default")],
            cwd=study, capture_output=True, text=True, env=isolated_env(home), timeout=600)
    finally:
        signal_all(jobs, signal.SIGCONT)
    assert run.wait(timeout=900) == 0, (study / "run5.log").read_text()[-3000:]
    return facts


def test_second_run_in_the_same_folder_refuses_clearly(killed_study):
    second = killed_study["second_run"]
    assert second.returncode != 0
    assert "cannot be locked" in second.stdout + second.stderr


def test_training_killed_mid_run_resumes_from_its_backup(killed_study):
    study = killed_study["study"]
    assert 1 <= killed_study["backed_up_epoch"] < EPOCHS
    assert not killed_study["weights_after_training_kill"]  # no half-trained model published
    summary = json.loads((study / f"results/models/{MODEL}.json").read_text())
    assert summary["resumed"] is True
    history = pd.read_csv(study / f"results/models/{MODEL}.history.csv")
    assert list(history["epoch"]) == list(range(EPOCHS))  # each epoch once, none lost
    assert summary["epochs_run"] == EPOCHS
    assert not (study / f"state/train/{MODEL}").exists()  # state removed once finished


def test_every_output_of_the_killed_study_is_complete_and_loads(killed_study):
    study = killed_study["study"]
    split = json.loads((study / "results/split.json").read_text())
    subjects = split["train"] + split["validation"] + split["test"]
    for subject in subjects:
        case = study / "results/preprocessed" / subject
        image = np.load(case / "image.npy", allow_pickle=False)
        assert image.dtype == np.float32 and np.isfinite(image).all()
        assert json.loads((case / "properties.json").read_text())["subject"] == subject
    for subject in split["test"]:
        seg = nib.load(study / f"results/predictions/{MODEL}/{subject}.nii.gz")
        assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2, 4}
        json.loads((study / f"results/predictions/{MODEL}/{subject}.json").read_text())
    per_case = pd.read_csv(study / "results/per_case.csv")
    assert len(per_case) == 3 * len(split["test"]) and per_case["dice"].between(0, 1).all()
    assert "<table" in (study / "reports/report.html").read_text()
    code = ("import sys, keras, brats_unet.models.unets; "
            "keras.saving.load_model(sys.argv[1], safe_mode=True, compile=False)")
    loaded = subprocess.run([sys.executable, "-c", code,
                             str(study / f"results/models/{MODEL}.keras")],
                            capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    # a finished run has nothing left to do: no output is marked incomplete
    dry = snakemake(study, "-n", config=KILL_CONFIG)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_killed_jobs_leave_no_temporary_files_behind(killed_study):
    study = killed_study["study"]
    leftovers = [str(p.relative_to(study)) for p in (study / "results").rglob(".*.tmp-*")]
    assert leftovers == []


def test_nothing_is_written_outside_the_study_folder(killed_study):
    outside = killed_study["home"]
    written = [str(p.relative_to(outside)) for p in outside.rglob("*") if p.is_file()]
    # Snakemake's own temporaries, removed when it exits and left by a Snakemake that was
    # SIGKILLed: its copy of the workflow's sources (XDG_CACHE_HOME moves it) and its
    # scheduler's PuLP problem files in TMPDIR. Nothing else may be there.
    runtime_cache = "home/.cache/snakemake/snakemake/source-cache/snakemake-runtime-cache/"
    scheduler = re.compile(r"tmp/[0-9a-f]{32}-pulp\.(mps|sol|lp)$")
    assert [name for name in written
            if not name.startswith(runtime_cache) and not scheduler.match(name)] == []

"""The workflow through SLURM: bin/slurm-local starts a one-node cluster on 127.0.0.1 and the
profile workflow/profiles/slurm submits every job to it with sbatch."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from test_workflow import REPO, SNAKEMAKE, TINY, job_counts, snakemake

from training_state import backed_up_epoch

pytestmark = pytest.mark.workflow

MODEL = "unet2d"
# The local node has no GPU and 2 CPUs: the test's jobs ask for no GPU and little memory and time.
CONFIG = {**copy.deepcopy(TINY), "model_names": [MODEL],
          "train_resources": {"threads": 2, "gpu": 0, "mem_mb": 3000, "runtime": 20},
          "inference_resources": {"threads": 1, "gpu": 0, "mem_mb": 2000, "runtime": 10}}
# No accounting database, hence no sacct: the executor asks squeue, early and often (short jobs).
SLURM_ARGS = ("--workflow-profile", str(REPO / "workflow/profiles/slurm"),
              "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1")
DEFAULT_RESOURCES = {key: value for key, value in CONFIG.items()
                     if key not in ("train_resources", "inference_resources")}
TARGETS = (f"results/models/{MODEL}.keras", "results/qc/subjects.tsv")
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def _fields(record: str) -> dict[str, str]:
    """``Key=value`` pairs of a one-line SLURM record (scontrol -o, the job-completion file)."""
    return dict(re.findall(r"(\w+)=(\S*)", record))


@pytest.fixture(scope="module")
def job_records() -> Path:
    """Start (or check) the local cluster; return its job-completion file."""
    if os.geteuid() != 0:
        pytest.skip("bin/slurm-local needs root to install and start SLURM")
    try:
        started = subprocess.run([str(REPO / "bin/slurm-local")], capture_output=True,
                                 text=True, timeout=900)
    except subprocess.TimeoutExpired as err:  # apt-get on a mirror that does not answer
        pytest.skip(f"bin/slurm-local did not finish in 900 s: {err.stderr!r:.500}")
    if started.returncode == 3:
        pytest.skip(f"SLURM cannot be had here: {started.stderr.strip()}")
    assert started.returncode == 0, started.stderr
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                            check=True).stdout
    return Path(re.search(r"^JobCompLoc\s*=\s*(\S+)", config, re.MULTILINE).group(1))


def _jobs_of(study: Path, *, every_state: bool = True) -> dict[int, str]:
    """Jobs of ``study`` in SLURM's queue, by id, with their comment (the rule): in any state,
    or only those still queued or running."""
    listed = subprocess.run(["squeue", "--noheader", "--format=%i|%k|%Z",
                             *(["--states=all"] if every_state else [])],
                            capture_output=True, text=True).stdout
    return {int(job): comment for job, comment, workdir in
            (line.split("|", 2) for line in listed.splitlines())
            if Path(workdir.strip()) == study}


def _cancel_jobs_of(study: Path) -> None:
    """Cancel the jobs of ``study`` still queued or running, and nothing else."""
    ours = _jobs_of(study, every_state=False)
    if ours:
        subprocess.run(["scancel", *map(str, ours)])


def run_on_slurm(study: Path, *args: str, config: dict, timeout: int = 420) -> str:
    """Run the workflow in ``study`` through the SLURM profile; return Snakemake's output."""
    cfg = study / "test-config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(study),
           "--configfile", str(cfg), *SLURM_ARGS, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=study, env={**os.environ, "PYTHONHASHSEED": "0"})
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # SIGINT, not SIGTERM: Snakemake scancels its jobs
        try:
            output, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} ran past {timeout} s:\n{output[-5000:]}")
    finally:
        _cancel_jobs_of(study)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{output[-5000:]}"
    return output


def dry_run_resources(study: Path, *targets: str) -> dict[str, dict[str, str]]:
    """Resources per rule of a dry run through the profile with config.yaml's
    train_resources and inference_resources; needs no cluster."""
    dry = snakemake(study, "-n", *SLURM_ARGS, *targets, config=DEFAULT_RESOURCES)
    resources = {}
    for block in re.split(r"\n(?=(?:rule|checkpoint) \w+:)", dry.stdout + dry.stderr):
        rule = re.match(r"(?:rule|checkpoint) (\w+):", block)
        if rule:
            resources[rule.group(1)] = _fields(re.search(r"resources: (.*)", block).group(1)
                                               .replace(", ", " "))
    return resources


def test_profile_asks_for_a_gpu_for_training_only(tmp_path: Path):
    resources = dry_run_resources(tmp_path, *TARGETS)
    assert set(resources) == {"synthesize_subject", "preprocess", "qc_table", "split", "train"}
    # config/config.yaml train_resources, which the executor turns into --gpus=1 --mem -t
    assert {key: resources["train"][key] for key in ("gpu", "mem_mb", "runtime")} == {
        "gpu": "1", "mem_mb": "32000", "runtime": "720"}
    assert not any("gpu" in fields for rule, fields in resources.items() if rule != "train")


@pytest.fixture(scope="module")
def slurm_study(job_records: Path, tmp_path_factory) -> tuple[Path, str]:
    """One model trained through SLURM: the study folder and Snakemake's output."""
    study = tmp_path_factory.mktemp("slurm")
    return study, run_on_slurm(study, *TARGETS, config=CONFIG)


def test_every_job_runs_as_a_slurm_job(slurm_study, job_records: Path):
    study, output = slurm_study
    assert "localrule" not in output
    submitted = {int(job): re.search(r"/rule_(\w+?)/", log).group(1)
                 for job, log in SUBMITTED.findall(output)}
    assert Counter(submitted.values()) == job_counts(output) == {
        "synthesize_subject": 4, "preprocess": 4, "qc_table": 1, "split": 1, "train": 1}

    completed = {}  # a requeued job has an earlier record too: the last one counts
    for line in job_records.read_text().splitlines():
        record = _fields(line)
        if int(record["JobId"]) in submitted:
            completed[int(record["JobId"])] = record
    assert set(completed) == set(submitted)  # SLURM's own record of each job
    for job, rule in submitted.items():
        assert completed[job]["JobState"] == "COMPLETED"
        assert Path(completed[job]["WorkDir"]) == study
        shown = _job(job)
        assert shown["Comment"].startswith(f"rule_{rule}")
        assert shown["Requeue"] == "1"  # the profile's slurm-requeue
        assert "gpu" not in " ".join(shown.get(key, "") for key in
                                     ("TRES", "TresPerNode", "TresPerJob", "Gres"))
        if rule == "train":  # the test's train_resources: 2 threads, 3000 MB, 20 minutes
            assert shown["TRES"].startswith("cpu=2,mem=3000M")
            assert shown["TimeLimit"] == "00:20:00"

    for subject in ("BraTS20_Training_001", "BraTS20_Training_004"):
        assert (study / f"results/preprocessed/{subject}/image.npy").exists()
    assert (study / "results/split.json").exists()
    assert (study / f"results/models/{MODEL}.keras").stat().st_size > 10_000

    # Now that the split is known, the prediction job is listed: it asks for a GPU, evaluate
    # not (and each subject's files are put in place by a local job, no SLURM job).
    resources = dry_run_resources(study, f"results/metrics/{MODEL}.csv")
    assert set(resources) == {"predict_batch", "predict", "evaluate"}
    assert resources["predict_batch"]["gpu"] == "1"
    assert "gpu" not in resources["evaluate"] and "gpu" not in resources["predict"]

    # With the default train_resources the train job asks for a GPU, which this node refuses.
    # (--cores 8 replaces the helper's --cores 2, which would lower the job's 4 threads to 2)
    refused = snakemake(study, "--forcerun", "train", "--rerun-triggers", "mtime",
                        "--retries", "0", "--cores", "8", *SLURM_ARGS, TARGETS[0],
                        config=DEFAULT_RESOURCES,
                        check=False)
    log = refused.stdout + refused.stderr
    assert refused.returncode != 0
    sbatch = next(line for line in log.splitlines() if line.strip().startswith("sbatch --"))
    assert "--comment rule_train" in sbatch
    assert all(arg in sbatch.split() for arg in ("--gpus=1", "--requeue", "--cpus-per-task=4"))
    assert "-t 720 --mem 32000" in sbatch
    assert "Invalid generic resource" in log


def _job(job: int) -> dict[str, str]:
    return _fields(subprocess.run(["scontrol", "--oneliner", "show", "job", str(job)],
                                  capture_output=True, text=True, check=True).stdout)


def test_a_requeued_training_job_resumes_from_its_backup(slurm_study, tmp_path: Path):
    """What preemption with PreemptMode=REQUEUE does: SLURM stops the running train job and
    queues it again. It must resume at the next epoch, and Snakemake must see one job finish."""
    study = tmp_path / "study"
    shutil.copytree(slurm_study[0], study, symlinks=True)  # split and preprocessing done
    epochs = 20
    config = copy.deepcopy(CONFIG)
    config["training"] = {"epochs": epochs, "steps_per_epoch": 4}  # only train is stale
    (study / "test-config.yaml").write_text(yaml.safe_dump(config))
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(study),
           "--configfile", str(study / "test-config.yaml"), *SLURM_ARGS, TARGETS[0]]
    log = open(tmp_path / "snakemake.log", "w+")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=study,
                            env={**os.environ, "PYTHONHASHSEED": "0"})
    metadata = study / f"state/train/{MODEL}/backup/training_metadata.json"
    try:
        deadline = time.monotonic() + 300
        while (requeued_at := backed_up_epoch(metadata)) is None:
            assert proc.poll() is None and time.monotonic() < deadline, (
                "training ended or took too long before an epoch was backed up")
            time.sleep(0.05)
        trains = [job for job, comment in _jobs_of(study).items()
                  if comment.startswith("rule_train")]
        assert len(trains) == 1, f"one train job expected in the queue: {_jobs_of(study)}"
        job = trains[0]
        subprocess.run(["scontrol", "requeue", str(job)], check=True)
        # SLURM holds a requeued job for about 2 minutes (its BeginTime); release it now. The
        # hold is set once the job is back in the queue: an update before then is overridden.
        released = False
        while not released:
            state = _job(job)
            assert state["JobState"] in ("RUNNING", "COMPLETING", "REQUEUED", "PENDING"), (
                f"job {job} left the queue before its hold was released: {state}")
            assert time.monotonic() < deadline, f"job {job} was not requeued: {state}"
            if state["JobState"] == "PENDING" and state["Reason"] == "BeginTime":
                subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"],
                               check=True)
                released = True
            time.sleep(0.2)
        assert proc.wait(timeout=400) == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # SIGINT: Snakemake scancels its jobs
            proc.wait(timeout=120)
        _cancel_jobs_of(study)
        log.close()
    output = (tmp_path / "snakemake.log").read_text()
    assert job_counts(output) == {"train": 1}
    assert output.count("has been submitted with SLURM jobid") == 1  # requeued, not resubmitted
    shown = _job(job)
    assert shown["JobState"] == "COMPLETED" and shown["Restarts"] == "1"
    assert requeued_at < epochs - 1  # stopped before its last epoch
    summary = json.loads((study / f"results/models/{MODEL}.json").read_text())
    assert summary["resumed"] is True and summary["epochs_run"] == epochs
    history = pd.read_csv(study / f"results/models/{MODEL}.history.csv")
    assert list(history["epoch"]) == list(range(epochs))  # each epoch once: resumed, not redone


@pytest.mark.slow
def test_the_whole_demo_runs_through_slurm(job_records: Path, tmp_path: Path):
    """The README's demo (every rule, three models, the report) with each job an sbatch job.
    About 12 minutes on 2 cores: opt-in (``--run-slow``); CI runs the reduced DAG above."""
    no_gpu = {"train_resources": {"threads": 2, "gpu": 0, "mem_mb": 8000, "runtime": 60},
              "inference_resources": {"threads": 1, "gpu": 0, "mem_mb": 4000, "runtime": 30}}
    output = run_on_slurm(tmp_path, config=no_gpu, timeout=2400)
    submitted = {int(job): re.search(r"/rule_(\w+?)/", log).group(1)
                 for job, log in SUBMITTED.findall(output)}
    # every job of the demo but the target `all` and the local ones (the jobs after the split
    # checkpoint are not in Snakemake's first job table): one prediction job per model
    assert Counter(submitted.values()) == {
        "synthesize_subject": 12, "preprocess": 12, "qc_table": 1, "split": 1, "train": 3,
        "predict_batch": 3, "evaluate": 3, "tables": 1, "report": 1}
    assert job_counts(output)["all"] == 1 and "localrule all" in output
    states = {}
    for line in job_records.read_text().splitlines():
        record = _fields(line)
        if int(record["JobId"]) in submitted:
            states[int(record["JobId"])] = record["JobState"]
    assert states == {job: "COMPLETED" for job in submitted}
    assert "<table" in (tmp_path / "reports/report.html").read_text()

"""``brats-unet doctor``: the machine's CPU, GPUs and back ends, and the choices a job makes."""

import subprocess
import sys
from pathlib import Path

import yaml

from brats_unet.doctor import BackendProbe, doctor_lines

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())


def _report(nvidia_gpu: bool, tf_gpus=(), torch_gpus=(), torch_version="2.13.0", **config):
    probes = {"tensorflow": BackendProbe("tensorflow", "2.21.0", tuple(tf_gpus)),
              "torch": BackendProbe("torch", torch_version, tuple(torch_gpus))}
    return doctor_lines(cpu="Some CPU, 2 CPUs usable, avx2", nvidia_gpu=nvidia_gpu,
                        probes=probes, config={**CONFIG, **config})


def test_on_a_cpu_the_job_takes_tensorflow_in_float32_without_xla():
    lines = _report(False)
    assert "NVIDIA GPU: none" in lines
    assert "  tensorflow 2.21.0: GPUs it can use: none" in lines
    assert any(line.startswith("A training job here would run on: tensorflow (auto: no GPU")
               for line in lines)
    assert "  on the CPU" in lines and "  precision: float32 (config: auto)" in lines
    assert "  XLA (jit_compile): off (config: auto)" in lines
    assert "CPU threads: a training job 4, a prediction job 1 (config; Snakemake lowers them " \
           "to --cores)" in lines
    assert not [line for line in lines if line.startswith("WARNING")]


def test_a_gpu_tensorflow_sees_gets_mixed_precision_and_xla():
    lines = _report(True, tf_gpus=["/physical_device:GPU:0", "/physical_device:GPU:1"])
    assert "A training job here would run on: tensorflow (auto: TensorFlow sees the GPU)" in lines
    assert "  on 2 GPUs" in lines and "  precision: mixed_float16 (config: auto)" in lines
    assert "  XLA (jit_compile): on (config: auto)" in lines


def test_a_gpu_only_pytorch_can_use_is_noted_with_the_fix():
    lines = _report(True, torch_gpus=["NVIDIA H200"])
    assert any("would run on: torch (auto: TensorFlow sees no GPU" in line for line in lines)
    assert "  torch 2.13.0: GPUs it can use: NVIDIA H200" in lines
    assert "  XLA (jit_compile): off (config: auto)" in lines  # XLA only with TensorFlow
    assert not [line for line in lines if line.startswith("WARNING")]  # it trains on the GPU
    (note,) = [line for line in lines if line.startswith("NOTE")]
    assert "TensorFlow sees none of the GPUs (torch does)" in note and "BRATS_UNET_EXTRAS=gpu" in note


def test_a_gpu_no_back_end_can_use_is_a_warning_with_the_fix():
    lines = _report(True)
    assert "  on the CPU" in lines
    (warning,) = [line for line in lines if line.startswith("WARNING")]
    assert "tensorflow sees none of it: the job would train on the CPU" in warning
    assert "BRATS_UNET_EXTRAS=gpu" in warning


def test_a_configured_back_end_that_is_missing_is_a_warning():
    lines = _report(False, torch_version=None, backend="torch")
    assert "  torch: not installed" in lines
    assert any(line.startswith("WARNING: torch is not installed") and
               "BRATS_UNET_EXTRAS=torch bash bin/setup" in line for line in lines)


def test_the_config_decides_precision_and_xla():
    lines = _report(False, training={**CONFIG["training"], "precision": "mixed_bfloat16",
                                     "jit_compile": True})
    assert "  precision: mixed_bfloat16 (config: mixed_bfloat16)" in lines
    assert "  XLA (jit_compile): on (config: True)" in lines


def test_the_command_reports_this_machine():
    done = subprocess.run([str(Path(sys.executable).with_name("brats-unet")), "doctor",
                           "--config", str(REPO / "config/config.yaml"),
                           str(REPO / "config/presets/cpu.yaml")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr
    assert done.stdout.startswith("CPU: ") and "Keras back ends:" in done.stdout
    assert "  tensorflow 2." in done.stdout and "A training job here would run on:" in done.stdout
    assert "CPU threads: a training job 8, a prediction job 2" in done.stdout  # the preset's

"""A job given a GPU that torch cannot use stops at once with a diagnosis (issue 36, item 5)."""

import os
import subprocess
import sys

import pytest

from dcobench import gpucheck

PROBE = "from dcobench.io import device; print('device', device())"


def _probe(**env):
    base = {k: v for k, v in os.environ.items()
            if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS",
                         "DCOBENCH_ALLOW_CPU")}
    return subprocess.run([sys.executable, "-c", PROBE], env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_job_given_a_gpu_without_cuda_stops_with_diagnosis():
    out = _probe(CUDA_VISIBLE_DEVICES="0")
    assert out.returncode != 0 and "device cpu" not in out.stdout
    assert "GPUUnavailable" in out.stderr
    assert "CUDA_VISIBLE_DEVICES=0" in out.stderr and "torch.version.cuda" in out.stderr
    assert "nvidia-smi" in out.stderr and "fix:" in out.stderr


def test_no_gpu_given_or_cpu_allowed_runs_on_cpu():
    assert "device cpu" in _probe().stdout
    assert "device cpu" in _probe(CUDA_VISIBLE_DEVICES="0", DCOBENCH_ALLOW_CPU="1").stdout


@pytest.mark.slow
def test_stage_cli_exits_nonzero_with_a_one_line_reason(tmp_path):
    """Through `python -m dcobench` the diagnosis is logged as an error, not a traceback."""
    base = {k: v for k, v in os.environ.items() if k != "DCOBENCH_ALLOW_CPU"}
    out = subprocess.run([sys.executable, "-m", "dcobench", "priors", "--class-noun", "dog",
                          "--out", str(tmp_path / "p"), "--base-model", "tiny-sdxl"],
                         env={**base, "SLURM_JOB_GPUS": "3", "DCOBENCH_CACHE": str(tmp_path)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "given a GPU (SLURM_JOB_GPUS=3)" in out.stderr and "Traceback" not in out.stderr


def test_assignment_variables():
    assert gpucheck.gpu_assigned({}) is None
    assert gpucheck.gpu_assigned({"CUDA_VISIBLE_DEVICES": ""}) is None
    assert gpucheck.gpu_assigned({"CUDA_VISIBLE_DEVICES": "-1"}) is None
    assert gpucheck.gpu_assigned({"SLURM_JOB_GPUS": "0,1"}) == "SLURM_JOB_GPUS=0,1"


def test_diagnosis_names_the_driver_to_install():
    assert gpucheck.min_driver("13.0") == "580" and gpucheck.min_driver("12.8") == "570"
    assert gpucheck.min_driver(None) is None
    old = gpucheck.diagnosis("CUDA_VISIBLE_DEVICES=0", "13.0", "2.14.1+cu130", "550.54.15")
    assert "needs driver >= 580" in old and "550.54.15" in old
    cpu = gpucheck.diagnosis("CUDA_VISIBLE_DEVICES=0", None, "2.14.1+cpu", None)
    assert "CPU-only build" in cpu
    missing = gpucheck.diagnosis("CUDA_VISIBLE_DEVICES=0", "13.0", "2.14.1", None)
    assert "nvidia-smi not found" in missing

"""Is the GPU a job was given usable by this torch build? Diagnosis in words when it is not.

A SLURM job that asked for a GPU gets `CUDA_VISIBLE_DEVICES` / `SLURM_JOB_GPUS`. If torch then
sees no CUDA device, the usual cause is a driver older than the CUDA build torch was compiled
for (the lock pins a cu130 build: driver >= 580); falling back to the CPU would run the job
until its time limit, so `dcobench.io.device()` stops at once with `diagnosis()`.

`DCOBENCH_ALLOW_CPU=1` lets such a job run on the CPU on purpose (the local SLURM test cluster,
whose GPUs are /dev/null links).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

# CUDA (major, minor) of a torch build -> the minimum Linux driver that ships with that CUDA
# (NVIDIA CUDA Toolkit release notes, table 3 "CUDA Toolkit and Corresponding Driver Versions").
MIN_DRIVER = {(11, 8): "520", (12, 1): "530", (12, 4): "550", (12, 6): "560", (12, 8): "570",
              (12, 9): "575", (13, 0): "580"}
TRUE = ("1", "true", "yes", "on")


class GPUUnavailable(RuntimeError):
    """A job was given a GPU but torch cannot use it."""


def gpu_assigned(env: dict | None = None) -> str | None:
    """The variable that says this process was given a GPU (`NAME=value`), or None."""
    env = os.environ if env is None else env
    for name in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS"):
        value = env.get(name, "").strip()
        if value and value not in ("-1", "NoDevFiles", "none"):
            return f"{name}={value}"
    return None


def driver_version(timeout: float = 10.0) -> str | None:
    """The NVIDIA driver version from `nvidia-smi`, None without it (or when it fails)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


def min_driver(cuda: str | None) -> str | None:
    """The minimum driver for torch's CUDA build `cuda` ("13.0"), None for a CPU build."""
    match = re.match(r"(\d+)\.(\d+)", cuda or "")
    if not match:
        return None
    want = (int(match[1]), int(match[2]))
    known = [v for k, v in sorted(MIN_DRIVER.items()) if k <= want]
    return known[-1] if known else None


def _older(driver: str, minimum: str) -> bool:
    return tuple(int(x) for x in re.findall(r"\d+", driver)[:1]) < (int(minimum),)


def diagnosis(assigned: str | None, cuda: str | None, torch_version: str,
              driver: str | None) -> str:
    """Why a job given a GPU sees no CUDA device, and what to install (a pure function)."""
    lines = [f"this job was given a GPU ({assigned}) but torch sees no CUDA device",
             f"torch {torch_version}, torch.version.cuda = {cuda}",
             f"NVIDIA driver (nvidia-smi): {driver or 'nvidia-smi not found or failed'}"]
    need = min_driver(cuda)
    if cuda is None:
        lines.append("fix: this torch is a CPU-only build; install a CUDA build of torch "
                     "(the project's lock: requirements/) in the job's environment")
    elif driver and need and _older(driver, need):
        lines.append(f"fix: torch's CUDA {cuda} build needs driver >= {need}; ask the admins "
                     f"for a newer driver on this partition, or install a torch built for the "
                     f"driver's CUDA (pip install torch --index-url "
                     f"https://download.pytorch.org/whl/cu<XY>, cu<XY> <= the driver's CUDA "
                     f"shown by nvidia-smi)")
    elif driver is None:
        lines.append("fix: no working nvidia-smi on this node: the job may be on a node without "
                     "an NVIDIA GPU (check the partition and gres in slurm/config.yaml)")
    else:
        lines.append(f"fix: driver {driver} should serve CUDA {cuda} (needs >= {need}); check "
                     "`nvidia-smi` and `python -c 'import torch; torch.cuda.init()'` on the node")
    lines.append("set DCOBENCH_ALLOW_CPU=1 to run on the CPU anyway (slow)")
    return "\n  ".join(lines)


def check_gpu_usable(cuda_available: bool) -> None:
    """Raise GPUUnavailable when a GPU was assigned but CUDA is not available."""
    assigned = gpu_assigned()
    if cuda_available or assigned is None:
        return
    if os.environ.get("DCOBENCH_ALLOW_CPU", "").strip().lower() in TRUE:
        return
    import torch

    raise GPUUnavailable(diagnosis(assigned, torch.version.cuda, torch.__version__,
                                   driver_version()))

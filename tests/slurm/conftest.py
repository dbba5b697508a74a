"""A real one-node SLURM cluster on 127.0.0.1 for the tests in this folder (slurm/local/cluster.sh).

Started once per session (installing slurm-wlm, slurmdbd, MariaDB and munge with apt when missing),
stopped by PID at the end, also when a test fails. Without root, or when the packages are missing
and apt cannot install them, every test here is skipped with the reason printed in the summary.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "slurm" / "local" / "cluster.sh"
# the shipped profile asks SDXL-sized GPU nodes for; the fake node advertises that much
# two partitions on the one node, as the shipped profile routes jobs: CPU rules to the default
# `cpu`, GPU rules to `gpu`
ENV = {"LOCAL_SLURM_OVERSIZE": "1", "LOCAL_SLURM_CPUS": "16", "LOCAL_SLURM_MEM_MB": "256000",
       "LOCAL_SLURM_GPUS": "2", "LOCAL_SLURM_PARTITION": "cpu", "LOCAL_SLURM_GPU_PARTITION": "gpu"}
# the fake GPUs are /dev/null links: jobs given one run on the CPU on purpose (dcobench.gpucheck)
os.environ["DCOBENCH_ALLOW_CPU"] = "1"
SKIPPED: list[str] = []
SUMMARY: list[str] = []  # lines for the terminal summary (CI logs show them on success)


def _why_not() -> str | None:
    if os.environ.get("DCOBENCH_SLURM_TESTS", "1") == "0":
        return "DCOBENCH_SLURM_TESTS=0"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not root (the local SLURM harness starts daemons as root)"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "SLURM is not installed and apt-get is not available to install it"
    if shutil.which("bash") is None:
        return "bash is missing"
    return None


def _skip(reason: str):
    SKIPPED.append(reason)
    pytest.skip(f"local SLURM cluster unavailable: {reason}")


def _cluster(action: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CLUSTER), action], env={**os.environ, **ENV},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def slurm_cluster(request):
    """Start the cluster (or reuse one already running, which is then left running)."""
    reason = _why_not()
    if reason:
        _skip(reason)
    was_running = "slurmctld: running" in _cluster("status", 60).stdout
    started = _cluster("start")
    print(started.stderr[-2000:])
    if not was_running:
        request.addfinalizer(lambda: print(_cluster("stop", 120).stderr))
    if started.returncode != 0:
        if shutil.which("slurmctld") is None:  # apt could not install (offline, no mirror)
            _skip(f"installing SLURM with apt failed: {started.stderr.strip()[-300:]}")
        pytest.fail(f"local SLURM did not start:\n{started.stderr[-3000:]}")
    return {"partition": ENV["LOCAL_SLURM_PARTITION"], "gpu_partition": ENV["LOCAL_SLURM_GPU_PARTITION"]}


@pytest.fixture
def slurm_summary():
    """Append lines here to have them printed in the terminal summary, also when tests pass."""
    return SUMMARY


def pytest_terminal_summary(terminalreporter):
    for line in SUMMARY:
        terminalreporter.write_line(line, green=True)
    for reason in dict.fromkeys(SKIPPED):
        terminalreporter.write_line(f"SLURM tests SKIPPED: {reason}", yellow=True, bold=True)

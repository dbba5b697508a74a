"""SLURM faults on the local one-node cluster (tests/slurm's harness; skipped where it cannot
start): a launched sampling job cancelled with `scancel` mid-run, and the node drained mid-run.
Either the job is requeued or the rerun completes it; images finished before the fault are not
redone; the final index.csv verifies against its manifest."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
from faultkit import REPO, mtimes, verified

pytestmark = pytest.mark.slow
OPTIONS = {"guides": ["cfg"], "num_prompts": 2, "seeds": [0, 1], "steps": 10, "batch_size": 1,
           "resolution": 64, "mixed_precision": "fp32"}
DONE = {"COMPLETED"}
ENDED = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}


def _launch(stages, out, log_dir) -> str:
    argv = ["sample", "--subject", str(stages.concept), "--out", str(out), "--base-model",
            "tiny-sdxl", "--options", json.dumps(OPTIONS)]
    run = subprocess.run([sys.executable, "-m", "dcobench", "launch", "--gpus", "1", "--time",
                          "10", "--mem", "2000", "--log-dir", str(log_dir), "--no-wait", "--",
                          *argv], cwd=REPO, env=stages.env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    match = re.search(r"job\(s\): (\S+)", run.stdout)
    assert match, run.stdout
    return match.group(1)


def _state(job) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True,
                         text=True).stdout.strip()
    if out:
        return out.split()[0]
    rows = subprocess.run(["sacct", "-D", "-X", "-n", "-P", "-j", job, "-o", "State"],
                          capture_output=True, text=True).stdout.split()
    return rows[-1].split()[0] if rows else "UNKNOWN"


def _wait(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _first_image(out):
    _wait(lambda: list(out.glob("cfg/p*.png")), 600, "the first image")


def test_scancel_mid_run_then_requeue_or_rerun_completes(slurm_cluster, stages, tmp_path):
    out = tmp_path / "samples"
    job = _launch(stages, out, tmp_path / "launch")
    _first_image(out)
    subprocess.run(["scancel", job], check=True)
    _wait(lambda: _state(job) in ENDED | {"PENDING", "REQUEUED"}, 300, f"job {job} to stop")
    finished = {k: v for k, v in mtimes(out).items() if k.endswith(".png")}
    if _state(job) not in DONE:  # cancelled, not requeued: the researcher reruns the job
        time.sleep(2)
        if _state(job) in ENDED:
            print(f"job {job} {_state(job)}: relaunched")
            job = _launch(stages, out, tmp_path / "launch2")
    _wait(lambda: _state(job) in ENDED, 900, f"job {job} to end")
    assert _state(job) == "COMPLETED", _state(job)
    verified(out, "cfg/index.csv")
    assert len(list(out.glob("cfg/p*.png"))) == 4
    assert {k: v for k, v in mtimes(out).items() if k in finished} == finished  # not redone


def test_node_drained_mid_run_finishes_and_queues_the_rest(slurm_cluster, stages, tmp_path):
    node = "localhost"
    first, second = tmp_path / "first", tmp_path / "second"
    job = _launch(stages, first, tmp_path / "launch")
    _first_image(first)
    try:
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=drain",
                        "reason=dcobench fault test"], check=True)
        queued = _launch(stages, second, tmp_path / "launch2")
        _wait(lambda: _state(job) in ENDED, 900, f"job {job} to end on the draining node")
        assert _state(job) == "COMPLETED"  # a drain lets the running job finish
        verified(first, "cfg/index.csv")
        time.sleep(3)
        assert _state(queued) == "PENDING"  # nothing new starts on a drained node
    finally:
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"])
    _wait(lambda: _state(queued) in ENDED, 900, f"job {queued} to end after resume")
    assert _state(queued) == "COMPLETED"
    verified(second, "cfg/index.csv")

"""`python -m dcobench launch` (submitit) against the local SLURM cluster, and locally."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _launch(tmp_path, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "dcobench", "launch", "--log-dir",
                           str(tmp_path / "launch"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)


def _job_ids(stdout):
    match = re.search(r"submitted \d+ \w+ job\(s\): ([\w ]+?) \(logs", stdout)
    assert match, stdout
    return match.group(1).split()


def _sacct(job, rows=1, wait_s=60.0):
    """Accounting rows of a job (one per array task). slurmdbd records them asynchronously, so
    on a loaded machine a finished task can be missing for a while, or listed with a field still
    empty (seen: Timelimit ''): poll until `rows` are there with every field filled (or `wait_s`
    passes, and the caller's assertion reports what was found)."""
    deadline = time.monotonic() + wait_s
    while True:
        out = subprocess.run(["sacct", "-n", "-P", "-X", "-j", job, "-o",
                              "JobID,State,AllocTRES,Timelimit"],
                             capture_output=True, text=True, check=True).stdout
        found = [row.split("|") for row in out.splitlines() if row]
        complete = len(found) >= rows and all(all(field for field in row) for row in found)
        if complete or time.monotonic() > deadline:
            return found
        time.sleep(2)


@pytest.mark.slow
def test_launch_one_stage_with_profile_resources(slurm_cluster, tmp_path):
    root = tmp_path / "data"
    out = _launch(tmp_path, "--rule", "train", "--", "prepare", "demo", "--root", str(root),
                  "--names", "toy_robot")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    (job,) = _job_ids(out.stdout)
    assert f"job {job}: done" in out.stdout
    assert (root / "toy_robot" / "concept.yaml").exists()
    ((_, state, tres, limit),) = _sacct(job)
    # the train rule's resources from slurm/config.yaml: 1 GPU, 4 CPUs, 48000 MB, 240 min
    assert state == "COMPLETED"
    assert "gres/gpu=1" in tres and "cpu=4" in tres and "mem=48000M" in tres, tres
    assert limit == "04:00:00"
    assert list((tmp_path / "launch").glob(f"{job}_*_log.out"))


@pytest.mark.slow
def test_launch_sweep_is_a_job_array(slurm_cluster, tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump([{"root": str(tmp_path / "a"), "names": "toy_robot"},
                                     {"root": str(tmp_path / "b"), "names": "spotted_mug"}]))
    out = _launch(tmp_path, "--gpus", "0", "--time", "5", "--mem", "1000", "--sweep", str(sweep),
                  "--", "prepare", "demo", "--root", "unused", "--names", "unused")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    jobs = _job_ids(out.stdout)
    assert len(jobs) == 2 and len({j.split("_")[0] for j in jobs}) == 1  # one array, two tasks
    assert (tmp_path / "a" / "toy_robot" / "concept.yaml").exists()
    assert (tmp_path / "b" / "spotted_mug" / "concept.yaml").exists()
    assert not (REPO / "unused").exists()
    rows = _sacct(jobs[0].split("_")[0], rows=2)
    assert len(rows) == 2 and all(r[1] == "COMPLETED" and "gres/gpu" not in r[2] for r in rows)


@pytest.mark.slow
def test_launch_failure_is_reported(slurm_cluster, tmp_path):
    out = _launch(tmp_path, "--gpus", "0", "--time", "5", "--mem", "1000", "--", "prepare",
                  "validate", "--concepts", str(tmp_path / "missing"), "--out", str(tmp_path / "x.json"))
    assert out.returncode == 1
    assert "FAILED" in out.stderr and "1 of 1 launched job(s) failed" in out.stderr


def test_launch_runs_locally_without_slurm(tmp_path):
    root = tmp_path / "data"
    out = _launch(tmp_path, "--cluster", "local", "--", "prepare", "demo", "--root", str(root),
                  "--names", "toy_robot")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert (root / "toy_robot" / "concept.yaml").exists()

"""Preemption under SLURM: a launched sampling job that gets SIGTERM mid-run (as at preemption
or at the profile's --signal warning) flushes its batch, requeues itself and resumes; the
result equals an uninterrupted local run."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
OPTIONS = {"guides": ["cfg"], "num_prompts": 2, "seeds": [0, 1], "steps": 10, "batch_size": 1,
           "resolution": 64}


def _sample_argv(concept, out):
    return ["sample", "--subject", str(concept), "--out", str(out), "--base-model", "tiny-sdxl",
            "--options", json.dumps(OPTIONS)]


def _states(job):
    out = subprocess.run(["sacct", "-D", "-X", "-n", "-P", "-j", job, "-o", "State"],
                         capture_output=True, text=True).stdout
    return out.split()


def _wait(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_sigterm_requeues_launched_job_and_resumes(slurm_cluster, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DCOBENCH_CACHE": str(tmp_path / "models")}
    py = [sys.executable, "-m", "dcobench"]
    subprocess.run([*py, "prepare", "demo", "--root", str(tmp_path / "data"), "--names",
                    "toy_robot"], env=env, check=True, capture_output=True)
    concept, whole, cut = tmp_path / "data" / "toy_robot", tmp_path / "whole", tmp_path / "cut"
    ref = subprocess.run([*py, *_sample_argv(concept, whole)], env=env, capture_output=True,
                         text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]

    out = subprocess.run([*py, "launch", "--gpus", "1", "--time", "10", "--mem", "2000",
                          "--log-dir", str(tmp_path / "launch"), "--no-wait", "--",
                          *_sample_argv(concept, cut)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    job = out.stdout.split("job(s): ")[1].split()[0]
    _wait(lambda: list(cut.glob("cfg/p*.png")), 600, "the first image")
    subprocess.run(["scancel", "--signal=TERM", job], check=True)  # to the job's steps
    _wait(lambda: "REQUEUED" in _states(job), 300, "the job to requeue itself")
    assert (cut / "cfg" / "index.partial.csv").exists() or (cut / "cfg" / "index.csv").exists()
    _wait(lambda: _states(job)[-1:] == ["COMPLETED"], 900, f"job {job} to complete after requeue")

    files = sorted(p.name for p in (whole / "cfg").glob("p*.png"))
    assert len(files) == 4 and files == sorted(p.name for p in (cut / "cfg").glob("p*.png"))
    assert (cut / "cfg" / "index.csv").read_text() == (whole / "cfg" / "index.csv").read_text()
    assert not (cut / "cfg" / "index.partial.csv").exists()
    for name in files:
        a = np.asarray(Image.open(whole / "cfg" / name), dtype=np.int16)
        b = np.asarray(Image.open(cut / "cfg" / name), dtype=np.int16)
        assert np.abs(a - b).max() <= 2, name

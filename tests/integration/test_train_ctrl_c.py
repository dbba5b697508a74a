"""Ctrl-C (SIGINT) during training saves a resume state like SLURM's SIGTERM; the rerun
continues from it and finishes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from dcobench.models.adapters import LORA_WEIGHT_NAME
from dcobench.signals import EXIT_INTERRUPTED
from dcobench.train import resume

OPTIONS = dict(rank=4, lr=1e-2, ti_lr=1e-2, resolution=64, mixed_precision="fp32", steps=60,
               resume_every=1000, checkpoints=[2])  # no periodic state: only Ctrl-C saves one


@pytest.mark.slow
def test_ctrl_c_saves_a_resume_state_and_the_rerun_continues(model_cache, demo_root, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "dcobench", "train", "--concept", str(demo_root / "toy_robot"),
           "--objective", "db", "--out", str(out), "--options", json.dumps(OPTIONS)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kept, start = resume.resume_dir(out) / "checkpoints" / "step-2", time.time()
    while not kept.is_dir():  # step 2 is done: its checkpoint is kept
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() - start < 300, "training wrote no steps"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err.decode()[-2000:]
    state = torch.load(resume.resume_dir(out) / resume.STATE_FILE, weights_only=True)
    assert 2 <= state["step"] < OPTIONS["steps"]
    assert not (out / LORA_WEIGHT_NAME).exists()  # nothing that looks finished

    done = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"resuming" in done.stderr
    assert (out / LORA_WEIGHT_NAME).exists()
    log = (out / "train_log.csv").read_text().splitlines()
    assert len(log) == OPTIONS["steps"] + 1 and log[-1].startswith(f"{OPTIONS['steps']},")

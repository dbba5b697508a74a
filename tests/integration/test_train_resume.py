"""Resume: a killed or signalled run, rerun, ends with exactly the uninterrupted run's weights."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from dcobench.models.adapters import LORA_WEIGHT_NAME
from dcobench.models.text import EMBEDS_NAME
from dcobench.signals import EXIT_INTERRUPTED
from dcobench.train import resume
from dcobench.train.options import TrainOptions
from dcobench.train.trainer import Trainer, train

OPTIONS = dict(objective="dco", rank=4, lr=1e-2, ti_lr=1e-2, resolution=64, mixed_precision="fp32")


def _trainable(trainer):
    lora = [p.detach().clone() for p in trainer.lora_parameters()]
    rows = [w[i].detach().clone() for w, i in zip(trainer.tokens.tables(trainer.pipe),
                                                   trainer.tokens.ids, strict=True)]
    return lora + rows


def test_trainer_state_round_trip_continues_bit_exactly(model_cache, demo_root, tmp_path):
    opts = TrainOptions(concept_dir=demo_root / "toy_robot", out_dir=tmp_path / "m", steps=6, **OPTIONS)
    torch.manual_seed(0)
    straight = Trainer(opts)
    for _ in range(6):
        straight.step()

    torch.manual_seed(0)
    first = Trainer(opts)
    for _ in range(3):
        first.step()
    resume.save_state(tmp_path / "work", first.state_dict())
    state = torch.load(tmp_path / "work" / resume.STATE_FILE, weights_only=True)
    torch.manual_seed(123)  # a different process: nothing but the state file carries over
    second = Trainer(opts)
    second.load_state_dict(state)
    for _ in range(3):
        second.step()
    for a, b in zip(_trainable(straight), _trainable(second), strict=True):
        assert torch.equal(a, b)


def test_state_of_other_options_is_not_resumed(tmp_path):
    resume.save_state(tmp_path, {"fingerprint": resume.fingerprint({"lr": 1.0}), "step": 3})
    assert resume.load_state(tmp_path, resume.fingerprint({"lr": 1.0}))["step"] == 3
    assert resume.load_state(tmp_path, resume.fingerprint({"lr": 2.0})) is None
    # options that do not change the weights keep the state valid
    assert resume.fingerprint({"lr": 1.0, "out_dir": "a"}) == resume.fingerprint({"lr": 1.0, "out_dir": "b"})
    (tmp_path / resume.STATE_FILE).write_bytes(b"truncated")
    assert resume.load_state(tmp_path, resume.fingerprint({"lr": 1.0})) is None


def _wait_for_state(work, after_step, proc, timeout=120):
    path, start = work / resume.STATE_FILE, time.time()
    while time.time() - start < timeout:
        if path.exists():
            try:
                step = torch.load(path, weights_only=True)["step"]
            except Exception:  # noqa: BLE001 - replaced while reading; try again
                step = -1
            if step > after_step:
                return step
        if proc.poll() is not None:
            pytest.fail(f"training exited early with {proc.returncode}")
        time.sleep(0.02)
    pytest.fail("no resume state was written")


@pytest.mark.slow
def test_sigkill_then_sigterm_then_rerun_equals_uninterrupted(model_cache, demo_root, tmp_path):
    steps, checkpoint = 30, 12
    common = dict(steps=steps, checkpoints=(checkpoint,), resume_every=3, **OPTIONS)
    reference = train(TrainOptions(concept_dir=demo_root / "toy_robot", out_dir=tmp_path / "ref", **common))

    out = tmp_path / "run"
    options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in common.items() if k != "objective"}
    cmd = [sys.executable, "-m", "dcobench", "train", "--concept", str(demo_root / "toy_robot"),
           "--objective", "dco", "--out", str(out), "--options", json.dumps(options)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    work = resume.resume_dir(out)

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed_after = _wait_for_state(work, 0, proc)
    proc.send_signal(signal.SIGKILL)  # no chance to save: resumes from the last periodic state
    proc.wait()
    assert not (out / LORA_WEIGHT_NAME).exists()

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for_state(work, killed_after, proc)
    proc.send_signal(signal.SIGTERM)  # SLURM preemption: finish the step, save, exit 143
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err.decode()[-2000:]
    assert b"resuming" in err and b"rerun the same command to continue" in err
    assert torch.load(work / resume.STATE_FILE, weights_only=True)["step"] < steps
    assert not (out / LORA_WEIGHT_NAME).exists()

    done = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert not work.exists()
    for name in (LORA_WEIGHT_NAME, EMBEDS_NAME, f"checkpoints/step-{checkpoint}/{LORA_WEIGHT_NAME}"):
        ours, theirs = load_file(str(out / name)), load_file(str(reference / name))
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert torch.equal(ours[key], theirs[key]), (name, key)
    log = (out / "train_log.csv").read_text().splitlines()
    assert len(log) == steps + 1 and log[-1].startswith(f"{steps},")


def test_resume_in_another_environment_is_recorded_in_the_manifest(model_cache, demo_root, tmp_path):
    """A state written under 1 torch thread and resumed under 2 (a SLURM requeue onto another
    node type) continues, and the model's manifest names both environments."""
    from dcobench.train.trainer import _options_json

    opts = TrainOptions(concept_dir=demo_root / "toy_robot", out_dir=tmp_path / "m", steps=4, **OPTIONS)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        first = Trainer(opts)
        for _ in range(2):
            first.step()
        resume.save_state(resume.resume_dir(opts.out_dir),
                          {**first.state_dict(), "step": 2, "log": [], "elapsed": 0.0,
                           "fingerprint": resume.fingerprint(_options_json(opts))})
        torch.set_num_threads(2)
        out = train(opts)
    finally:
        torch.set_num_threads(threads)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["resumed_across"]["before"]["torch_threads"] == 1
    assert manifest["resumed_across"]["now"]["torch_threads"] == 2

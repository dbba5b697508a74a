"""`kill -9` of a training, a sampling and a scoring job at seeded random points (after the
stage's first progress line: anywhere in computing or writing): no partial output is taken as complete, and running the same
command again finishes the job, redoing nothing that was finished."""

from __future__ import annotations

import pytest
from faultkit import EMBEDS, LORA, complete_or_absent, leftovers, mtimes, verified

pytestmark = pytest.mark.slow
SEEDS = (0, 1)


def whole_images(folder):
    """Every PNG under a final name decodes whole; an index.csv lists only images present."""
    from PIL import Image

    for png in folder.glob("*.png") if folder.exists() else []:
        with Image.open(png) as im:
            im.load()
    if (folder / "index.csv").exists():
        import pandas as pd

        listed = pd.read_csv(folder / "index.csv")["file"]
        assert all((folder / f).is_file() for f in listed)


MARKERS = {"train": "train dco", "sample": "sample cfg", "score": "embed "}  # first progress


def _killed(stages, stage, argv, seed, tmp_path):
    delay, rc = stages.kill_at_random_point(argv, seed, stages.durations[stage],
                                            tmp_path / "killed.log", MARKERS[stage])
    last = (tmp_path / "killed.log").read_text().replace("\r", "\n").strip().splitlines()[-1:]
    print(f"{stage} seed {seed}: kill after {delay:.1f} s -> {rc}; last output: {last}")
    assert rc in (None, 0, -9)  # 0: it ended between the timeout and the kill


@pytest.mark.parametrize("seed", SEEDS)
def test_training_killed(stages, trained, tmp_path, seed):
    out, argv = tmp_path / "model", stages.train_argv(tmp_path / "model", steps=6)
    _killed(stages, "train", argv, seed, tmp_path)  # 6 steps: the kill lands in training or saving
    if out.exists():
        complete_or_absent(out, (LORA, EMBEDS, "train_log.csv"))
    stages.ok(argv)
    verified(out, LORA, EMBEDS, "train_log.csv")
    assert not leftovers(out), leftovers(out)


@pytest.mark.parametrize("seed", SEEDS)
def test_sampling_killed(stages, trained, sampled, tmp_path, seed):
    out = tmp_path / "samples"
    _killed(stages, "sample", stages.sample_argv(trained, out), seed, tmp_path)
    whole_images(out / "cfg")
    kept = {k: v for k, v in mtimes(out).items() if k.endswith(".png")} if out.exists() else {}
    stages.ok(stages.sample_argv(trained, out))
    verified(out, "cfg/index.csv", "cfg/p000_s0.png", "cfg/p001_s0.png")
    assert {k: v for k, v in mtimes(out).items() if k in kept} == kept  # finished images kept
    assert (out / "cfg" / "index.csv").read_text() == (sampled / "cfg" / "index.csv").read_text()
    assert not leftovers(out), leftovers(out)


@pytest.mark.parametrize("seed", SEEDS)
def test_scoring_killed(stages, sampled, scored, tmp_path, seed):
    out = tmp_path / "scores"
    _killed(stages, "score", stages.score_argv(sampled / "cfg", out), seed, tmp_path)
    if out.exists():
        complete_or_absent(out, ("cfg.csv",))
    stages.ok(stages.score_argv(sampled / "cfg", out))
    verified(out, "cfg.csv")
    assert (out / "cfg.csv").read_text() == (scored / "cfg.csv").read_text()  # deterministic
    assert not leftovers(out), leftovers(out)

"""The disk filling up during a write, as a file-size limit (RLIMIT_FSIZE, `ulimit -f`) on the
job's process: the job fails with a message that says the disk is full and where, no file is
left truncated under its final name (writes go through a temp file or staging folder that is
renamed when whole), and the rerun with space again finishes."""

from __future__ import annotations

import pytest
from faultkit import EMBEDS, LORA, complete_or_absent, verified
from PIL import Image

pytestmark = pytest.mark.slow


def _refused_as_disk_full(out, folder):
    text = out.stderr
    assert out.returncode == 1, text[-3000:]
    assert "the disk is full (or a file-size limit was reached)" in text, text[-3000:]
    assert str(folder) in text and "free space there and rerun" in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]


def test_disk_full_while_saving_the_lora(stages, trained, tmp_path):
    out = tmp_path / "model"
    limit = (trained / LORA).stat().st_size // 2  # the LoRA cannot be written whole
    _refused_as_disk_full(stages.run(stages.train_argv(out), file_size_limit=limit), out)
    assert not (out / LORA).exists() and not (out / "manifest.json").exists()
    stages.ok(stages.train_argv(out))
    verified(out, LORA, EMBEDS)


def test_disk_full_while_writing_images(stages, trained, sampled, tmp_path):
    out = tmp_path / "samples"
    limit = (sampled / "cfg" / "p000_s0.png").stat().st_size // 2
    _refused_as_disk_full(stages.run(stages.sample_argv(trained, out), file_size_limit=limit),
                          out)
    assert not list((out / "cfg").glob("*.png")) and not (out / "cfg" / "index.csv").exists()
    stages.ok(stages.sample_argv(trained, out))
    verified(out, "cfg/index.csv", "cfg/p000_s0.png")
    for png in (out / "cfg").glob("*.png"):
        Image.open(png).load()


def test_disk_full_while_writing_a_score_table(stages, sampled, scored, tmp_path):
    out = tmp_path / "scores"
    limit = (scored / "cfg.csv").stat().st_size // 2
    _refused_as_disk_full(stages.run(stages.score_argv(sampled / "cfg", out),
                                     file_size_limit=limit), out)
    complete_or_absent(out, ("cfg.csv",))
    assert not (out / "cfg.csv").exists()
    stages.ok(stages.score_argv(sampled / "cfg", out))
    verified(out, "cfg.csv")

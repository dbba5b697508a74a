"""The base model's folder missing or unreadable at the moment a job starts (after the DAG check
passed, e.g. a scratch file system purged or a folder half-copied): a clear error naming the
folder, no output written; with the folder back, the rerun finishes."""

from __future__ import annotations

import os
import shutil

import pytest
from faultkit import LORA, verified

pytestmark = pytest.mark.slow


def _base_copy(stages, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(stages.root / "models" / "tiny-sdxl", base)
    return base


def _refused(out, *parts):
    text = out.stderr
    assert out.returncode == 1, text[-3000:]
    for part in parts:
        assert part in text, (part, text[-3000:])
    assert "Traceback" not in text, text[-3000:]


def test_model_folder_gone_when_training_starts(stages, trained, tmp_path):
    base, out = _base_copy(stages, tmp_path), tmp_path / "model"
    base.rename(tmp_path / "moved")
    _refused(stages.run(stages.train_argv(out, base=str(base))), str(base), "no such folder")
    assert not out.exists()
    (tmp_path / "moved").rename(base)
    stages.ok(stages.train_argv(out, base=str(base)))
    verified(out, LORA)


@pytest.mark.parametrize("damage", ["weights_removed", "unreadable"])
def test_model_folder_unusable_when_sampling_starts(stages, trained, tmp_path, damage):
    base, out = _base_copy(stages, tmp_path), tmp_path / "samples"
    unet = base / "unet"
    if damage == "weights_removed":  # a half-copied folder
        hidden = tmp_path / "unet"
        unet.rename(hidden)
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads a folder whatever its permissions")
        unet.chmod(0)
    _refused(stages.run(stages.sample_argv(trained, out, base=str(base))), str(base),
             "missing or unreadable")
    assert not out.exists() or not list(out.rglob("*.*"))
    if damage == "weights_removed":
        hidden.rename(unet)
    else:
        unet.chmod(0o755)
    stages.ok(stages.sample_argv(trained, out, base=str(base)))
    verified(out, "cfg/index.csv")

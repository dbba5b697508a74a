"""train.group_size on the real Snakefile: a concept's variants train in one fused `train` job,
the local `train_member` jobs publish each model folder where downstream rules read it, and
adding a concept schedules only its own group."""

import copy
import subprocess
import sys

import pytest
from wfrun import REPO, planned_jobs, run_snakemake, tiny_config

pytestmark = pytest.mark.slow


def _dry_run(workdir, config, *args):
    out = run_snakemake(workdir, config, "-n", "--cores", "1", *args)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return planned_jobs(out.stdout + out.stderr)


def test_grouped_training_publishes_models_and_stays_incremental(tmp_path):
    draw = subprocess.run([sys.executable, "-m", "dcobench", "prepare", "demo", "--root",
                           str(tmp_path / "data"), "--names", "toy_robot,spotted_mug,mosaic_style"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert draw.returncode == 0, draw.stderr
    config = tiny_config()
    config["data"]["subjects"] = ["toy_robot"]
    config["train"].update(group_size="concept", variants={"subject": ["dco", "db"], "style": ["dco"]})
    jobs = _dry_run(tmp_path, config)
    train = sorted((w["concept"], w["group"]) for r, w in jobs if r == "train")
    assert train == [("mosaic_style", "dco"), ("toy_robot", "db+dco")]
    assert sorted(w["variant"] for r, w in jobs if r == "train_member") == ["db", "dco", "dco"]
    single = copy.deepcopy(config)
    single["train"]["group_size"] = 1
    assert sum(r == "train" for r, _ in _dry_run(tmp_path, single)) == 3  # today's: one per model

    run = run_snakemake(tmp_path, config, "--cores", "2", "--until", "train_member")
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    models = tmp_path / "results" / "incr" / "models"
    for path in ("subject/toy_robot/db", "subject/toy_robot/dco", "style/mosaic_style/dco"):
        for name in ("pytorch_lora_weights.safetensors", "train_log.csv", "manifest.json"):
            assert (models / path / name).is_file(), (path, name)
    assert (models / "subject/toy_robot/dco/learned_embeds.safetensors").is_file()
    assert not list(models.rglob("*.resume"))  # the group finished: no resume state is left
    assert _dry_run(tmp_path, config, "--until", "train_member") == []

    grown = copy.deepcopy(config)
    grown["data"]["subjects"] = ["toy_robot", "spotted_mug"]
    jobs = _dry_run(tmp_path, grown, "--until", "train_member")
    print("scheduled after adding spotted_mug:", jobs)
    assert sorted((r, w.get("concept")) for r, w in jobs if r.startswith("train")) == [
        ("train", "spotted_mug"), ("train_member", "spotted_mug"), ("train_member", "spotted_mug")]
    assert {r for r, _ in jobs} <= {"train", "train_member", "prepare"}

"""Granularity on a finished tiny run: adding a concept, replacing one image or changing one
scorer's model schedules only what depends on it; a failing rerun keeps the finished model."""

import copy
import os
import shutil

import pytest
from PIL import Image, ImageOps
from wfrun import AGGREGATES, planned_jobs, results_listing, run_snakemake, write_config

pytestmark = pytest.mark.slow


def _dry_run(workdir, config):
    out = run_snakemake(workdir, config, "-n", "--cores", "1")
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return planned_jobs(out.stdout + out.stderr)


def _concepts(wildcards: dict) -> set[str]:
    return {wildcards[k] for k in ("concept", "subject", "style") if k in wildcards}


def test_adding_a_concept_schedules_only_its_chain(finished_run):
    workdir, config = finished_run
    grown = copy.deepcopy(config)
    grown["data"]["subjects"] = ["toy_robot", "spotted_mug"]
    before = results_listing(workdir)
    try:
        jobs = _dry_run(workdir, grown)
    finally:
        write_config(workdir, config)
    rules = {rule for rule, _ in jobs}
    print("scheduled after adding spotted_mug:", sorted(f"{r}{sorted(w.values())}" for r, w in jobs))
    assert {"prepare", "train", "sample", "score", "merge", "aggregate", "report"} <= rules
    for rule, wildcards in jobs:
        if rule in AGGREGATES:
            continue
        assert "spotted_mug" in _concepts(wildcards), (rule, wildcards)  # nothing else reruns
    assert "prepare_model" not in rules and "priors" not in rules
    assert results_listing(workdir) == before


def test_replacing_one_image_reruns_that_concept_only(finished_run):
    workdir, config = finished_run
    image = workdir / "data" / "toy_robot" / "01.png"
    original, stat = image.read_bytes(), image.stat()
    try:
        ImageOps.mirror(Image.open(image).convert("RGB")).save(image)
        jobs = _dry_run(workdir, config)
    finally:
        image.write_bytes(original)
        os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rules = {rule for rule, _ in jobs}
    print("scheduled after replacing toy_robot/01.png:", sorted(rules))
    assert {"prepare", "train", "sample", "score", "sample_pretrained", "merge"} <= rules
    for rule, wildcards in jobs:
        if rule not in AGGREGATES:
            assert _concepts(wildcards) & {"toy_robot"}, (rule, wildcards)
    assert not [w for r, w in jobs if w.get("concept") == "mosaic_style"]  # the style's chain
    assert "Nothing to be done" in run_snakemake(workdir, config, "-n", "--cores", "1").stdout


def test_changing_a_scorer_model_reruns_scoring_and_later_only(finished_run):
    workdir, config = finished_run
    copied = workdir / "my_dino"  # the same weights under another spec: a local folder
    shutil.copytree(workdir / "models" / "tiny-dinov2", copied, dirs_exist_ok=True)
    changed = copy.deepcopy(config)
    changed["models"]["dino"] = str(copied)
    try:
        jobs = _dry_run(workdir, changed)
    finally:
        write_config(workdir, config)
    rules = {rule for rule, _ in jobs}
    print("scheduled after models.dino changed:", sorted(f"{r}{sorted(w.values())}" for r, w in jobs))
    assert rules <= {"prepare_model", "score", "score_pretrained", "score_merge", "aggregate",
                     "report", "all"}, rules
    assert ("prepare_model", {"model": "dino"}) in jobs
    assert [w for r, w in jobs if r == "prepare_model"] == [{"model": "dino"}]
    scored = {w.get("kind", "merge") for r, w in jobs if r.startswith("score")}
    assert scored == {"subject", "merge"}  # style metrics use SigLIP only: not rescored


def test_a_failing_rerun_keeps_the_finished_models(finished_run, tmp_path):
    """A rerun that fails inside `train` (the base model's weights went missing after the run)
    leaves every finished model byte-identical: outputs are update(), trainers swap folders."""
    workdir, config = finished_run
    work = tmp_path / "copy"
    shutil.copytree(workdir, work, symlinks=True)  # copy2: mtimes kept, nothing reruns
    models = work / "results" / "incr" / "models" / "subject" / "toy_robot"
    before = {str(p): p.read_bytes() for p in sorted(models.rglob("*")) if p.is_file()}
    unet = work / "models" / "tiny-sdxl" / "unet"
    shutil.rmtree(unet)
    changed = copy.deepcopy(config)
    changed["train"]["steps"]["subject"] = 5  # the subject models must be retrained
    out = run_snakemake(work, changed, "--cores", "1", "--until", "train")
    assert out.returncode != 0
    assert "Error in rule train" in out.stdout + out.stderr
    after = {str(p): p.read_bytes() for p in sorted(models.rglob("*")) if p.is_file()}
    assert after == before


def test_a_pair_merge_reuses_both_sides_trained_loras(finished_run):
    workdir, config = finished_run
    paired = copy.deepcopy(config)
    paired["merge"]["variants"] = ["dco", "db+dco"]  # the subject's db LoRA with the style's dco LoRA
    before = results_listing(workdir)
    try:
        out = run_snakemake(workdir, paired, "-n", "-p", "--cores", "1")
    finally:
        write_config(workdir, config)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    jobs = planned_jobs(out.stdout)
    rules = {rule for rule, _ in jobs}
    print("scheduled after adding the db+dco merge:", sorted(rules))
    assert "train" not in rules and "merge" in rules  # both LoRAs exist: nothing retrains
    assert {w["merge"] for r, w in jobs if "merge" in w} == {"db+dco-arithmetic"}
    assert "--subject-model results/incr/models/subject/toy_robot/db " in out.stdout
    assert "--style-model results/incr/models/style/mosaic_style/dco " in out.stdout
    assert results_listing(workdir) == before


def test_changing_one_groups_prompt_sets_reruns_only_that_groups_samples(finished_run):
    """Each sample job's params hold its own group's prompt sets only: a new style set reruns the
    style's sample jobs (and what reads them), not the subjects' or the merges'."""
    workdir, config = finished_run
    changed = copy.deepcopy(config)
    sets = changed["sample"].get("prompt_sets") or {}
    changed["sample"]["prompt_sets"] = {"subject": sets.get("subject", ["dreambooth"]),
                                        "style": ["parti190"] if sets.get("style") != ["parti190"]
                                        else ["style"],
                                        "merge": sets.get("merge", ["merge"])}
    try:
        jobs = _dry_run(workdir, changed)
    finally:
        write_config(workdir, config)
    sampled = {(rule, w.get("kind")) for rule, w in jobs if rule.startswith("sample")}
    print("scheduled after changing sample.prompt_sets.style:", sorted(sampled))
    assert sampled and all(kind == "style" for _, kind in sampled), sampled

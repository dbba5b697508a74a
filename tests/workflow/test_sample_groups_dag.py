"""sample.group_size / score.group_size on the real Snakefile: a concept's models are sampled in
one `sample_group` job per chunk and scored in one `score_group` job, the local member rules put
each model's chunk marker and score tables where the per-model rules write them, and adding a
concept schedules only its own groups."""

import copy
import subprocess
import sys
from collections import Counter

import pytest
import yaml
from wfrun import REPO, planned_jobs, run_snakemake, tiny_config

pytestmark = pytest.mark.slow

PER_MODEL = {"sample", "sample_pretrained", "score", "score_pretrained"}
GROUPED = {"sample_group", "score_group"}
MEMBERS = {"sample_member", "score_member", "score_member_pretrained"}


def _dry_run(workdir, config, *args):
    out = run_snakemake(workdir, config, "-n", "--cores", "1", *args)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return planned_jobs(out.stdout + out.stderr)


def _grouped(config, size="concept"):
    config = copy.deepcopy(config)
    config["sample"]["group_size"] = size
    config["score"]["group_size"] = size
    return config


def test_the_demo_config_loads_each_model_once_per_concept(tmp_path):
    """config.yaml (sample/score.group_size: concept): one sample and one score job per
    (kind, concept) instead of one per model; group_size 1 gives today's per-model jobs."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert config["sample"]["group_size"] == config["score"]["group_size"] == "concept"
    config["report"]["claims"] = str(REPO / config["report"]["claims"])
    grouped = Counter(r for r, _ in _dry_run(tmp_path, config))
    single = Counter(r for r, _ in _dry_run(tmp_path, _grouped(config, 1)))
    print("grouped:", dict(grouped), "\nper model:", dict(single))
    concepts = len(config["data"]["subjects"]) + len(config["data"]["styles"])
    assert grouped["sample_group"] == grouped["score_group"] == concepts
    assert not set(grouped) & PER_MODEL and not set(single) & (GROUPED | MEMBERS)
    models = single["sample"] + single["sample_pretrained"]
    assert grouped["sample_member"] == models
    assert grouped["score_member"] + grouped["score_member_pretrained"] == models
    assert single["score"] + single["score_pretrained"] == models > concepts
    for rule in ("sample_merge", "score_merge", "sample_join", "sample_join_pretrained"):
        assert grouped[rule] == single[rule], rule  # merges and joins stay per model


def test_grouped_sampling_and_scoring_run_and_stay_incremental(tmp_path):
    draw = subprocess.run([sys.executable, "-m", "dcobench", "prepare", "demo", "--root",
                           str(tmp_path / "data"), "--names", "toy_robot,spotted_mug,mosaic_style"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert draw.returncode == 0, draw.stderr
    config = _grouped(tiny_config())
    config["sample"]["guides"] = ["cfg", "rg3"]
    jobs = _dry_run(tmp_path, config)
    groups = sorted((r, w["kind"], w["concept"], w["group"]) for r, w in jobs if r in GROUPED)
    assert groups == [("sample_group", "style", "mosaic_style", "dco+pretrained"),
                      ("sample_group", "subject", "toy_robot", "db+dco+pretrained"),
                      ("score_group", "style", "mosaic_style", "dco+pretrained"),
                      ("score_group", "subject", "toy_robot", "db+dco+pretrained")]
    until = ["--until", "score_member", "score_member_pretrained"]
    run = run_snakemake(tmp_path, config, "--cores", "2", *until)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    results = tmp_path / "results" / "incr"
    for kind, concept, variant in (("subject", "toy_robot", "db"), ("subject", "toy_robot", "dco"),
                                   ("subject", "toy_robot", "pretrained"),
                                   ("style", "mosaic_style", "dco"),
                                   ("style", "mosaic_style", "pretrained")):
        guides = ["cfg"] if variant == "pretrained" else ["cfg", "rg3"]
        marker = results / "chunks" / "samples" / kind / concept / variant / "1of1.done"
        assert marker.read_text() == "1of1\n"
        for guide in guides:
            assert (results / "samples" / kind / concept / variant / guide / "index.csv").is_file()
            assert (results / "scores" / kind / concept / variant / f"{guide}.csv").is_file()
        assert (results / "scores" / kind / concept / variant / "manifest.json").is_file()
    assert _dry_run(tmp_path, config, *until) == []

    grown = copy.deepcopy(config)
    grown["data"]["subjects"] = ["toy_robot", "spotted_mug"]
    jobs = _dry_run(tmp_path, grown, *until)
    print("scheduled after adding spotted_mug:", jobs)
    touched = {(r, w.get("concept")) for r, w in jobs if r in GROUPED | MEMBERS}
    assert touched and {c for _, c in touched} == {"spotted_mug"}
    assert sorted(r for r, w in jobs if r in GROUPED) == ["sample_group", "score_group"]

"""Snakemake on the real Snakefile: bad config fails `-n` early; a reduced demo runs end to end."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _config(**changes):
    config = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    return config


def _snakemake(workdir: Path, config: dict, *args, cache: Path | None = None):
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DCOBENCH_CACHE": str(cache or workdir / "models")}
    return subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *args],
        capture_output=True, text=True, env=env, timeout=1800,
    )


def test_unknown_variant_fails_dry_run_with_suggestion(tmp_path):
    cfg = _config(**{"train.variants": {"subject": ["dcoo", "db"], "style": ["dco"]}})
    out = _snakemake(tmp_path, cfg, "-n", "--cores", "1")
    assert out.returncode != 0
    assert "train.variants.subject: unknown variant 'dcoo' (did you mean 'dco'?)" in out.stderr + out.stdout


def test_missing_concept_folder_fails_dry_run_naming_it(tmp_path):
    cfg = _config(**{"data.demo": False, "data.root": "mydata", "data.subjects": ["my_dog"]})
    out = _snakemake(tmp_path, cfg, "-n", "--cores", "1")
    assert out.returncode != 0
    assert "concept folder mydata/my_dog does not exist" in out.stderr + out.stdout


def test_unknown_scorer_and_merger_fail_dry_run(tmp_path):
    cfg = _config(**{"score.metrics.merge": ["dinov2"], "merge.mergers": ["zip"]})
    out = _snakemake(tmp_path, cfg, "-n", "--cores", "1")
    text = out.stderr + out.stdout
    assert out.returncode != 0
    assert "unknown scorer 'dinov2'" in text and "unknown merger 'zip'" in text


def test_merge_weight_grid_reaches_the_dag(tmp_path):
    """merge.weights [[1, 1], [0.5, 2]]: every pair gets its own merge job, with its λ."""
    cfg = _config(**{"data.subjects": ["toy_robot"], "merge.variants": ["dco"],
                     "merge.mergers": ["arithmetic", "ziplora"],
                     "merge.weights": [[1.0, 1.0], [0.5, 2.0]]})
    out = _snakemake(tmp_path, cfg, "-n", "-p", "--cores", "1")
    assert out.returncode == 0, out.stderr
    merges = re.findall(r"dcobench merge .*?--merger (\w+) --weights (\S+) .*?--out \S+/(\S+)/lora",
                        out.stdout)
    assert sorted(merges) == [("arithmetic", "0.5,2.0", "dco-arithmetic_w0p5_2"),
                              ("arithmetic", "1.0,1.0", "dco-arithmetic"),
                              ("ziplora", "1.0,1.0", "dco-ziplora")]  # ziplora ignores λ


def test_claims_rule_is_scheduled_only_when_configured(tmp_path):
    """report.claims names a claims file: one `claims` job on the declared score tables feeds
    the report; null (the tiny config): no such job."""
    from wfrun import planned_jobs

    cfg = _config(**{"report.claims": str(REPO / "config" / "world_claims.yaml")})
    out = _snakemake(tmp_path, cfg, "-n", "-p", "--cores", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    rules = [rule for rule, _ in planned_jobs(out.stdout)]
    assert rules.count("claims") == 1 and rules.count("report") == 1
    command = re.search(r"dcobench claims --claims (\S+) --scores (.*?) --noise-distance (\S+) "
                        r"--out (\S+)", out.stdout)
    assert command and command.group(1).endswith("world_claims.yaml"), out.stdout[-3000:]
    scores, exp = command.group(2).split(), f"results/{cfg['experiment']}"
    assert f"{exp}/scores/subject/toy_robot/dco/cfg.csv" in scores
    assert all(f.endswith(".csv") and "*" not in f for f in scores)
    assert command.group(3) == f"{exp}/analysis/noise_distance.csv"
    assert command.group(4) == f"{exp}/tables/claims.csv"
    assert f"--claims {exp}/tables/claims.csv" in out.stdout  # the report reads it
    cfg["report"]["claims"] = None
    out = _snakemake(tmp_path, cfg, "-n", "--cores", "1")
    assert out.returncode == 0 and "claims" not in [rule for rule, _ in planned_jobs(out.stdout)]
    cfg["report"]["claims"] = "config/missing_claims.yaml"
    out = _snakemake(tmp_path, cfg, "-n", "--cores", "1")
    assert out.returncode != 0
    assert "report.claims: claims file config/missing_claims.yaml does not exist" in out.stderr + out.stdout


def test_schema_rejects_unknown_key(tmp_path):
    cfg = _config(**{"sample.stepz": 3})
    out = _snakemake(tmp_path, cfg, "-n", "--cores", "1")
    assert out.returncode != 0 and "stepz" in out.stderr + out.stdout


@pytest.mark.slow
def test_reduced_demo_runs_end_to_end(tmp_path):
    cfg = _config(**{
        "experiment": "wf", "data.root": "results/wf/data", "data.subjects": ["toy_robot"],
        "train.steps": {"subject": 8, "style": 6}, "train.prior.count": 2,
        "sample.guides": ["cfg", "rg3"], "sample.num_prompts": 2, "sample.seeds": [0],
        "sample.steps": 4, "merge.guides": ["rg3"],
        "analysis.noise_distance": {"variants": ["dco", "db"], "timesteps": 3, "noises": 1},
    })
    out = _snakemake(tmp_path, cfg, "--cores", "2")
    assert out.returncode == 0, out.stderr[-4000:]
    exp = tmp_path / "results" / "wf"
    assert (exp / "report.html").stat().st_size > 10_000
    summary = pd.read_csv(exp / "tables" / "summary.csv")
    subject = summary[summary["group"] == "subject"]
    assert set(subject["variant"]) == {"dco", "db", "dbpp", "pretrained"}
    assert set(subject.loc[subject["variant"] == "pretrained", "guide"]) == {"cfg"}
    assert set(summary["group"]) == {"subject", "style", "merge"}
    assert set(summary[summary["group"] == "merge"]["variant"]) == {"dco-arithmetic", "db-arithmetic"}
    for metric, (lo, hi) in {"dino": (-1, 1), "siglip_text": (0, 1), "siglip_image": (-1, 1),
                             "clip_i": (-1, 1), "clip_t": (-1, 1)}.items():
        values = summary.loc[summary["metric"] == metric, "mean"]
        assert len(values) and values.between(lo, hi).all(), metric
    pngs = sorted((exp / "samples").rglob("*.png"))
    assert len(pngs) == (3 + 2) * 2 * 2 + 2 * 2  # models × guides × prompts + pretrained (cfg)
    assert not list((exp / "models").glob("*/*/pretrained"))  # sampled, never trained
    scores = pd.read_csv(exp / "scores" / "subject" / "toy_robot" / "pretrained" / "cfg.csv")
    assert set(scores["variant"]) == {"pretrained"} and "prompt_set" in scores.columns
    index = pd.read_csv(exp / "samples" / "subject" / "toy_robot" / "pretrained" / "cfg" / "index.csv")
    assert (index["prompt"] == index["scoring_prompt"]).all()  # no LoRA: the base prompt
    assert list((exp / "cache").rglob("*.safetensors"))  # embedding cache
    for png in pngs[:4]:
        assert Image.open(png).convert("L").getextrema()[1] > Image.open(png).convert("L").getextrema()[0]
    for folder in (exp / "models").glob("*/*/*"):
        assert (folder / "manifest.json").exists()
    assert (exp / "figures" / "wf" / "pareto_subject.png").exists()
    assert (exp / "tables" / "wf" / "variants_subject.md").exists()
    paper = pd.read_csv(exp / "tables" / "paper_vs_ours.csv")
    assert {"paper", "ours", "delta"} <= set(paper.columns)
    # a second run has nothing to do
    again = _snakemake(tmp_path, cfg, "--cores", "2", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr

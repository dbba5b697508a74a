"""The paper preset's DAG (dry run, no images needed): Fig 8c's noise distance is one job per
(concept, variant) plus a join; the weights are fetched once by a local rule and every job
command runs offline (issue 36)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SDXL = "stabilityai/stable-diffusion-xl-base-1.0"


def paper_config(tmp_path, experiments):
    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    cfg["experiments"] = experiments
    cfg["data"]["root"] = str(REPO / "data")
    for name in cfg["data"]["sources"]:
        (tmp_path / "mirror" / name).mkdir(parents=True, exist_ok=True)  # a dry run reads no image
        cfg["data"]["sources"][name]["local"] = str(tmp_path / "mirror" / name)
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg


def dry_run(tmp_path, *extra):
    # The paper's hub models (SDXL, DINOv2, SigLIP, CLIP) are not in this machine's cache, and
    # with HF_HUB_OFFLINE set the DAG build refuses them (by design). A dry run downloads
    # nothing, so it runs as a cluster's login node would: online.
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "DCOBENCH_CACHE": str(tmp_path / "models")}
    out = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                          "--configfile", str(tmp_path / "paper.yaml"), "-n", "-p", *extra],
                         capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def fig8c(tmp_path_factory):
    """fig8c + fig5 through the shipped SLURM profile (dry run: nothing is submitted)."""
    tmp_path = tmp_path_factory.mktemp("paper")
    cfg = paper_config(tmp_path, ["fig8c", "fig5"])
    return tmp_path, cfg, dry_run(tmp_path, "--profile", "slurm")


def test_fig8c_has_one_noise_distance_job_per_model_and_a_join(fig8c):
    _, cfg, stdout = fig8c
    runs = re.findall(r"dcobench analyze noise-distance --run \S+?:(\w+):\S+/models/subject/"
                      r"([\w.-]+)/\1 --out \S+/analysis/noise_distance/\2/\1/noise_distance\.csv",
                      stdout)
    subjects = cfg["experiment_defs"]["fig8c"]["subjects"]
    variants = cfg["analysis"]["noise_distance"]["variants"]
    assert sorted(runs) == sorted((v, s) for s in subjects for v in variants)  # 10 × 5, once each
    joins = re.findall(r"dcobench analyze join --part (.*?) --out \S+/analysis/noise_distance\.csv",
                       stdout)
    assert len(joins) == 1 and len(joins[0].split()) == len(subjects) * len(variants)


def jobs_of(stdout):
    """(resources, shell command) of each job in a `-n -p` dry run: rule name -> [jobs]."""
    jobs: dict[str, list[tuple[str, str]]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", stdout):
        head = re.match(r"(?:local)?rule (\w+):", block)
        cmd = re.search(r"^Shell command: (.*)$", block, re.M)
        res = re.search(r"^\s*resources: (.*)$", block, re.M)
        if head and cmd and cmd[1] != "None":
            jobs.setdefault(head[1], []).append((res[1] if res else "", cmd[1]))
    return jobs


def test_weights_fetched_by_a_local_rule_and_every_job_runs_offline(fig8c):
    tmp_path, _, stdout = fig8c
    jobs = {rule: [cmd for _, cmd in js] for rule, js in jobs_of(stdout).items()}
    fetch = jobs.pop("prepare_model")  # a local rule (data.smk localrules): online
    assert len(fetch) == 2 and not any("HF_HUB_OFFLINE" in c for c in fetch)  # base + siglip
    assert any(f"--key base --spec {SDXL} " in c for c in fetch)
    assert {"train", "priors", "noise_distance_run"} <= set(jobs)
    for rule, commands in jobs.items():
        for cmd in commands:
            assert "env HF_HUB_OFFLINE=1 " in cmd, (rule, cmd)
    weights = str(tmp_path / "models" / "weights" / SDXL.replace("/", "--"))
    assert all(f"--base-model {weights} " in c for c in jobs["train"])  # the downloaded folder


def test_gpu_rules_on_the_gpu_partition_cpu_rules_not(fig8c):
    """`snakemake -n --profile slurm`: each GPU job carries the GPU partition and --gpus, each
    CPU job neither (it goes to the default partition)."""
    jobs = jobs_of(fig8c[2])
    gpu_rules = {"train", "priors", "noise_distance_run", "sample", "score"}
    assert gpu_rules <= set(jobs) and {"prepare", "fetch_concept", "sample_join"} <= set(jobs)
    gpu_rules |= {"sample_pretrained", "score_pretrained"}  # (not in these two figures)
    for rule, js in jobs.items():
        for resources, _ in js:
            on_gpu = "slurm_partition=gpu" in resources
            assert on_gpu == (rule in gpu_rules) == ("gpu=1" in resources), (rule, resources)


def test_long_sampling_jobs_are_chunked_and_joined(fig8c):
    """fig5's style grids (190 prompts × 2 seeds × 5 guides) run as sample.chunks.style jobs per
    model, each a prompt block into the same folder; one join per model writes index.csv."""
    _, cfg, stdout = fig8c
    n = cfg["sample"]["chunks"]["style"]
    assert n > 1
    jobs = jobs_of(stdout)
    style = [cmd for _, cmd in jobs["sample"] if "--style " in cmd]
    folders = {re.search(r"--out (\S+)", c)[1] for c in style}
    assert style and len(style) == n * len(folders)
    for folder in folders:
        chunks = sorted(re.search(r"--chunk (\S+)", c)[1] for c in style if f"--out {folder} " in c)
        assert chunks == [f"{i}of{n}" for i in range(1, n + 1)]
    joins = [cmd for _, cmd in jobs["sample_join"] if "--style " in cmd]
    assert sorted(re.search(r"--out (\S+)", c)[1] for c in joins) == sorted(folders)
    assert all("--join" in c and "--chunk" not in c for c in joins)

"""Helpers of the workflow tests: the tiny config of the finished run (conftest.finished_run),
snakemake on the real Snakefile, the jobs a dry run lists, a listing of results/."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
AGGREGATES = {"aggregate", "report", "all", "noise_distance", "lora_cosine"}  # span all concepts


def tiny_config() -> dict:
    """The demo config cut to 1 subject + 1 style in folders the user owns (data/), 2 variants,
    a few steps and one prompt: every stage of the DAG in about a minute."""
    config = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
    config["experiment"] = "incr"
    config["data"].update(root="data", demo=False, subjects=["toy_robot"], styles=["mosaic_style"])
    config["train"].update(variants={"subject": ["dco", "db"], "style": ["dco"]},
                           steps={"subject": 4, "style": 3})
    config["sample"].update(guides=["cfg"], num_prompts=1, seeds=[0], steps=2)
    config["merge"].update(variants=["dco"], guides=["cfg"])
    config["analysis"]["noise_distance"] = {"variants": ["dco"], "timesteps": 2, "noises": 1}
    return config


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def run_snakemake(workdir: Path, config: dict | None, *args, timeout=1800):
    """snakemake on the real Snakefile in `workdir` with `config` as its config.yaml (None: the
    config.yaml already there)."""
    if config is not None:
        write_config(workdir, config)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DCOBENCH_CACHE": str(workdir / "models"),
           "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *args],
        capture_output=True, text=True, env=env, timeout=timeout,
    )


def planned_jobs(dry_run_output: str) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job a `snakemake -n` run lists."""
    jobs = []
    for block in re.split(r"^(?=(?:local)?rule \w+:)", dry_run_output, flags=re.M)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block).group(1)
        match = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        wildcards = dict(kv.split("=", 1) for kv in match.group(1).split(", ")) if match else {}
        jobs.append((rule, wildcards))
    return jobs


def results_listing(workdir: Path) -> dict[str, tuple[int, int]]:
    """Every path under results/: (size, mtime_ns)."""
    root = workdir / "results"
    return {str(p.relative_to(workdir)): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}

"""`snakemake --profile slurm` (the shipped profile, from the repo root) on a real local SLURM
with two partitions: every compute rule goes through sbatch with its GPU request, GPU rules to
the GPU partition and CPU rules to the default one, the local rules (weights, joins, aggregate,
report) run on the submit host, and the report is produced."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dcobench import launch

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
LOCAL_RULES = {"aggregate", "claims", "report", "noise_distance", "prepare_model", "sample_join",
               "sample_join_pretrained", "sample_join_merge", "all"}  # localrules
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) "
                       r"\(log: \S*/rule_(\w+?)/\S*\.log\)")


def reduced_config() -> dict:
    """The demo DAG cut down: 1 subject, 1 style, dco + dbpp (priors), 2 prompts, few steps."""
    config = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
    config["experiment"] = "slurm"
    config["data"].update(root="results/slurm/data", subjects=["toy_robot"], styles=["mosaic_style"])
    config["train"].update(variants={"subject": ["dco", "dbpp"], "style": ["dco"]},
                           steps={"subject": 8, "style": 6})
    config["train"]["prior"]["count"] = 2
    config["sample"].update(guides=["cfg", "rg3"], num_prompts=2, seeds=[0], steps=4,
                            chunks={"subject": 2, "style": 1, "merge": 1})
    config["merge"].update(variants=["dco"], guides=["rg3"])
    config["analysis"]["noise_distance"] = {"variants": ["dco"], "timesteps": 3, "noises": 1}
    return config


def _planned_rules(workdir, env):
    """Rule names in the dry run's job stats table."""
    dry = subprocess.run([SNAKEMAKE, "--profile", "slurm", "--directory", str(workdir), "-n"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    table = (dry.stdout + dry.stderr).split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)}


def _sacct(job_ids):
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids),
                          "-o", "JobID,State,AllocTRES,Comment,Partition"],
                         capture_output=True, text=True, check=True).stdout
    return {row.split("|")[0]: row.split("|")[1:] for row in out.splitlines() if row}


@pytest.mark.slow
def test_profile_runs_reduced_demo_through_sbatch(slurm_cluster, slurm_summary, tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(reduced_config(), sort_keys=False))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DCOBENCH_CACHE": str(tmp_path / "models")}
    planned = _planned_rules(tmp_path, env)
    assert {"train", "sample", "score", "priors", "merge", "report"} <= planned
    gpu_rules = {r for r in planned if launch.profile_resources(REPO / "slurm", r).gpu}
    assert {"train", "sample", "score", "priors", "merge"} <= gpu_rules
    start = time.monotonic()
    run = subprocess.run(
        [SNAKEMAKE, "--profile", "slurm", "--directory", str(tmp_path), "--jobs", "2",
         "--slurm-init-seconds-before-status-checks", "2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3000)
    log = run.stdout + run.stderr
    print(f"snakemake --profile slurm: rc={run.returncode} in {time.monotonic() - start:.0f} s")
    assert run.returncode == 0, log[-6000:]
    assert "Using profile slurm" in log

    submitted = SUBMITTED.findall(log)
    ids = "sbatch job ids: " + " ".join(f"{rule}={jid}" for jid, rule in submitted)
    print(ids)
    slurm_summary.append(f"SLURM workflow (snakemake --profile slurm, rc 0): {ids}")
    rules = {rule for _, rule in submitted}
    assert rules == planned - LOCAL_RULES  # every compute rule went through sbatch
    assert re.search(r"^localrule aggregate:", log, re.M) and re.search(r"^localrule report:", log, re.M)

    accounting = _sacct([jid for jid, _ in submitted])
    for jid, rule in submitted:
        state, tres, comment, partition = accounting[jid]
        assert comment.startswith(f"rule_{rule}"), (jid, comment)
        want = slurm_cluster["gpu_partition"] if rule in gpu_rules else slurm_cluster["partition"]
        assert partition == want, (rule, partition)
        if state != "COMPLETED":  # a failed attempt must have been retried successfully
            assert any(r == rule and accounting[j][0] == "COMPLETED" for j, r in submitted), jid
        assert ("gres/gpu=1" in tres) == (rule in gpu_rules), (rule, tres)
        assert list((tmp_path / "results" / "slurm_logs" / f"rule_{rule}").rglob(f"{jid}.log"))

    parts = {rule: accounting[jid][3] for jid, rule in submitted}
    slurm_summary.append(f"SLURM workflow: partition per rule: {parts}")
    chunks = [r for _, r in submitted if r == "sample"]
    assert len(chunks) >= 2 * 2 + 1  # 2 subject variants × 2 chunks + the style's 1 (+ retries)
    assert re.search(r"^localrule sample_join:", log, re.M)
    exp = tmp_path / "results" / "slurm"
    assert (exp / "report.html").stat().st_size > 10_000
    slurm_summary.append(f"SLURM workflow: {exp / 'report.html'} produced under SLURM")
    assert (exp / "tables" / "summary.csv").exists()
    assert len(list((exp / "logs" / "train").rglob("*.log"))) == 3  # per-rule, per-job logs
    again = subprocess.run([SNAKEMAKE, "--profile", "slurm", "--directory", str(tmp_path), "-n"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_doctor_checks_the_profile_against_the_real_sinfo(slurm_cluster):
    """doctor's SLURM lines on the live cluster: both partitions exist, the GPU one has GPUs,
    --gpus is accepted (cons_tres)."""
    from dcobench.cli import doctor

    checks = doctor.slurm_checks(REPO / "slurm")
    assert [c.status for c in checks] == ["PASS", "PASS", "PASS"], checks
    assert any("partition gpu (GPU gpu:fake:2" in c.detail for c in checks), checks

"""The SLURM profile and the launcher's resource mapping (no cluster needed)."""

import re
from pathlib import Path

import pytest
import yaml

from dcobench import launch

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "slurm"


def _rules():
    """rule name -> its text, from workflow/rules/*.smk (`rule x:` and `use rule ... as x`)."""
    rules = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        blocks = re.split(r"^\s*(?=rule \w+:|use rule )", smk.read_text(), flags=re.M)[1:]
        for block in filter(None, blocks):
            match = re.match(r"rule (\w+):|use rule \w+ as (\w+)", block)
            rules[match.group(1) or match.group(2)] = block
    return rules


def test_profile_is_the_one_place_for_resources():
    """Every rule has its resources in the profile, and no rule declares any of its own."""
    data = yaml.safe_load((PROFILE / "config.yaml").read_text())
    rules = _rules()
    assert set(rules) == set(data["set-resources"])
    for rule, text in rules.items():
        assert not re.search(r"^\s+resources:", text, re.M), rule
        res = launch.profile_resources(PROFILE, rule)
        assert res.runtime > 0 and res.mem_mb > 0 and res.cpus_per_task >= 1
    gpu = {r for r in rules if launch.profile_resources(PROFILE, r).gpu}
    assert {"train", "sample", "sample_merge", "score", "merge", "priors"} <= gpu
    assert not gpu & {"aggregate", "report", "prepare", "lora_cosine", "export_checkpoint"}


def test_profile_resources_merge_defaults_and_rule():
    res = launch.profile_resources(PROFILE, "train")
    assert (res.gpu, res.runtime, res.mem_mb, res.cpus_per_task) == (1, 240, 48000, 4)
    assert res.slurm_extra == "--signal=TERM@300"  # the profile's "'...'" evaluated like snakemake
    assert launch.profile_resources(PROFILE, "prepare").gpu == 0


def test_sbatch_parameters():
    res = launch.Resources(runtime=90, mem_mb=2000, cpus_per_task=3, gpu=2, gpu_model="a100",
                           slurm_partition="gpu", slurm_account="proj",
                           slurm_extra="--signal=B:USR1@120 --qos=high --requeue")
    params = launch.sbatch_parameters(res)
    assert params["gres"] == "gpu:a100:2" and params["time"] == 90 and params["mem"] == "2000M"
    assert params["partition"] == "gpu" and params["account"] == "proj"
    assert params["signal_delay_s"] == 120
    assert params["additional_parameters"] == {"qos": "high", "requeue": True}
    assert launch.sbatch_parameters(launch.Resources())["signal_delay_s"] == 300
    assert "gres" not in launch.sbatch_parameters(launch.Resources(gpu=0))


def test_sweep_entries_become_trailing_flags(tmp_path):
    argv = ["train", "--out", "a", "--options", "{}"]
    assert launch.sweep_argv(argv, {"out": "b", "options": {"beta": 0.5}}) == [
        *argv, "--out", "b", "--options", '{"beta": 0.5}']
    bad = tmp_path / "sweep.yaml"
    bad.write_text("out: b\n")
    with pytest.raises(ValueError, match="sweep.yaml: expected a non-empty YAML list"):
        launch.read_sweep(bad)


def test_missing_profile_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        launch.profile_resources(tmp_path / "nowhere", "train")

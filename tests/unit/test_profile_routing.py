"""SLURM routing in the shipped profile (issue 36, item 6): GPU rules carry their own partition,
CPU rules do not; one switch asks for the GPU as --gres=gpu:1 for clusters without cons_tres."""

from pathlib import Path

import pytest
import yaml

from dcobench import launch

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "slurm"
GPU_RULES = {"priors", "train", "sample", "sample_pretrained", "sample_merge", "score",
             "score_pretrained", "score_merge", "merge", "noise_distance_run", "sample_group",
             "score_group"}


def _rules():
    return set(yaml.safe_load((PROFILE / "config.yaml").read_text())["set-resources"])


def test_gpu_rules_go_to_the_gpu_partition_and_cpu_rules_do_not():
    for rule in _rules():
        res = launch.profile_resources(PROFILE, rule)
        if rule in GPU_RULES:
            assert res.gpus == 1 and res.slurm_partition == "gpu", rule
        else:
            assert res.gpus == 0 and res.slurm_partition != "gpu", rule


def _gres_profile(tmp_path):
    text = (PROFILE / "config.yaml").read_text()
    assert text.count("<<: *gpus # the switch") == 1
    (tmp_path / "config.yaml").write_text(text.replace("<<: *gpus # the switch",
                                                       "<<: *gres # the switch"))
    return tmp_path


class _Job:
    """What the SLURM plugin's set_gres_string reads of a job."""

    def __init__(self, res: launch.Resources):
        values = {"gpu": res.gpu or None, "gres": res.gres, "gpu_model": res.gpu_model}

        class R(dict):
            __getattr__ = dict.get

        self.resources = R({k: v for k, v in values.items() if v})


def test_the_gres_switch_replaces_gpus_for_every_gpu_rule(tmp_path):
    plugin = pytest.importorskip("snakemake_executor_plugin_slurm.utils")
    gres = _gres_profile(tmp_path)
    for rule in GPU_RULES:
        shipped = launch.profile_resources(PROFILE, rule)
        switched = launch.profile_resources(gres, rule)
        assert plugin.set_gres_string(_Job(shipped)).strip() == "--gpus=1"
        assert plugin.set_gres_string(_Job(switched)).strip() == "--gres=gpu:1", rule
        assert switched.gpus == 1 and switched.slurm_partition == "gpu"
        assert launch.sbatch_parameters(switched)["gres"] == "gpu:1"  # submitit: the same
    assert launch.Resources(gres="gpu:a100:2").gpus == 2
    assert launch.Resources(gres="shard:1").gpus == 0

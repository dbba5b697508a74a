"""The pretrained-model point (Fig 1): sampled + scored only for experiments that ask for it."""

import copy
from pathlib import Path

import pytest
import yaml

from dcobench.config import ConfigError, load_setup

REPO = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
PAPER = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    """config/paper.yaml names hub models; offline, a DAG build would ask for them in the cache."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_demo_implicit_experiment_samples_the_pretrained_model_for_every_concept():
    plan = load_setup(copy.deepcopy(DEMO)).plan
    assert plan.pretrained == [("subject", "toy_robot"), ("subject", "spotted_mug"),
                               ("style", "mosaic_style")]
    assert all(v != "pretrained" for _, _, v in plan.models + plan.evaluated)  # nothing trained


def test_paper_fig1_asks_for_it_and_other_experiments_do_not():
    cfg = copy.deepcopy(PAPER)
    cfg["experiments"] = ["fig8b", "fig5"]
    assert load_setup(cfg).plan.pretrained == []
    cfg["experiments"] = ["fig1", "fig8b"]
    plan = load_setup(cfg).plan
    assert len(plan.pretrained) == 27 and {k for k, _ in plan.pretrained} == {"subject"}
    assert ("subject", "dog") in plan.experiments["fig1"]["pretrained"]
    assert plan.experiments["fig8b"]["pretrained"] == []


def test_pretrained_flag_per_experiment_and_reserved_variant_name():
    cfg = copy.deepcopy(PAPER)
    cfg["experiments"] = ["fig5"]
    cfg["experiment_defs"]["fig5"]["pretrained"] = True
    assert len(load_setup(cfg).plan.pretrained) == 10  # the StyleDrop styles
    cfg["train"]["variant_defs"]["pretrained"] = {"objective": "db"}
    with pytest.raises(ConfigError, match="'pretrained' is reserved"):
        load_setup(cfg)


def test_sample_groups_hold_each_concepts_sampled_models_with_the_pretrained_one():
    """The members of a concept's grouped sample / score job (sample.group_size: concept): its
    evaluated variants and, where sampled, the pretrained model; nothing of another concept."""
    cfg = copy.deepcopy(PAPER)
    cfg["experiments"] = ["fig1", "fig8b"]
    plan = load_setup(cfg).plan
    groups = plan.sample_groups()
    assert set(groups) == {(k, c) for k, c, _ in plan.evaluated} | set(plan.pretrained)
    for (kind, concept), members in groups.items():
        assert members == sorted(members)
        assert set(members) - {"pretrained"} == {v for k, c, v in plan.evaluated
                                                 if (k, c) == (kind, concept)}
        assert ("pretrained" in members) == ((kind, concept) in plan.pretrained)

"""The learned token's lr as an arm (experiment token_lr): defined in config/paper.yaml and
config/world.yaml with the same names, scaled to each config's LoRA lr, run only on request,
and ti_lr 0 accepted by the schema and TrainOptions (and nothing below 0)."""

import copy
from pathlib import Path

import pytest
import yaml

from dcobench.precheck import PrecheckError, precheck

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
ARMS = ["db_ti_off", "db_ti_readme", "db", "dco_ti_off", "dco_ti_readme", "dco"]
# the token lr over the LoRA lr: official README 5e-6 / 5e-5, the paper 5e-4 / 5e-5
README_RATIO, PAPER_RATIO = 0.1, 10.0


def _config(name):
    """config.yaml with config/<name>.yaml over it, as Snakemake merges --configfile."""
    from snakemake.utils import update_config

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text()))
    return cfg


@pytest.mark.parametrize("name", ["paper", "world"])
def test_token_lr_arms_scale_with_the_lora_lr_and_run_on_request(name):
    from dcobench.config import parse_variants, train_options

    cfg = _config(name)
    assert cfg["experiment_defs"]["token_lr"]["variants"] == ARMS
    assert "token_lr" not in cfg["experiments"]
    lr = cfg["train"]["lr"]
    ti = {v: train_options(cfg, "subject", v)["ti_lr"] for v in ARMS}
    assert ti["db_ti_off"] == ti["dco_ti_off"] == 0.0
    assert ti["db_ti_readme"] == ti["dco_ti_readme"] == pytest.approx(README_RATIO * lr)
    assert ti["db"] == ti["dco"] == pytest.approx(PAPER_RATIO * lr)
    errors = []
    variants = parse_variants(cfg, errors)
    assert not errors and [variants[v].objective for v in ARMS] == ["db"] * 3 + ["dco"] * 3


def test_paper_arms_are_the_published_numbers():
    from dcobench.config import train_options

    cfg = _config("paper")
    assert [train_options(cfg, "subject", v)["ti_lr"] for v in ARMS[:3]] == [0.0, 5e-6, 5e-4]


def test_the_world_token_lr_experiment_plans_every_arm(monkeypatch):
    from dcobench.config import load_setup

    monkeypatch.chdir(REPO)
    cfg = _config("world")
    cfg["experiments"] = ["token_lr"]
    plan = load_setup(cfg, decode=False).plan
    assert {v for k, _, v in plan.models if k == "subject"} == set(ARMS)
    assert len({c for _, c, _ in plan.models}) == len(cfg["data"]["subjects"])


def test_ti_lr_0_passes_and_below_0_is_refused(tmp_path):
    from dcobench.train.options import TrainOptions

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    precheck({**copy.deepcopy(cfg), "train": {**cfg["train"], "ti_lr": 0.0}}, SCHEMA)
    with pytest.raises(PrecheckError, match="ti_lr"):
        precheck({**copy.deepcopy(cfg), "train": {**cfg["train"], "ti_lr": -1e-3}}, SCHEMA)
    assert TrainOptions(concept_dir=tmp_path, out_dir=tmp_path, objective="db", ti_lr=0.0).ti_lr == 0
    with pytest.raises(ValueError, match="ti_lr must be >= 0"):
        TrainOptions(concept_dir=tmp_path, out_dir=tmp_path, objective="db", ti_lr=-1e-3)

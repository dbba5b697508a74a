"""Semantic config checks: names against registries, concept folders on disk."""

import copy
from pathlib import Path

import pytest
import yaml

from dcobench.config import ConfigError, check_config

BASE = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yaml").read_text())


def _user_concept(root: Path, captions: dict) -> Path:
    folder = root / "my_cat"
    folder.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (16, 16), "red").save(folder / "00.png")
    (folder / "concept.yaml").write_text(yaml.safe_dump(
        {"kind": "subject", "class": "cat", "live": True, "token": "<my_cat>", "captions": captions}))
    return folder


def test_demo_config_is_valid():
    concepts = check_config(copy.deepcopy(BASE))
    assert set(concepts) == {"toy_robot", "spotted_mug", "mosaic_style"}
    assert concepts["toy_robot"].class_noun == "robot" and concepts["toy_robot"].demo


def test_caption_mismatch_names_the_file(tmp_path):
    _user_concept(tmp_path, {"01.png": "a photo of a <my_cat>"})
    cfg = copy.deepcopy(BASE)
    cfg["data"].update(root=str(tmp_path), demo=False, subjects=["my_cat"], styles=[])
    with pytest.raises(ConfigError, match=r"concept.yaml|00.png|01.png"):
        check_config(cfg)


def test_user_concept_listed_under_wrong_kind(tmp_path):
    _user_concept(tmp_path, {"00.png": "a photo of a <my_cat> on a sofa"})
    cfg = copy.deepcopy(BASE)
    cfg["data"].update(root=str(tmp_path), demo=False, subjects=[], styles=["my_cat"])
    cfg["merge"]["methods"] = []
    with pytest.raises(ConfigError, match="kind: subject"):
        check_config(cfg)


def test_merge_method_must_be_trained():
    cfg = copy.deepcopy(BASE)
    cfg["train"]["methods"]["style"] = ["dco"]
    with pytest.raises(ConfigError, match="'db' is not trained for styles"):
        check_config(cfg)

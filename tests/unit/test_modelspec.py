"""Model specs checked at DAG-build time (models.<key>), a Latin-1 config file, and the folder
swap that keeps a finished model when a rerun fails."""

from __future__ import annotations

import pytest

from dcobench import modelspec
from dcobench.io import replacing_dir
from dcobench.modelspec import check_models, spec_problem
from dcobench.precheck import PrecheckError, check_yaml_file


def test_preset_names_match_the_builders():
    from dcobench.models.presets import LARGE_PRESETS, PRESETS

    assert set(modelspec.PRESET_NAMES) == set(PRESETS) | set(LARGE_PRESETS)


def test_presets_pass_and_typos_get_a_suggestion():
    assert check_models({"base": "tiny-sdxl", "dino": "tiny-dinov2", "siglip": "tiny-siglip",
                         "clip": "tiny-clip"}) == []
    assert spec_problem("base", "tiny-sdxll") == (
        "models.base: 'tiny-sdxll' is not a built-in preset (did you mean 'tiny-sdxl'?), an "
        "existing local folder or a hub id (org/name)")
    assert "did you mean 'tiny-dinov2'?" in spec_problem("dino", "tiny-dino")


def test_local_folder_must_hold_a_loadable_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sdxl").mkdir()
    msg = spec_problem("base", "sdxl")
    assert msg.startswith("models.base: 'sdxl': the local folder holds no loadable model "
                          "(model_index.json is missing; found: nothing)")
    (tmp_path / "sdxl" / "model_index.json").write_text("{}")
    assert spec_problem("base", "sdxl") is None
    assert "config.json is missing" in spec_problem("dino", str(tmp_path / "sdxl"))
    assert "open_clip_config.json is missing" in spec_problem("clip", f"local-dir:{tmp_path}/sdxl")
    assert spec_problem("siglip", "./nowhere/siglip").startswith(
        "models.siglip: './nowhere/siglip': no such folder; fix the path")


def test_hub_id_missing_from_the_cache_offline_names_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    msg = spec_problem("dino", "facebook/dinov2-base")
    assert "models.dino: 'facebook/dinov2-base': hub model not in the local cache" in msg
    assert "`hf download facebook/dinov2-base`" in msg
    assert "hf download timm/vit_b.openai" in spec_problem("clip", "hf-hub:timm/vit_b.openai")
    snap = tmp_path / "models--facebook--dinov2-base" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    assert spec_problem("dino", "facebook/dinov2-base") is None
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert spec_problem("siglip", "google/not-downloaded") is None  # online: fetched when loaded


def test_latin1_config_is_told_to_save_as_utf8(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"experiment: demo\nreport:\n  title: \"d\xe9mo\"\n")
    with pytest.raises(PrecheckError, match=r"config.yaml: not UTF-8 text \(byte 0xe9 on line 3"
                                            r".*save it as UTF-8"):
        check_yaml_file(path)
    path.write_text("report: {title: \"démo\"}\n", encoding="utf-8")
    check_yaml_file(path)


def test_replacing_dir_swaps_whole_folders_only_on_success(tmp_path):
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), replacing_dir(final) as stage:
        (stage / "new.txt").write_text("half")
        raise RuntimeError("killed mid-write")
    assert [p.name for p in final.iterdir()] == ["old.txt"]
    with replacing_dir(final) as stage:
        (stage / "new.txt").write_text("new")
    assert [p.name for p in final.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging left

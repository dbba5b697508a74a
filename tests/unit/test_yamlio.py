"""The one strict YAML reader: a key given twice is refused naming the file, the key and both
lines; a Latin-1 file is told to be saved as UTF-8; `<<:` merge overrides are not duplicates."""

from __future__ import annotations

import pytest

from dcobench.launch import profile_resources
from dcobench.precheck import PrecheckError, check_yaml_file
from dcobench.yamlio import YamlFileError, load_yaml


def test_duplicate_top_level_key_names_file_key_and_lines(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("experiment: demo\nseed: 1\ntrain:\n  lr: 1.0e-4\nseed: 2\n")
    with pytest.raises(YamlFileError, match=r"config.yaml, line 5: key 'seed' appears twice "
                                            r"\(lines 2 and 5\).*keep one"):
        load_yaml(path)


def test_duplicate_nested_key_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1.0e-4\n  steps: 3\n  lr: 2.0e-4\n")
    with pytest.raises(YamlFileError, match=r"line 4: key 'lr' appears twice"):
        load_yaml(path)


def test_merge_key_overrides_are_not_duplicates(tmp_path):
    path = tmp_path / "profile.yaml"
    path.write_text("gpu: &gpu {runtime: 30, mem_mb: 100}\nset-resources:\n"
                    "  train: {<<: *gpu, runtime: 60}\n")
    assert load_yaml(path)["set-resources"]["train"] == {"runtime": 60, "mem_mb": 100}
    assert profile_resources(path, "train").runtime == 60


def test_latin1_file_is_told_to_save_as_utf8(tmp_path):
    path = tmp_path / "extra.yaml"
    path.write_bytes(b"seed: 0\nreport:\n  title: caf\xe9\n")
    with pytest.raises(YamlFileError, match=r"extra.yaml: not UTF-8 text \(byte 0xe9 on line 3"
                                            r".*save it as UTF-8"):
        load_yaml(path)


def test_config_check_reports_duplicates_as_precheck_errors(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("seed: 0\nseed: 1\n")
    with pytest.raises(PrecheckError, match="key 'seed' appears twice"):
        check_yaml_file(path)
    check_yaml_file(tmp_path / "absent.yaml")  # left to whoever reads it


def test_sweep_and_profile_files_refuse_duplicates(tmp_path):
    path = tmp_path / "profile.yaml"
    path.write_text("default-resources:\n  runtime: 10\n  runtime: 20\n")
    with pytest.raises(YamlFileError, match="'runtime' appears twice"):
        profile_resources(path, "train")

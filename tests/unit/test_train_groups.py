"""Fused-training groups of the workflow (train.group_size) and publishing a member's folder."""

import os
import time

import pytest

from dcobench.train.variants import Variant, group_of, publish_member, train_groups

VARIANTS = {"db": Variant("db", "db"), "dco": Variant("dco", "dco"),
            "dbpp": Variant("dbpp", "db", prior=True),
            "db_es": Variant("db_es", "db", checkpoint_of="db", step=2)}
MODELS = [("subject", "cat", "dco"), ("subject", "cat", "db_es"), ("subject", "cat", "dbpp"),
          ("style", "ink", "dco"), ("subject", "dog", "dco")]


def test_groups_by_concept_in_name_order_with_checkpoints_as_their_parent():
    groups = train_groups(MODELS, VARIANTS, "concept")
    assert groups == {("style", "ink"): ["dco"], ("subject", "cat"): ["db+dbpp+dco"],
                      ("subject", "dog"): ["dco"]}
    assert group_of(groups, "subject", "cat", "dbpp") == "db+dbpp+dco"
    with pytest.raises(KeyError, match="subject/cat/db_es"):
        group_of(groups, "subject", "cat", "db_es")  # exported, not trained


def test_group_size_chunks_and_one_is_a_job_per_model():
    assert train_groups(MODELS, VARIANTS, 2)[("subject", "cat")] == ["db+dbpp", "dco"]
    assert train_groups(MODELS, VARIANTS, 1)[("subject", "cat")] == ["db", "dbpp", "dco"]
    # another concept leaves these groups as they were (the DAG stays incremental)
    more = train_groups(MODELS + [("subject", "owl", "db")], VARIANTS, "concept")
    assert {k: v for k, v in more.items() if k[1] != "owl"} == train_groups(MODELS, VARIANTS,
                                                                          "concept")


def test_publish_links_a_member_folder_into_place_with_fresh_times(tmp_path):
    staged = tmp_path / ".groups" / "db+dco" / "dco"
    (staged / "checkpoints" / "step-2").mkdir(parents=True)
    for name in ("pytorch_lora_weights.safetensors", "train_log.csv", "manifest.json",
                 "checkpoints/step-2/pytorch_lora_weights.safetensors"):
        (staged / name).write_text(name)
    old = time.time() - 3600
    for path in staged.rglob("*"):
        os.utime(path, (old, old))
    out = tmp_path / "dco"
    out.mkdir()
    (out / "stale.txt").write_text("from an older run")
    publish_member(staged, out)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "checkpoints/step-2/pytorch_lora_weights.safetensors", "manifest.json",
        "pytorch_lora_weights.safetensors", "train_log.csv"]
    lora = out / "pytorch_lora_weights.safetensors"
    assert os.path.samefile(lora, staged / "pytorch_lora_weights.safetensors")  # a hard link
    assert lora.stat().st_mtime > old + 60
    assert (out / "manifest.json").stat().st_mtime_ns >= lora.stat().st_mtime_ns
    with pytest.raises(FileNotFoundError, match="no finished model"):
        publish_member(tmp_path / "missing", tmp_path / "x")

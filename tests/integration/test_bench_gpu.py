"""`bench gpu --dry` on the tiny model: one command, every section, a sane gpu.json."""

import json
import subprocess
import sys

import pytest

from dcobench.bench.gpu import Plan


@pytest.mark.slow
def test_bench_gpu_dry_writes_every_figure(model_cache, tmp_path):
    out = tmp_path / "gpu.json"
    subprocess.run([sys.executable, "-m", "dcobench", "bench", "gpu", "--base-model", "tiny-sdxl",
                    "--dry", "--out", str(out)], check=True, capture_output=True)
    r = json.loads(out.read_text())
    assert r["dry"] is True and r["base_model"] == "tiny-sdxl" and r["skipped"] == []
    assert set(r["sections"]) == set(r["section_seconds"]) == {"train", "sample", "merge"}
    assert 0 < r["total_seconds"] < r["plan"]["budget_s"] and r["within_budget"]
    train = r["sections"]["train"]
    assert set(train) == {"no_checkpointing", "checkpointing"}
    for v in train.values():
        assert set(v["seconds_per_step"]) == {"db", "dco"}
        assert all(s > 0 for s in v["seconds_per_step"].values()) and v["dco_over_db"] > 0
    sample = r["sections"]["sample"]
    assert set(sample) == {"batch_1", "batch_2"}
    for v in sample.values():
        assert set(v["images_per_s"]) == {"cfg", "rg", "rg_official", "stock_pipeline",
                                          "ours_cfg_end_to_end"}
        assert all(x > 0 for x in v["images_per_s"].values())
        assert v["rg_over_cfg"] > 0 and v["ours_cfg_over_stock"] > 0
    merge = r["sections"]["merge"]
    assert merge["ranks"] == [4, 8] and merge["seconds_per_step"] > 0
    assert merge["memory_model_sdxl"]["ranks"] == [32, 64]
    assert all(isinstance(g, bool) or g is None for g in r["goals"].values())
    assert "torch" in r["versions"]


def test_bench_gpu_budget_skips_the_remaining_sections(model_cache):
    from dcobench.bench.gpu import bench_gpu

    r = bench_gpu(Plan.dry(budget_s=0.0), "tiny-sdxl")
    assert r["skipped"] == ["train", "sample", "merge"] and r["sections"] == {}


def test_plan_checks_its_fields():
    assert Plan().resolution == 1024 and Plan().rank == 32 and Plan().batches == (1, 4, 8)
    with pytest.raises(ValueError, match="unknown bench gpu sections"):
        Plan(sections=("train", "world"))
    with pytest.raises(ValueError, match="multiple of 8"):
        Plan(resolution=100)

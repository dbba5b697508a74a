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
    assert set(sample) == {"batch_1", "batch_2", "channels_last"}
    lever = sample.pop("channels_last")
    assert lever["batch"] == 2 and lever["speedup"] > 0
    assert 0 <= lever["max_abs_latent_diff"] < 1e-3  # fp32: rounding only
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

    r = bench_gpu(Plan.tiny(budget_s=0.0), "tiny-sdxl")
    assert r["skipped"] == ["train", "sample", "merge"] and r["sections"] == {}


def test_plan_checks_its_fields():
    assert Plan().resolution == 1024 and Plan().rank == 32 and Plan().batches == (1, 4, 8)
    with pytest.raises(ValueError, match="unknown bench gpu sections"):
        Plan(sections=("train", "world"))
    with pytest.raises(ValueError, match="multiple of 8"):
        Plan(resolution=100)


def test_out_of_memory_is_recorded_not_fatal(model_cache, monkeypatch):
    """A GPU too small for one setting still gets the other figures."""
    import torch

    from dcobench.bench import gpu, sample

    calls = []

    def fake_bench_sample(args, pipe=None):
        calls.append(args.batch)
        if args.batch == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return {"images_per_s": {"cfg": 1.0}, "seconds_per_step": {"cfg": 1.0}, "rg_over_cfg": 1.2,
                "official_rg_over_cfg": 1.9, "ours_cfg_over_stock": 1.1, "peak_memory_gib": None,
                "precision": "torch.float32"}

    monkeypatch.setattr(sample, "bench_sample", fake_bench_sample)
    r = gpu.bench_gpu(Plan(**{**Plan.tiny().__dict__, "sections": ("sample",)}), "tiny-sdxl")
    assert calls == [1, 2]
    assert r["sections"]["sample"]["batch_2"] == {"error": "out of memory: CUDA out of memory. Tried to allocate 2 GiB"}
    assert r["goals"] == {"rg_over_cfg_le_1.4_batch_1": True, "ours_ge_stock_batch_1": True}

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
    assert set(r["sections"]) == set(r["section_seconds"]) == {"train", "fused", "sample", "merge",
                                                               "memory"}
    assert r["errors"] == {}
    assert 0 < r["total_seconds"] < r["plan"]["budget_s"] and r["within_budget"]
    train = r["sections"]["train"]
    assert set(train) == {"no_checkpointing", "checkpointing"}
    for v in train.values():
        assert set(v["seconds_per_step"]) == {"db", "dco"}
        assert all(s > 0 for s in v["seconds_per_step"].values()) and v["dco_over_db"] > 0
    fused = r["sections"]["fused"]  # fused K = 2 (DB + DCO) vs their separate steps
    assert fused["k"] == 2 and fused["resolution"] == 64 and fused["peak_memory_gib"] is None
    assert fused["fused_s_per_step"] > 0 and fused["separate_s_per_step"] > 0
    assert fused["speedup"] == pytest.approx(fused["separate_s_per_step"] / fused["fused_s_per_step"])
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
    assert r["skipped"] == ["train", "fused", "sample", "merge", "memory"] and r["sections"] == {}


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


@pytest.mark.slow
def test_bench_gpu_full_plan_at_a_resolution_the_128_px_demo_failed(model_cache, tmp_path):
    """Every section of the real code path, at 288² (needs ≥ 144 px images: the demo draws 128
    px, which made the train section raise ConceptError before anything was written)."""
    out = tmp_path / "gpu.json"
    subprocess.run([sys.executable, "-m", "dcobench", "bench", "gpu", "--base-model", "tiny-sdxl",
                    "--dry", "--resolution", "288", "--out", str(out)], check=True,
                   capture_output=True)
    r = json.loads(out.read_text())
    assert r["errors"] == {} and r["skipped"] == [] and r["plan"]["resolution"] == 288
    assert set(r["sections"]) == {"train", "fused", "sample", "merge", "memory"}
    for name, figures in r["sections"].items():
        assert figures and "error" not in json.dumps(figures), name
    assert all(v["seconds_per_step"]["dco"] > 0 for v in r["sections"]["train"].values())
    memory = r["sections"]["memory"]
    assert {c["call"] for c in memory["calls"]} == {"unet_sample", "vae_decode", "vae_encode",
                                                     "unet_train_dco"}
    assert memory["within_tolerance"], memory
    rows = r["ms_per_unet_row"]
    assert rows["sample"]["288"] > 0 and rows["train"]["288"] > 0


def test_a_failing_section_is_recorded_and_the_next_one_runs(model_cache, monkeypatch, tmp_path):
    """The train section raises (as ConceptError did); gpu.json already holds its error when the
    sample section starts, and the sample section still gives its figures."""
    from dcobench.bench import gpu, sample, train
    from dcobench.data.concept import ConceptError

    def broken(args):
        raise ConceptError("toy_robot/00.png: 128×128 pixels is too small")

    seen = []
    real_sample = sample.bench_sample

    def sample_after_reading_the_json(args, pipe=None):
        seen.append(json.loads(out.read_text()))
        return real_sample(args, pipe)

    monkeypatch.setattr(train, "bench_train", broken)
    monkeypatch.setattr(sample, "bench_sample", sample_after_reading_the_json)
    out = tmp_path / "gpu.json"
    plan = Plan(**{**Plan.tiny().__dict__, "sections": ("train", "sample"), "batches": (1,),
                   "gradient_checkpointing": (False,)})
    r = gpu.bench_gpu(plan, "tiny-sdxl", out)
    error = "ConceptError: toy_robot/00.png: 128×128 pixels is too small"
    assert seen[0]["errors"] == {"train/no_checkpointing": error}
    assert r["errors"] == {"train/no_checkpointing": error}
    assert r["sections"]["sample"]["batch_1"]["images_per_s"]["cfg"] > 0
    assert json.loads(out.read_text()) == json.loads(json.dumps(r))
    assert r["ms_per_unet_row"]["sample"]["64"] > 0 and "train" not in r["ms_per_unet_row"]


def test_a_section_that_raises_outside_its_figures_is_recorded(model_cache, monkeypatch):
    from dcobench.bench import gpu, sample

    def no_pipeline(*a, **k):
        raise OSError("no such model folder")

    monkeypatch.setattr(sample, "load_bench_pipe", no_pipeline)
    r = gpu.bench_gpu(Plan(**{**Plan.tiny().__dict__, "sections": ("sample",)}), "tiny-sdxl")
    assert r["sections"]["sample"] == {"error": "OSError: no such model folder"}
    assert r["errors"] == {"sample": "OSError: no such model folder"} and r["goals"] == {}


def test_a_failing_fused_section_is_recorded_and_the_next_one_runs(model_cache, monkeypatch):
    import torch

    from dcobench.bench import gpu, train

    def too_big(args, model):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9 GiB")

    monkeypatch.setattr(train, "bench_fused", too_big)
    r = gpu.bench_gpu(Plan(**{**Plan.tiny().__dict__, "sections": ("fused", "memory")}),
                      "tiny-sdxl")
    assert r["errors"] == {"fused": "out of memory: CUDA out of memory. Tried to allocate 9 GiB"}
    assert r["sections"]["memory"]["calls"] and r["skipped"] == []

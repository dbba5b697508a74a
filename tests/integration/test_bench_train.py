"""`bench train` runs its fused vs separate section and writes its figures (no timing asserts)."""

import csv
import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_train_writes_fused_and_separate_figures(model_cache, demo_root, tmp_path):
    out = tmp_path / "train.json"
    done = subprocess.run(
        [sys.executable, "-m", "dcobench", "bench", "train", "--concept", str(demo_root / "toy_robot"),
         "--base-model", "tiny-sdxl", "--fused-models", "tiny-sdxl", "--ks", "1", "--k-all", "3",
         "--steps", "1", "--rounds", "1", "--warmup", "0", "--out", str(out)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    rows = result["fused"]["rows"]
    assert [(r["model"], r["k"], r["all_variants"]) for r in rows] == [
        ("tiny-sdxl", 1, False), ("tiny-sdxl", 3, True)]
    for r in rows:
        assert r["fused_s_per_step"] > 0 and r["separate_s_per_step"] > 0 and r["speedup"] > 0
    with open(tmp_path / "train_fused.csv", newline="") as f:
        assert [int(r["k"]) for r in csv.DictReader(f)] == [1, 3]
    assert result["dco_over_db"] > 0  # the objectives section still runs

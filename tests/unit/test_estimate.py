"""One GPU-hour estimate from one per-row cost source (issue 36): the noise distance counted as
the code runs it, bench gpu's measured cost used when present, config/ holds configs only."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dcobench import estimate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def paper():
    return estimate.load_config(REPO / "config" / "paper.yaml", REPO / "config.yaml")


def test_noise_distance_counts_two_rows_per_draw_not_per_reference_image(paper):
    cfg = {**paper, "experiments": ["fig8c"]}
    costs = estimate.load_costs(Path("/nonexistent/gpu.json"))
    assert costs.unet_row_ms == estimate.MS_PER_UNET_ROW and "fallback" in costs.source
    nd = cfg["analysis"]["noise_distance"]
    rules = estimate.estimate(cfg, costs)
    models = len(cfg["experiment_defs"]["fig8c"]["subjects"]) * len(nd["variants"])
    per_model = nd["timesteps"] * nd["noises"] * 2 * estimate.MS_PER_UNET_ROW / 3.6e6
    assert rules["noise_distance_run"].jobs == models
    assert rules["noise_distance_run"].hours == pytest.approx(models * per_model)


def test_measured_costs_from_bench_gpu_replace_the_fallback(paper, tmp_path):
    bench = tmp_path / "gpu.json"
    bench.write_text(json.dumps({"gpu": "H100", "ms_per_unet_row": {  # as bench gpu writes it
        "sample": {"1024": 32.5}, "train": {"1024": 310.0}}}))
    measured = estimate.load_costs(bench)
    assert (measured.unet_row_ms, measured.train_row_ms) == (32.5, 310.0)
    assert "measured" in measured.source
    fallback = estimate.load_costs(tmp_path / "missing.json")
    cfg = {**paper, "experiments": ["fig5"]}
    a, b = estimate.estimate(cfg, measured), estimate.estimate(cfg, fallback)
    assert a["sample"].hours == pytest.approx(b["sample"].hours * 32.5 / estimate.MS_PER_UNET_ROW)


def test_fig5_style_grid_is_split_into_jobs_that_fit_the_limit(paper):
    cfg = {**paper, "experiments": ["fig5"]}
    rules = estimate.estimate(cfg, estimate.load_costs(Path("/nonexistent")))
    limits = estimate.profile_limits(REPO / "slurm")
    # 190 prompts × 2 seeds × (2 + 4·3 rows) × 50 steps per style model
    whole = 380 * 14 * 50 * estimate.MS_PER_UNET_ROW / 3.6e6
    assert whole > limits["sample"]  # one job would not fit ...
    assert rules["sample"].max_job_hours == pytest.approx(whole / paper["sample"]["chunks"]["style"])
    assert rules["sample"].max_job_hours < limits["sample"]  # ... its chunks do
    lines = estimate.report_lines(rules, estimate.load_costs(Path("/nonexistent")), limits)
    assert any(line.split()[0] == "sample" for line in lines[2:]) and "OVER" not in "".join(lines)


def test_config_folder_holds_configs_only():
    assert sorted(p.name for p in (REPO / "config").iterdir() if p.suffix == ".py") == []


@pytest.mark.slow
def test_estimate_command_prints_every_gpu_rule():
    out = subprocess.run([sys.executable, "-m", "dcobench", "estimate", "--configfile",
                          "config/paper.yaml", "--bench", "/nonexistent.json"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for rule in ("train", "priors", "sample", "sample_merge", "noise_distance_run", "total"):
        assert f"\n  {rule} " in out.stdout


def test_grouped_sampling_counts_one_job_per_concept_and_chunk_and_the_same_hours(paper):
    """sample.group_size concept: the same UNet rows, in one sample_group job per (kind,
    concept, chunk), each as long as its members' jobs together (what the time limit sees)."""
    costs = estimate.load_costs(Path("/nonexistent"))
    cfg = {**paper, "experiments": ["fig5"]}
    single = estimate.estimate(cfg, costs)
    grouped = estimate.estimate({**cfg, "sample": {**cfg["sample"], "group_size": "concept"}}, costs)
    assert "sample" not in grouped and "sample_pretrained" not in grouped
    per_model = sum(single[r].hours for r in ("sample", "sample_pretrained") if r in single)
    assert grouped["sample_group"].hours == pytest.approx(per_model)
    assert grouped["sample_group"].jobs < sum(single[r].jobs for r in ("sample", "sample_pretrained")
                                              if r in single)
    assert grouped["sample_group"].max_job_hours > single["sample"].max_job_hours

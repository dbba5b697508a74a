"""The live-bytes ledger the memory model is built on, and the per-row cost source."""

from __future__ import annotations

import json

import pytest
import torch

from dcobench.costs import DEFAULT_MS_PER_UNET_ROW, ms_per_unet_row, rows_from_bench
from dcobench.memory import fits, measuring


def test_ledger_counts_new_tensors_not_views_and_frees_them():
    x = torch.empty(1000, device="meta")  # made outside: not counted
    with measuring() as m:
        a = x + 1
        assert m.live == 4000
        v = a.view(10, 100)  # a view: no new bytes, keeps `a` alive
        del a
        assert m.live == 4000
        del v
        assert m.live == 0
        b = (x * 2).to(torch.bfloat16)
        assert m.live == 2000 and m.peak == 6000  # x * 2 (4000) and its bf16 copy existed together
        del b


def test_ledger_holds_what_backward_needs_until_backward():
    w = torch.empty(256, 256, device="meta", requires_grad=True)
    x = torch.empty(8, 256, device="meta")
    with measuring() as m:
        y = torch.tanh(x @ w)  # tanh saves its output for backward
        del y
        kept = m.live
        assert kept >= 8 * 256 * 4
    assert kept > 0


def test_sdpa_is_counted_as_a_gpu_runs_it_without_the_tokens_squared_matrix():
    q = torch.empty(1, 4, 4096, 64, device="meta")
    with measuring() as m, torch.no_grad():
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert m.peak < 4 * 4096 * 4096  # one (4096 × 4096) fp32 matrix of one head would be 64 MiB


def test_fits_keeps_two_percent_headroom():
    assert fits(39 * 2**30, 40) and not fits(40 * 2**30, 40) and fits(40 * 2**30, 80)


def test_per_row_costs_come_from_bench_gpu_else_the_fallback(tmp_path):
    assert ms_per_unet_row("sample", bench_json=None) == (
        DEFAULT_MS_PER_UNET_ROW["sample"], "fallback estimate (dcobench/costs.py)")
    assert ms_per_unet_row("train", 512, None)[0] == DEFAULT_MS_PER_UNET_ROW["train"] / 4
    sections = {"sample": {"batch_1": {"seconds_per_step": {"cfg": 0.08}},
                           "batch_8": {"seconds_per_step": {"cfg": 0.48}},
                           "channels_last": {}},
                "train": {"no_checkpointing": {"seconds_per_step": {"db": 0.35, "dco": 0.45}}}}
    rows = rows_from_bench(sections, 1024)
    assert rows == {"sample": {"1024": pytest.approx(30.0)}, "train": {"1024": pytest.approx(350.0)}}
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps({"dry": False, "gpu": "H100", "ms_per_unet_row": rows}))
    ms, source = ms_per_unet_row("train", 1024, path)
    assert ms == pytest.approx(350.0) and "measured" in source and "H100" in source
    assert ms_per_unet_row("train", 512, path)[1].startswith("fallback")  # not measured at 512
    path.write_text(json.dumps({"dry": True, "ms_per_unet_row": rows}))  # CPU figures: ignored
    assert ms_per_unet_row("train", 1024, path)[0] == DEFAULT_MS_PER_UNET_ROW["train"]
    with pytest.raises(ValueError, match="unknown stage"):
        ms_per_unet_row("merge")

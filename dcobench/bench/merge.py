"""`python -m dcobench bench merge`: ZipLoRA time and peak memory over a learning-rate sweep
(how far the mergers move), next to the memory a dense-ΔW implementation would need."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

import torch

from dcobench.merge.lora import Lora, MergeOptions


def _random_lora(unet, rank: int, seed: int) -> Lora:
    """A rank-`rank` LoRA with random factors on every attention projection of `unet`."""
    from dcobench.models.adapters import LORA_TARGETS

    g = torch.Generator().manual_seed(seed)
    A, B = {}, {}
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(LORA_TARGETS):
            A[name] = torch.randn(rank, module.in_features, generator=g) / module.in_features**0.5
            B[name] = 0.1 * torch.randn(module.out_features, rank, generator=g) / rank**0.5
    return Lora(A, B, 1.0, {"r": rank, "lora_alpha": rank})


def memory_model(subject: Lora, style: Lora) -> dict[str, float]:
    """MiB of: the dense fp32 ΔW of both LoRAs (what the public ZipLoRA keeps), the low-rank
    factors this implementation keeps, and the merger vectors."""
    mib = 4 / 2**20
    dense = sum(lo.B[k].shape[0] * lo.A[k].shape[1] for lo in (subject, style) for k in lo.A)
    factors = sum(a.numel() + lo.B[k].numel() for lo in (subject, style) for k, a in lo.A.items())
    mergers = 2 * sum(a.shape[1] for a in subject.A.values())
    return {"dense_delta_w_mib": dense * mib, "low_rank_factors_mib": factors * mib,
            "merger_vectors_mib": mergers * mib, "layers": len(subject.A)}


class PeakRss:
    """Peak resident memory of this process while inside the context (sampled every 5 ms)."""

    def __enter__(self):
        import psutil

        self._proc, self._stop = psutil.Process(), threading.Event()
        self.baseline = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.extra_mib = (self.peak - self.baseline) / 2**20


def _run(pipe, subject, style, sampler, zopts) -> dict:
    from dcobench.merge.ziplora import ZipLora, train_mergers

    cuda = torch.cuda.is_available()
    zl = ZipLora(subject, style, device=pipe.unet.device)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with PeakRss() as rss:
        start = time.perf_counter()
        rows = train_mergers(pipe.unet, zl, sampler, zopts)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    first, last = rows[0], rows[-1]
    result = {"lr": zopts.lr, "steps": zopts.steps, "seconds_per_step": seconds / zopts.steps,
              "loss_first": first["loss"], "loss_last": last["loss"],
              "recon_first": first["loss_subject"] + first["loss_style"],
              "recon_last_mean10": sum(r["loss_subject"] + r["loss_style"] for r in rows[-10:])
              / len(rows[-10:]),
              "penalty_first": first["penalty"], "penalty_last": last["penalty"],
              **{k: last[k] for k in ("mean_abs_change", "max_abs_change", "frac_changed_1pct")},
              "peak_rss_extra_mib": rss.extra_mib}
    if cuda:
        result["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def sdxl_memory(ranks: tuple[int, int] = (32, 64)) -> dict[str, float]:
    """memory_model for SDXL's UNet shapes (built on the meta device: no weights, no download)."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=(320, 640, 1280), layers_per_block=2, attention_head_dim=(5, 10, 20),
            cross_attention_dim=2048, transformer_layers_per_block=(1, 2, 10),
            use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816)
    shapes = {n: (m.out_features, m.in_features) for n, m in unet.named_modules()
              if isinstance(m, torch.nn.Linear) and n.endswith(("to_q", "to_k", "to_v", "to_out.0"))}

    def lora(r):
        return Lora({k: torch.empty(r, i, device="meta") for k, (o, i) in shapes.items()},
                    {k: torch.empty(o, r, device="meta") for k, (o, i) in shapes.items()}, 1.0, {})

    return {"ranks": list(ranks), **memory_model(lora(ranks[0]), lora(ranks[1]))}


def bench_merge(args) -> dict:
    """Tiny-model ZipLoRA sweep (random rank-4/8 LoRAs on the demo concepts) -> result dict."""
    from dcobench.data.demo import write_demo_concepts
    from dcobench.io import device, versions
    from dcobench.merge.ziplora import ZipLoraOptions
    from dcobench.merge.ziplora_data import load_pipeline, make_sampler

    with tempfile.TemporaryDirectory() as tmp:
        write_demo_concepts(Path(tmp))
        opts = MergeOptions(subject_dir=Path(tmp) / "toy_robot", style_dir=Path(tmp) / "mosaic_style",
                            base_model=args.base_model)
        pipe = load_pipeline(opts)
        subject, style = _random_lora(pipe.unet, args.ranks[0], 0), _random_lora(pipe.unet, args.ranks[1], 1)
        sweep = []
        for lr in args.lrs:
            zopts = ZipLoraOptions(steps=args.steps, lr=lr, resolution=args.resolution)
            sweep.append(_run(pipe, subject, style, make_sampler(pipe, opts, zopts), zopts))
            print(json.dumps(sweep[-1]))
    return {"device": str(device()), "gpu": torch.cuda.is_available(), "model": args.base_model,
            "ranks": list(args.ranks), "resolution": args.resolution, "sweep": sweep,
            "memory_model_tiny": memory_model(subject, style), "memory_model_sdxl": sdxl_memory(),
            "versions": versions()}

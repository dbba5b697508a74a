"""`bench sample`: CFG vs reward guidance (ours: one 3-row call; official: a LoRA call plus a
2-row base call) per denoising step, and our CFG vs the stock diffusers SDXL pipeline.

Everything is measured side by side in one run on one pipeline: the methods alternate in
rounds, so drift in machine load hits all alike, and the medians over rounds are reported. The
LoRA has random non-zero factors, so its cost is real. On CUDA, peak allocated memory is
recorded per timed loop.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from dcobench.sample import denoise as sampling

TIMED = ("cfg", "rg", "rg_official")  # the guided loops compared per step


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def random_lora(pipe, rank: int, name: str = "theta", seed: int = 0) -> None:
    """Attach a LoRA with non-zero random B (the trained-model case) and activate it."""
    from dcobench.models.adapters import add_lora, randomize_lora_b

    add_lora(pipe.unet, rank=rank, alpha=rank, name=name)
    randomize_lora_b(pipe.unet, 0.01, seed)
    pipe.unet.to(pipe.device)
    pipe.set_adapters([name])


def _timed(fn: Callable[[], object]) -> tuple[float, int]:
    """Seconds of one call and, on CUDA, its peak allocated bytes."""
    _sync()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    fn()
    _sync()
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    return time.perf_counter() - start, peak


def _runners(pipe, args, dtype) -> dict[str, Callable[[], object]]:
    """One zero-argument callable per timed loop, all on the same prompts and noise."""
    b = args.batch
    theta = [f"a photo of <x> object number {i}" for i in range(b)]
    base = [f"a photo of object number {i}" for i in range(b)]
    h = args.resolution // pipe.vae_scale_factor
    noise = sampling.initial_noise(list(range(b)), (pipe.unet.config.in_channels, h, h))
    specs = {"cfg": sampling.GuideSpec("cfg", 7.5, "theta"),
             "rg": sampling.GuideSpec("rg3", 7.5, "theta")}
    conds = {k: sampling.conditioning(pipe, s, theta, base, args.resolution) for k, s in specs.items()}

    def loop(kind: str, arrangement: str = "batched"):
        return lambda: sampling.denoise(pipe, specs[kind], conds[kind], noise, args.steps,
                                        args.scheduler, arrangement)

    def stock():
        return pipe(prompt=theta, height=args.resolution, width=args.resolution,
                    num_inference_steps=args.steps, guidance_scale=7.5, latents=noise.to(dtype),
                    output_type="pt").images

    def ours():
        return sampling.generate(pipe, specs["cfg"], theta, base, list(range(b)), args.resolution,
                                 args.steps, args.scheduler)

    return {"cfg": loop("cfg"), "rg": loop("rg"), "rg_official": loop("rg", "split"),
            "stock_pipeline": stock, "ours_cfg_end_to_end": ours}


def load_bench_pipe(base_model: str, mixed_precision: str, rank: int, scheduler: str):
    """The benchmark pipeline: `base_model` with a random rank-`rank` LoRA "theta" active, and
    `scheduler` as the stock pipeline's scheduler too. Returns (pipe, its dtype)."""
    from dcobench.io import device
    from dcobench.models import load_sdxl
    from dcobench.models.finetuned import autocast_dtype

    dev = device()
    dtype = autocast_dtype(mixed_precision, dev) or torch.float32
    pipe = load_sdxl(base_model, device=dev, dtype=dtype)
    pipe.scheduler = sampling.make_scheduler(pipe, scheduler)  # the stock pipeline's too
    random_lora(pipe, rank)
    pipe.set_progress_bar_config(disable=True)  # the stock loop pays no terminal writes
    return pipe, dtype


def bench_sample(args, pipe=None) -> dict:
    """The figures of `bench sample`; `pipe`: from `load_bench_pipe`, when the caller has one."""
    from dcobench.io import device, versions

    dev = device()
    if pipe is None:
        pipe, dtype = load_bench_pipe(args.base_model, args.mixed_precision, args.rank, args.scheduler)
    else:
        dtype = pipe.unet.dtype
    runners = _runners(pipe, args, dtype)
    for fn in runners.values():
        for _ in range(args.warmup):
            fn()
    seconds: dict[str, list[float]] = {k: [] for k in runners}
    peak = dict.fromkeys(runners, 0)
    for _ in range(args.rounds):
        for name, fn in runners.items():
            sec, mem = _timed(fn)
            seconds[name].append(sec)
            peak[name] = max(peak[name], mem)
    median = {k: statistics.median(v) for k, v in seconds.items()}
    per_step = {k: median[k] / args.steps for k in TIMED}
    images_per_s = {k: args.batch / median[k] for k in runners}  # loops: no text encoding, no decode
    gpu = torch.cuda.is_available()
    return {
        "device": str(dev), "gpu": torch.cuda.get_device_name() if gpu else None,
        "base_model": args.base_model, "resolution": args.resolution, "batch": args.batch,
        "steps": args.steps, "scheduler": args.scheduler, "rank": args.rank,
        "precision": str(dtype), "rounds": args.rounds, "warmup": args.warmup,
        "seconds_per_step": per_step,
        "seconds_by_round": seconds,
        "rg_over_cfg": per_step["rg"] / per_step["cfg"],
        "official_rg_over_cfg": per_step["rg_official"] / per_step["cfg"],
        "rg_over_official": per_step["rg"] / per_step["rg_official"],
        "images_per_s": images_per_s,
        "ours_cfg_over_stock": images_per_s["ours_cfg_end_to_end"] / images_per_s["stock_pipeline"],
        "peak_memory_gib": {k: p / 2**30 for k, p in peak.items()} if gpu else None,
        "versions": versions(),
    }

"""`python -m dcobench bench gpu`: every GPU figure of the project in one command, one JSON.

Sections, in order (each one's wall time is recorded; once `budget_s` is spent, the remaining
sections are skipped and say so, so the command ends near its budget whatever the machine):

- `train`: DCO vs DB seconds per step and peak memory (`bench train`), with and without
  gradient checkpointing, on the demo subject with its learned token.
- `fused`: fused training (dcobench.train.fused) of K = `fused_k` trainings of one concept (DB
  and DCO) in one step against the K separate `Trainer` steps they replace (`bench train`'s
  fused figures, `bench_fused`): seconds per step each, `speedup` = separate / fused, peak
  memory of each; no gradient checkpointing. Whether grouping pays on a GPU at SDXL scale.
- `sample`: CFG, our one-call RG, the official RG arrangement, the stock diffusers pipeline and
  our CFG end to end, in images per second, per batch size (`bench sample`, one pipeline); and
  the `sample.channels_last` lever: CFG seconds per step in each memory format at the largest
  batch, and the largest latent difference it makes.
- `merge`: ZipLoRA seconds per step and peak memory for a subject/style rank pair (`bench merge`).
- `memory`: measured beside predicted peak memory (`dcobench.memory.compare_calls`) of the calls
  the GPU rules are made of: a DCO training step, a guided sampling call, a VAE decode, a VAE
  encode, at the plan's resolution.

Each section records its own failure (`{"error": ...}`) and the next one still runs; the JSON is
rewritten after every section (`out`), so a crash or a time limit never loses what was measured.
`ms_per_unet_row` (per stage and resolution) is what `dcobench.costs.ms_per_unet_row` reads for
GPU-hour estimates.

The world's build time is not measured here (`python -m dcobench world build` reports its own).
`Plan.full` is the paper setting on a GPU (1024², rank 32, bf16); `Plan.tiny` (`--dry`) the same code at
tiny sizes, for CPU tests. Figures are medians over alternating rounds, as in each bench.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

SECTIONS = ("train", "fused", "sample", "merge", "memory")
MEMORY_TOLERANCE = 0.15  # |predicted / measured − 1| the memory model is held to (docs/gpu.md)


@dataclass(frozen=True)
class Plan:
    """What `bench gpu` runs. Budget 8 min on one H100-class GPU with sdxl-shaped, from a
    pessimistic bound (no GPU has run it yet; 65 ms per 1024² UNet row in bf16, twice
    `dcobench.costs.DEFAULT_MS_PER_UNET_ROW["sample"]`): train 2 × 24 steps plus two model
    loads ≈ 1.5 min; fused K = 2 vs separate: three loads, 3 × 12 steps of 2–3 rows ≈ 1 min;
    sample 2,496 UNet rows, 104 decodes and one load ≈ 3.5 min, the channels_last lever 256
    rows ≈ 0.3 min; merge one load and 5 steps ≈ 0.7 min; memory one load and 4 calls ≈ 0.5
    min: ≈ 7.5 min. `budget_s` bounds it whatever the machine."""

    resolution: int = 1024
    rank: int = 32  # subject LoRA rank (paper); the merge pairs it with `style_rank`
    style_rank: int = 64
    mixed_precision: str = "bf16"
    train_steps: int = 5  # timed steps per objective and round
    sample_steps: int = 4  # denoising steps per timed loop
    merge_steps: int = 5  # ZipLoRA steps
    warmup: int = 2
    rounds: int = 2
    batches: tuple[int, ...] = (1, 4, 8)
    gradient_checkpointing: tuple[bool, ...] = (False, True)
    fused_k: int = 2  # trainings fused in the `fused` section (DB, DCO, DB, ...)
    budget_s: float = 480.0  # sections starting after this many seconds are skipped
    sections: tuple[str, ...] = SECTIONS
    dry: bool = False  # tiny sizes (`Plan.tiny`): the figures are not GPU figures

    def __post_init__(self) -> None:
        if self.resolution % 8 or min(self.rank, self.style_rank, self.train_steps, self.sample_steps,
                                       self.merge_steps, self.rounds, self.fused_k) < 1 \
                or self.warmup < 0:
            raise ValueError("resolution must be a multiple of 8; ranks, steps and rounds >= 1")
        if not self.batches or min(self.batches) < 1:
            raise ValueError("batches must be non-empty and >= 1")
        unknown = set(self.sections) - set(SECTIONS)
        if unknown:
            raise ValueError(f"unknown bench gpu sections {sorted(unknown)}; known: "
                             f"{', '.join(SECTIONS)}")

    @classmethod
    def tiny(cls, budget_s: float = 480.0, resolution: int = 64) -> Plan:
        """Tiny sizes, a step or two each, fp32: the whole command in a minute on a CPU."""
        return cls(resolution=resolution, rank=4, style_rank=8, mixed_precision="fp32",
                   train_steps=1, sample_steps=2, merge_steps=2, warmup=0, rounds=1,
                   batches=(1, 2), budget_s=budget_s, dry=True)


@dataclass
class _Clock:
    budget_s: float
    start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def spent(self) -> bool:
        return self.elapsed() >= self.budget_s


def _train(plan: Plan, base_model: str, concept: Path) -> dict:
    from dcobench.bench.train import bench_train

    out = {}
    for gc in plan.gradient_checkpointing:
        args = argparse.Namespace(concept=str(concept), base_model=base_model, steps=plan.train_steps,
                                  rank=plan.rank, resolution=plan.resolution,
                                  mixed_precision=plan.mixed_precision, gradient_checkpointing=gc,
                                  warmup=plan.warmup, rounds=plan.rounds)
        out["checkpointing" if gc else "no_checkpointing"] = _guarded(lambda a=args: _pick(
            bench_train(a), ("seconds_per_step", "dco_over_db", "peak_memory_gib", "precision")))
    return out


def _fused(plan: Plan, base_model: str, concept: Path) -> dict:
    """Fused K = plan.fused_k vs the K separate steps it replaces (`bench_fused`), medians
    over alternating rounds; no gradient checkpointing."""
    from dcobench.bench.train import bench_fused

    args = argparse.Namespace(concept=str(concept), rank=plan.rank, resolution=plan.resolution,
                              mixed_precision=plan.mixed_precision, gradient_checkpointing=False,
                              ks=[plan.fused_k], k_all=plan.fused_k, steps=plan.train_steps,
                              warmup=plan.warmup, rounds=plan.rounds)
    r = bench_fused(args, base_model)
    (row,) = r["rows"]
    out = {k: row[k] for k in ("k", "resolution", "fused_s_per_step", "separate_s_per_step",
                               "speedup")}
    out["peak_memory_gib"] = r["peak_memory_gib"]
    return out


def _sample(plan: Plan, base_model: str) -> dict:
    from dcobench.bench.sample import bench_sample, load_bench_pipe

    pipe, _ = load_bench_pipe(base_model, plan.mixed_precision, plan.rank, "ddim")
    out = {}
    for b in plan.batches:
        args = argparse.Namespace(batch=b, resolution=plan.resolution, steps=plan.sample_steps,
                                  scheduler="ddim", warmup=plan.warmup, rounds=plan.rounds,
                                  base_model=base_model, rank=plan.rank)
        out[f"batch_{b}"] = _guarded(lambda a=args, p=pipe: _pick(bench_sample(a, p), (
            "images_per_s", "seconds_per_step", "rg_over_cfg", "official_rg_over_cfg",
            "ours_cfg_over_stock", "peak_memory_gib", "precision")))
    out["channels_last"] = _guarded(lambda p=pipe: channels_last_lever(p, plan, max(plan.batches)))
    del pipe
    _free()
    return out


def channels_last_lever(pipe, plan: Plan, batch: int) -> dict:
    """`sample.channels_last` measured: our CFG loop with the UNet in each memory format,
    alternating per round (medians), and how far its latents move (the switch is not exact)."""
    import statistics

    from dcobench.bench.sample import _runners

    args = argparse.Namespace(batch=batch, resolution=plan.resolution, steps=plan.sample_steps,
                              scheduler="ddim")
    cfg = _runners(pipe, args, pipe.unet.dtype)["cfg"]
    formats = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
    seconds: dict[str, list[float]] = {k: [] for k in formats}
    latents = {}
    for round_ in range(plan.warmup + plan.rounds):
        for name, fmt in formats.items():
            pipe.unet.to(memory_format=fmt)
            _sync()
            start = time.perf_counter()
            latents[name] = cfg()
            _sync()
            if round_ >= plan.warmup:
                seconds[name].append(time.perf_counter() - start)
    pipe.unet.to(memory_format=torch.contiguous_format)
    median = {k: statistics.median(v) / plan.sample_steps for k, v in seconds.items()}
    diff = (latents["channels_last"].float() - latents["contiguous"].float()).abs().max().item()
    return {"batch": batch, "cfg_seconds_per_step": median,
            "speedup": median["contiguous"] / median["channels_last"],
            "max_abs_latent_diff": diff}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _merge(plan: Plan, base_model: str) -> dict:
    from dcobench.bench.merge import bench_merge

    args = argparse.Namespace(base_model=base_model, ranks=[plan.rank, plan.style_rank],
                              steps=plan.merge_steps, resolution=plan.resolution, lrs=[1e-2])
    r = bench_merge(args)
    run = r["sweep"][0]
    return {"ranks": r["ranks"], "seconds_per_step": run["seconds_per_step"],
            "peak_memory_gib": run.get("cuda_max_allocated_mib", 0) / 1024 if r["gpu"] else None,
            "peak_rss_extra_mib": run["peak_rss_extra_mib"],
            "memory_model_sdxl": r["memory_model_sdxl"]}


def _pick(result: dict, keys: tuple[str, ...]) -> dict:
    return {k: result[k] for k in keys}


def _guarded(run) -> dict:
    """`run()`, or {"error": ...} when it fails — out of memory on a smaller GPU, or anything
    else — so the other figures still come; memory is released either way."""
    import sys
    import traceback

    try:
        return run()
    except torch.cuda.OutOfMemoryError as exc:
        return {"error": f"out of memory: {str(exc).splitlines()[0]}"}
    except Exception as exc:  # noqa: BLE001 — recorded in gpu.json, the next figure still runs
        traceback.print_exc(file=sys.stderr)
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        _free()


def _free() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _goals(result: dict) -> dict:
    """The issue's goals against the figures; None where a figure is missing (a skipped section,
    or peak memory off CUDA). Paper, App. D.5 (A100): DCO/DB 1.3x, DCO peak 16.0 GB."""
    train = result["sections"].get("train") or {}
    sample = result["sections"].get("sample") or {}
    train, sample = ({} if "error" in sec else sec for sec in (train, sample))
    goals = {}
    for name, v in train.items():
        if "error" in v:
            continue
        goals[f"dco_over_db_le_1.35_{name}"] = v["dco_over_db"] <= 1.35
        peak = v["peak_memory_gib"]
        goals[f"dco_peak_le_12gib_{name}"] = peak["dco"] <= 12 if peak else None
    for name, v in sample.items():
        if "error" in v or not name.startswith("batch_"):
            continue
        goals[f"rg_over_cfg_le_1.4_{name}"] = v["rg_over_cfg"] <= 1.4
        goals[f"ours_ge_stock_{name}"] = v["ours_cfg_over_stock"] >= 1.0
    return goals


def _memory(plan: Plan, base_model: str) -> dict:
    """Measured beside predicted activation peaks (dcobench.memory) at the plan's resolution."""
    from dcobench.io import device
    from dcobench.memory import compare_calls
    from dcobench.models.finetuned import autocast_dtype

    dev = device()
    dtype = autocast_dtype(plan.mixed_precision, dev) or torch.float32
    rows = compare_calls(base_model, dev, dtype, plan.resolution, rows=1, rank=plan.rank)
    ratios = [r["predicted_over_measured"] for r in rows if r["predicted_over_measured"]]
    return {"calls": rows, "tolerance": MEMORY_TOLERANCE,
            "within_tolerance": all(abs(r - 1) <= MEMORY_TOLERANCE for r in ratios)}


def demo_concept(root: Path, resolution: int) -> Path:
    """The demo subject, its images enlarged (Lanczos) to the short side training needs at
    `resolution` (the demo draws 128 px; 1024² needs ≥ 512 px), so validation accepts it."""
    from PIL import Image

    from dcobench.data.demo import write_demo_concepts
    from dcobench.data.images import min_side

    concept = write_demo_concepts(root, ["toy_robot"])[0]
    need = min_side(resolution)
    for path in sorted(concept.glob("*.png")):
        with Image.open(path) as img:
            if min(img.size) < need:
                scale = need / min(img.size)
                size = (round(img.width * scale), round(img.height * scale))
                img.convert("RGB").resize(size, Image.LANCZOS).save(path)
    return concept


def bench_gpu(plan: Plan, base_model: str = "sdxl-shaped", out: Path | None = None) -> dict:
    """Run the plan's sections within its budget; the result dict of gpu.json, also written to
    `out` after every section (a failed section is recorded and the next one runs)."""
    from dcobench.costs import rows_from_bench
    from dcobench.io import device, versions

    clock = _Clock(plan.budget_s)
    gpu = torch.cuda.is_available()
    result = {"device": str(device()), "gpu": torch.cuda.get_device_name() if gpu else None,
              "base_model": base_model, "dry": plan.dry, "plan": asdict(plan), "sections": {},
              "section_seconds": {}, "skipped": [], "errors": {}, "ms_per_unet_row": {},
              "versions": versions()}
    with tempfile.TemporaryDirectory() as tmp:
        concepts: list[Path] = []

        def concept() -> Path:  # the demo subject, written once for train and fused
            if not concepts:
                concepts.append(demo_concept(Path(tmp), plan.resolution))
            return concepts[0]

        runs = {"train": lambda: _train(plan, base_model, concept()),
                "fused": lambda: _fused(plan, base_model, concept()),
                "sample": lambda: _sample(plan, base_model),
                "merge": lambda: _merge(plan, base_model),
                "memory": lambda: _memory(plan, base_model)}
        for name in plan.sections:
            if clock.spent():
                result["skipped"].append(name)
                _finish(result, plan, clock, out)
                continue
            start = time.perf_counter()
            result["sections"][name] = section = _guarded(runs[name])
            result["section_seconds"][name] = time.perf_counter() - start
            result["errors"].update(_errors(section, name))
            result["ms_per_unet_row"] = rows_from_bench(result["sections"], plan.resolution)
            _finish(result, plan, clock, out)
    return _finish(result, plan, clock, out)


def _errors(figures, path: str) -> dict[str, str]:
    """Every recorded error in a section's figures, by its path ("train/checkpointing")."""
    if not isinstance(figures, dict):
        return {}
    if "error" in figures:
        return {path: figures["error"]}
    found = {}
    for key, value in figures.items():
        found.update(_errors(value, f"{path}/{key}"))
    return found


def _finish(result: dict, plan: Plan, clock: _Clock, out: Path | None) -> dict:
    """Totals and goals so far; gpu.json rewritten atomically when `out` is given."""
    import json

    from dcobench.io import write_text_atomic

    result["total_seconds"] = clock.elapsed()
    result["within_budget"] = result["total_seconds"] <= plan.budget_s
    result["goals"] = _goals(result)
    if out is not None:
        write_text_atomic(Path(out), json.dumps(result, indent=2) + "\n")
    return result

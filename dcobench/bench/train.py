"""DCO vs DB training step time (and GPU peak memory), measured side by side in one run.

One Trainer (one copy of the model) alternates between the two objectives in rounds, so drift
in machine load hits both alike; the objectives differ only in DCO's extra no-grad reference
forward. On CUDA, peak allocated memory is recorded per objective.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from dcobench.train.objectives import OBJECTIVES


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_train(args) -> dict:
    from dcobench.io import device, versions
    from dcobench.train.options import TrainOptions
    from dcobench.train.trainer import Trainer

    opts = TrainOptions(concept_dir=Path(args.concept), out_dir=Path("/nonexistent"), objective="dco",
                        base_model=args.base_model, steps=args.steps, rank=args.rank,
                        resolution=args.resolution, mixed_precision=args.mixed_precision,
                        gradient_checkpointing=args.gradient_checkpointing)
    trainer = Trainer(opts)
    objectives = ("db", "dco")
    for name in objectives:
        trainer.objective = OBJECTIVES[name]
        for _ in range(args.warmup):
            trainer.step()
    rounds: dict[str, list[float]] = {m: [] for m in objectives}  # seconds per step, per round
    peak = dict.fromkeys(objectives, 0)
    for _ in range(args.rounds):
        for name in objectives:
            trainer.objective = OBJECTIVES[name]
            _sync()
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            for _ in range(args.steps):
                trainer.step()
            _sync()
            rounds[name].append((time.perf_counter() - start) / args.steps)
            if torch.cuda.is_available():
                peak[name] = max(peak[name], torch.cuda.max_memory_allocated())
    per_step = {m: statistics.median(r) for m, r in rounds.items()}  # robust to load spikes
    gpu = torch.cuda.is_available()
    return {
        "device": str(device()), "gpu": torch.cuda.get_device_name() if gpu else None,
        "base_model": args.base_model, "resolution": args.resolution, "rank": args.rank,
        "precision": str(trainer.amp or torch.float32),
        "gradient_checkpointing": args.gradient_checkpointing, "learned_token": opts.learns_token,
        "steps": args.steps, "rounds": args.rounds, "seconds_per_step": per_step,
        "seconds_per_step_by_round": rounds,
        "dco_over_db": per_step["dco"] / per_step["db"],
        "peak_memory_gib": {m: p / 2**30 for m, p in peak.items()} if gpu else None,
        "versions": versions(),
    }

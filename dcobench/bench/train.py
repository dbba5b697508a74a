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


# --- fused vs separate (issue 37) ----------------------------------------------------------

FUSED_RESOLUTION = {"world-sdxl": 32}  # the world's canvas; other models use --resolution


def _member(i: int) -> dict:
    """The i-th member of a benchmark group: DB and DCO alternate, DCO at distinct βs (one seed,
    so a group's DCO members share their reference rows, as a world subject's DCO variants do)."""
    if i % 2 == 0:
        return {"objective": "db"}
    return {"objective": "dco", "beta": 0.5 * (1 + i // 2)}


def _timed(step, steps: int) -> float:
    _sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync()
    return (time.perf_counter() - start) / steps


def bench_fused(args, model: str) -> dict:
    """Seconds per step of K trainings fused in one FusedTrainer vs the K separate `Trainer`
    steps they replace (one DB and one DCO Trainer timed, summed over the group's mix), in
    alternating rounds; `speedup` = separate / fused (training throughput at equal steps).
    Model loading and process start-up, paid once per separate job, are not counted."""
    from dcobench.train.fused import FusedTrainer
    from dcobench.train.options import TrainOptions
    from dcobench.train.trainer import Trainer

    res = FUSED_RESOLUTION.get(model, args.resolution)
    common = dict(concept_dir=Path(args.concept), base_model=model, rank=args.rank, resolution=res,
                  mixed_precision=args.mixed_precision, steps=10**6,
                  gradient_checkpointing=args.gradient_checkpointing)
    ks = sorted(set(args.ks) | {args.k_all})
    separate = {o: Trainer(TrainOptions(out_dir=Path(f"/nonexistent/{o}"), objective=o, **common))
                for o in ("db", "dco")}
    fused = {k: FusedTrainer([TrainOptions(out_dir=Path(f"/nonexistent/{k}/{i}"),
                                           **{**common, **_member(i)}) for i in range(k)])
             for k in ks}
    runs = {**{f"separate_{o}": t.step for o, t in separate.items()},
            **{f"fused_{k}": f.step for k, f in fused.items()}}
    for step in runs.values():
        for _ in range(args.warmup):
            step()
    rounds: dict[str, list[float]] = {name: [] for name in runs}
    gpu = torch.cuda.is_available()
    peak = dict.fromkeys(runs, 0)
    for _ in range(args.rounds):
        for name, step in runs.items():
            if gpu:
                torch.cuda.reset_peak_memory_stats()
            rounds[name].append(_timed(step, args.steps))
            if gpu:
                peak[name] = max(peak[name], torch.cuda.max_memory_allocated())
    med = {name: statistics.median(r) for name, r in rounds.items()}
    rows = []
    for k in ks:
        mix = [_member(i)["objective"] for i in range(k)]
        sep = sum(med[f"separate_{o}"] for o in mix)
        rows.append({"model": model, "k": k, "all_variants": k == args.k_all,
                     "resolution": res, "fused_s_per_step": med[f"fused_{k}"],
                     "separate_s_per_step": sep, "speedup": sep / med[f"fused_{k}"]})
    return {"rows": rows, "seconds_per_step_by_round": rounds,
            "peak_memory_gib": {n: b / 2**30 for n, b in peak.items()} if gpu else None}


def bench_train_fused(args) -> dict:
    """`bench_fused` for every model of --fused-models, side by side in one run."""
    import csv

    from dcobench.io import versions

    results = {m: bench_fused(args, m) for m in args.fused_models}
    rows = [r for res in results.values() for r in res["rows"]]
    csv_path = Path(args.out).with_name(Path(args.out).stem + "_fused.csv")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return {"rows": rows, "csv": str(csv_path), "threads": torch.get_num_threads(),
            "steps": args.steps, "rounds": args.rounds, "rank": args.rank,
            "by_round": {m: r["seconds_per_step_by_round"] for m, r in results.items()},
            "versions": versions()}

"""GPU cost per UNet row: what `bench gpu` measured, else the documented fallback.

A *row* is one image's worth of UNet work in one call (CFG samples 2 rows per image and step,
one-call reward guidance 3; a training step at batch 1 is 1 row forward + backward, DCO adds a
no-grad reference row). `bench gpu` writes its measured figures to its JSON under
``ms_per_unet_row`` → ``{"sample" | "train": {"<resolution>": ms}}``; `ms_per_unet_row` reads
them back, and falls back to the constants below where no measurement exists.
"""

from __future__ import annotations

import json
from pathlib import Path

# Fallbacks at 1024², bf16, one GPU: estimates, not measurements (no GPU has run `bench gpu` for
# this project yet), chosen to err high because SLURM time limits are planned with them.
# Sampling: 65 ms per no-grad row, an A100-class figure (fig5's 1,900-image grid, 266,000 rows,
# is ≈ 4 h on an A100: ≈ 54 ms per row; an H100 is nearer 30 ms). Training: 400 ms per batch-1
# DB step (forward + backward of one row, with gradient checkpointing). One source: the
# GPU-hour estimate (dcobench/estimate.py) and `bench gpu` both read these.
DEFAULT_MS_PER_UNET_ROW = {"sample": 65.0, "train": 400.0}
REFERENCE_RESOLUTION = 1024
BENCH_JSON = Path("results/bench/gpu.json")


def ms_per_unet_row(stage: str, resolution: int = REFERENCE_RESOLUTION,
                    bench_json: Path | None = BENCH_JSON) -> tuple[float, str]:
    """(ms per UNet row, source) for `stage` ("sample" or "train") at `resolution`: the figure
    `bench gpu` measured at that resolution, else the fallback scaled by pixel count (the UNet's
    cost grows about linearly with latent pixels at SDXL sizes; rough off 1024²)."""
    if stage not in DEFAULT_MS_PER_UNET_ROW:
        raise ValueError(f"unknown stage {stage!r}; known: {sorted(DEFAULT_MS_PER_UNET_ROW)}")
    if bench_json is not None and Path(bench_json).is_file():
        data = json.loads(Path(bench_json).read_text())
        measured = (data.get("ms_per_unet_row") or {}).get(stage, {}).get(str(resolution))
        if measured and not data.get("dry"):
            return float(measured), f"measured ({bench_json}, {data.get('gpu')})"
    scale = (resolution / REFERENCE_RESOLUTION) ** 2
    return DEFAULT_MS_PER_UNET_ROW[stage] * scale, "fallback estimate (dcobench/costs.py)"


def rows_from_bench(sections: dict, resolution: int) -> dict[str, dict[str, float]]:
    """`ms_per_unet_row` for gpu.json from its sections: sampling = our CFG loop's seconds per
    step / (2 rows × batch) at the largest batch measured; training = the DB step's seconds
    (batch 1: one row) without gradient checkpointing."""
    out: dict[str, dict[str, float]] = {}
    sample = {k: v for k, v in (sections.get("sample") or {}).items()
              if k.startswith("batch_") and "error" not in v}
    if sample:
        batch = max(sample, key=lambda k: int(k.split("_")[1]))
        per_step = sample[batch]["seconds_per_step"]["cfg"]
        out["sample"] = {str(resolution): 1000 * per_step / (2 * int(batch.split("_")[1]))}
    train = (sections.get("train") or {}).get("no_checkpointing") or {}
    if "seconds_per_step" in train:
        out["train"] = {str(resolution): 1000 * train["seconds_per_step"]["db"]}
    return out

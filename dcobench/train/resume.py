"""Resume state of a training run: everything needed to continue it bit-exactly.

A run writing `results/.../{variant}/` keeps its in-progress files in the sibling folder
`{variant}.resume/` (not a Snakemake output, so a failed or killed job does not lose it):
`state.pt` (LoRA, learned-token rows, optimizer, LR scheduler, grad scaler, RNG states, step,
log rows) and `checkpoints/step-N/`. A rerun with the same options continues from `state.pt`;
a rerun with different options starts over. The folder is removed once the run has finished.
The trainer's part of the state is `Trainer.state_dict()` / `Trainer.load_state_dict()`; this
module owns the files and the options fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import torch

STATE_FILE = "state.pt"
# options that do not change the trained weights: a resume state stays valid across them
NEUTRAL_OPTIONS = ("out_dir", "log_every", "resume_every")

log = logging.getLogger("dcobench")


def resume_dir(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir.with_name(f"{out_dir.name}.resume")


def fingerprint(options: dict) -> str:
    """A hash of the options that determine the weights (resume only into the same run)."""
    kept = {k: v for k, v in options.items() if k not in NEUTRAL_OPTIONS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_environment() -> dict:
    """What besides the options decides a run's bits on this machine: torch's CPU threads (a
    reduction split over other threads sums in another order), the CPU kernels torch picked
    (AVX2 vs AVX-512) and the GPU, if any."""
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "gpu": gpu}


def save_state(work: Path, state: dict) -> Path:
    """Write `state.pt` atomically (a kill mid-write leaves the previous state intact), with
    the environment it was written in."""
    work.mkdir(parents=True, exist_ok=True)
    tmp, path = work / f".{STATE_FILE}.tmp", work / STATE_FILE
    torch.save({**state, "environment": run_environment()}, tmp)
    os.replace(tmp, path)
    return path


def load_state(work: Path, expected_fingerprint: str) -> dict | None:
    """The saved state if it belongs to this run, else None (and the folder is cleared)."""
    path = Path(work) / STATE_FILE
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file means: start over
        log.warning("resume state %s is unreadable (%s); starting over", path, exc)
        return None
    if state.get("fingerprint") != expected_fingerprint:
        log.warning("resume state %s was written with different options; starting over", path)
        return None
    before, now = state.get("environment"), run_environment()
    if before is not None and before != now:
        # A SLURM requeue may land on another node type. Starting over would throw the work
        # away; continuing is the same computation in another summation order, so the run
        # continues, says so here, and its manifest records both (`resumed_across`).
        log.warning("resume state %s was written in another environment (%s; now %s): the run "
                    "continues, and is not bit-identical to one run in either", path, before, now)
        state["resumed_across"] = {"before": before, "now": now}
    return state


def save_dir_atomic(final: Path, write) -> None:
    """Call `write(tmp_dir)` and rename the folder into place (replacing an older copy)."""
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)

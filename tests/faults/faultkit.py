"""Helpers of the fault-injection suite (fixtures in conftest.py). Faults are injected into real
processes: the stages run as `python -m dcobench <stage>` (as every Snakemake rule runs them),
with tiny presets and a handful of steps, and are killed, starved of disk, fed corrupted inputs
or have their model folder taken away. No mocks.

Each test asserts the two things a researcher's 1,000-job run needs (docs/faults.md):
- nothing that looks complete is wrong: a final file is either absent or verifies against the
  sha256 its folder's manifest.json recorded (`complete_or_absent`);
- the rerun finishes: the same command run again ends with a complete, verified output.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRAIN = {"steps": 2, "rank": 4, "resolution": 64, "mixed_precision": "fp32"}
SAMPLE = {"guides": ["cfg"], "num_prompts": 2, "seeds": [0], "steps": 2, "resolution": 64,
          "batch_size": 1, "mixed_precision": "fp32"}
MODELS = {"dino": "tiny-dinov2", "siglip": "tiny-siglip", "clip": "tiny-clip"}
METRICS = "dino,siglip_text,clip_i,clip_t"
LORA, EMBEDS = "pytorch_lora_weights.safetensors", "learned_embeds.safetensors"


class Stages:
    """The dcobench CLI in a fixed environment: a model cache and the demo concepts."""

    def __init__(self, root: Path):
        self.root = root
        self.concept = root / "data" / "toy_robot"
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                    "DCOBENCH_CACHE": str(root / "models"), "PYTHONPATH": str(REPO),
                    "PYTHONUNBUFFERED": "1"}
        self.durations: dict[str, float] = {}  # stage -> wall time of its fixture run

    def train_argv(self, out: Path, base: str = "tiny-sdxl", **options) -> list[str]:
        return ["train", "--concept", str(self.concept), "--objective", "dco", "--out", str(out),
                "--base-model", base, "--options", json.dumps({**TRAIN, **options})]

    def sample_argv(self, model: Path | None, out: Path, base: str = "tiny-sdxl",
                    **options) -> list[str]:
        argv = ["sample", "--subject", str(self.concept), "--out", str(out), "--base-model", base,
                "--options", json.dumps({**SAMPLE, **options})]
        return argv + (["--model", str(model)] if model else [])

    def score_argv(self, samples: Path, out: Path) -> list[str]:
        return ["score", "--samples", str(samples), "--out-dir", str(out), "--metrics", METRICS,
                "--models", json.dumps(MODELS), "--subject", str(self.concept),
                "--meta", json.dumps({"exp": "faults", "group": "subject",
                                      "concept": "toy_robot", "variant": "dco"})]

    def _cmd(self, argv: list[str]) -> list[str]:
        return [sys.executable, "-m", "dcobench", *argv]

    def run(self, argv: list[str], file_size_limit: int | None = None, timeout: int = 600,
            ) -> subprocess.CompletedProcess:
        """Run a stage to its end; `file_size_limit` (bytes) is RLIMIT_FSIZE: a full disk."""
        def limit():
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
        return subprocess.run(self._cmd(argv), env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=self.root,
                              preexec_fn=limit if file_size_limit else None)

    def ok(self, argv: list[str]) -> subprocess.CompletedProcess:
        out = self.run(argv)
        assert out.returncode == 0, out.stderr[-3000:]
        return out

    def timed_ok(self, name: str, argv: list[str]) -> subprocess.CompletedProcess:
        """`ok`, recording the run's wall time as durations[name] (the span kills fall in)."""
        start = time.monotonic()
        out = self.ok(argv)
        self.durations[name] = time.monotonic() - start
        return out

    def kill_at_random_point(self, argv: list[str], seed: int, span: float, log: Path,
                             marker: str) -> tuple[float, int | None]:
        """Start a stage, wait until it prints `marker` (its first progress line: models loaded,
        work begun), then SIGKILL it after a seeded random delay in [0, rest), rest being what
        remains of `span` (an uninterrupted run's wall time): anywhere in computing or writing.
        Returns (delay, returncode); None or 0 means the stage finished before the kill."""
        start = time.monotonic()
        with open(log, "w") as out:
            proc = subprocess.Popen(self._cmd(argv), env=self.env, stdout=out, stderr=out,
                                    cwd=self.root)
            while marker not in log.read_text(errors="replace") and proc.poll() is None:
                assert time.monotonic() - start < 600, f"{marker!r} never printed"
                time.sleep(0.05)
            rest = max(0.5, span - (time.monotonic() - start))
            delay = random.Random(seed).uniform(0.0, rest)
            try:
                proc.wait(timeout=delay)
                return delay, None
            except subprocess.TimeoutExpired:
                proc.kill()
            return delay, proc.wait(timeout=60)


def copy(folder: Path, to: Path) -> Path:
    """A copy of a finished output folder (so a test can break it without touching others)."""
    shutil.copytree(folder, to, symlinks=True)
    return to


def leftovers(folder: Path) -> list[str]:
    """Temp files (hidden names) inside `folder` and its staging folders beside it."""
    beside = [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]
    return sorted(str(p) for p in [*beside, *folder.rglob(".*")])


def verified(folder: Path, *names: str) -> None:
    """Every file the manifest.json of `folder` lists is there and matches its sha256, and
    `names` are among them (a complete output)."""
    from dcobench.io import verify_file

    recorded = json.loads((folder / "manifest.json").read_text())["sha256"]
    for name in names:
        assert name in recorded, (name, sorted(recorded))
    for rel in recorded:
        verify_file(folder / rel)


def complete_or_absent(folder: Path, finals: tuple[str, ...]) -> None:
    """Nothing that looks complete is wrong: no temp file stands under a final name, and where
    the folder's manifest exists every file it lists verifies; where it does not, none of the
    final files `finals` is there."""
    if (folder / "manifest.json").exists():
        verified(folder, *finals)
    else:
        present = [n for n in finals if (folder / n).exists()]
        assert not present, f"{present} present in {folder} without a manifest"


def mtimes(folder: Path) -> dict[str, int]:
    """relative path -> mtime of every file under `folder` (what a rerun must not redo)."""
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
            for p in sorted(folder.rglob("*")) if p.is_file()}

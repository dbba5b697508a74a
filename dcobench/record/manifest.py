"""What a record says about the run that produced it: the code (git commit), the config (its
files and their hash), the machine (python, torch, diffusers, CPU, threads) and the wall time
per rule summed from Snakemake's benchmark files. The commit and environment the jobs ran in
come from the run's own job manifests (run_provenance); the writer's are kept beside them,
since a record may be written later, from another checkout. Torch-free unless torch is already installed,
in which case only its thread count is read."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections import Counter
from importlib import metadata
from pathlib import Path

import pandas as pd

from dcobench.machine import cpu_model

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("torch", "diffusers", "transformers", "peft", "open_clip_torch", "snakemake",
            "numpy", "pandas")


def _git(*args: str) -> str:
    """Output of a git command in the repository, "" when git or the repository is absent."""
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def git_state() -> dict:
    """The commit checked out and whether tracked files differ from it (dirty)."""
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None
    return {"commit": commit or "unknown", "dirty": dirty}


def run_provenance(results: Path) -> dict:
    """The commits and job environments recorded in the run's job manifests (every
    manifest.json under `results` that carries a "git" field, staged copies in hidden folders
    such as a group's .groups/ left out), each with its job count, most
    common first: one commit and one environment for a run made in one sitting; more when it
    was resumed on other code or another machine. Empty lists for a run with no job manifests."""
    commits: Counter = Counter()
    envs: Counter = Counter()
    results = Path(results)
    for path in sorted(results.rglob("manifest.json")):
        if any(part.startswith(".") for part in path.relative_to(results).parts):
            continue  # a group's staged copy (.groups/...): the published member counts once
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(manifest, dict) or "git" not in manifest:
            continue
        commits[str(manifest["git"])] += 1
        env = manifest.get("environment")
        if env is not None:
            envs[json.dumps(env, sort_keys=True)] += 1
    return {"commits": [{"commit": c, "jobs": n} for c, n in commits.most_common()],
            "environments": [{"jobs": n, **json.loads(e)} for e, n in envs.most_common()]}


def config_hash(files: list[Path]) -> str:
    """sha256 over the config files in order (each: its name, a NUL, its bytes, a NUL)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(Path(path).name.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return digest.hexdigest()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _torch_threads() -> int | None:
    """torch.get_num_threads() in this process (the record writer's), None without torch."""
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def environment() -> dict:
    """Python and package versions, CPU, cores and thread settings of the writing machine."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in PACKAGES},
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": _torch_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def rule_times(benchmarks: Path) -> list[dict]:
    """Per rule (the first folder under benchmarks/, or the file's stem): jobs, wall seconds
    summed over jobs, and the largest max_rss (MB), from Snakemake's benchmark .tsv files."""
    rows = []
    for tsv in sorted(Path(benchmarks).rglob("*.tsv")):
        rel = tsv.relative_to(benchmarks)
        table = pd.read_csv(tsv, sep="\t")
        rss = pd.to_numeric(table["max_rss"], errors="coerce") if "max_rss" in table else None
        rows.append({"rule": rel.parts[0] if len(rel.parts) > 1 else tsv.stem,
                     "s": float(table["s"].sum()),
                     "max_rss": float("nan") if rss is None else float(rss.max())})
    if not rows:
        return []
    frame = pd.DataFrame(rows).groupby("rule", sort=True)
    out = frame.agg(jobs=("s", "size"), wall_s=("s", "sum"), max_rss_mb=("max_rss", "max"))
    return [{"rule": rule, "jobs": int(r.jobs), "wall_s": round(float(r.wall_s), 3),
             "max_rss_mb": None if pd.isna(r.max_rss_mb) else round(float(r.max_rss_mb), 1)}
            for rule, r in out.iterrows()]

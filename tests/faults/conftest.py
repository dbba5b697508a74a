"""Fixtures of the fault-injection suite: the demo concept, and a finished tiny training,
sampling and scoring run that each fault copies or reruns (helpers in faultkit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultkit import Stages


@pytest.fixture(scope="session")
def stages(tmp_path_factory) -> Stages:
    """The environment with the demo concept drawn (tiny presets are built on first use)."""
    stages = Stages(tmp_path_factory.mktemp("faults"))
    stages.ok(["prepare", "demo", "--root", str(stages.root / "data"), "--names", "toy_robot"])
    return stages


@pytest.fixture(scope="session")
def trained(stages) -> Path:
    """A finished tiny training run (LoRA, learned embeddings, manifest with checksums)."""
    out = stages.root / "trained"
    stages.timed_ok("train", stages.train_argv(out))
    return out


@pytest.fixture(scope="session")
def sampled(stages, trained) -> Path:
    """The trained model sampled: <out>/cfg/{p000_s0.png, p001_s0.png, index.csv}."""
    out = stages.root / "sampled"
    stages.timed_ok("sample", stages.sample_argv(trained, out))
    return out


@pytest.fixture(scope="session")
def scored(stages, sampled) -> Path:
    """The samples scored: <out>/cfg.csv + manifest.json."""
    out = stages.root / "scored"
    stages.timed_ok("score", stages.score_argv(sampled / "cfg", out))
    return out


def _slurm_harness():
    """tests/slurm/conftest.py (the local one-node cluster), loaded under its own name so its
    `slurm_cluster` fixture serves this folder too (it skips where the cluster cannot start)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "slurm" / "conftest.py"
    spec = importlib.util.spec_from_file_location("slurm_harness", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


slurm_cluster = _slurm_harness().slurm_cluster

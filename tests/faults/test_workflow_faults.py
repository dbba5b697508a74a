"""Faults met by the workflow as a whole (real `snakemake` on the tiny config): a second
invocation on the same results folder while the first runs, and a job killed with `kill -9`
under Snakemake. The second invocation is refused and the first is untouched; after the kill,
`--rerun-incomplete` redoes that job only."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultkit import EMBEDS, LORA, REPO, verified

sys.path.insert(0, str(REPO / "tests" / "workflow"))
from wfrun import SNAKEMAKE, run_snakemake, tiny_config, write_config  # noqa: E402

pytestmark = pytest.mark.slow
MODELS = "results/incr/models/subject/toy_robot"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, stages):
    """A workflow folder with the tiny config and its concepts (nothing run yet)."""
    workdir = tmp_path_factory.mktemp("workflow")
    stages.ok(["prepare", "demo", "--root", str(workdir / "data"), "--names",
               "toy_robot,mosaic_style"])
    write_config(workdir, tiny_config())
    return workdir


def _start(workdir: Path, *targets: str) -> subprocess.Popen:
    env = {"HF_HUB_OFFLINE": "1", "DCOBENCH_CACHE": str(workdir / "models"),
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory",
                             str(workdir), "--cores", "1", *targets],
                            env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait(predicate, proc, what, seconds=600):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.poll() is None, f"snakemake ended before {what}: {proc.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _descendants(pid: int) -> list[int]:
    """Process ids below `pid` (from /proc), nearest first."""
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop(0)}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def _train_pid(proc) -> int | None:
    for pid in _descendants(proc.pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"dcobench" in cmd and b"train" in cmd:
            return pid
    return None


def _prepared(workdir: Path) -> dict[str, int]:
    """mtimes of the records of the finished prepare jobs."""
    return {p.name: p.stat().st_mtime_ns
            for p in (workdir / "results" / "incr" / "prepared").rglob("*.json")}


def test_second_invocation_on_one_folder_is_refused(workdir):
    target = f"{MODELS}/dco/{LORA}"
    first = _start(workdir, target)
    _wait(lambda: any((workdir / ".snakemake" / "locks").glob("*")), first, "the lock")
    second = run_snakemake(workdir, None, "--cores", "1", target, timeout=600)
    text = second.stdout + second.stderr
    assert second.returncode != 0, text[-3000:]
    assert "Directory cannot be locked" in text and "no other Snakemake process" in text, text
    out, _ = first.communicate(timeout=900)
    assert first.returncode == 0, out[-3000:]  # the first run is untouched
    verified(workdir / MODELS / "dco", LORA, EMBEDS)
    again = run_snakemake(workdir, None, "-n", "--cores", "1", target, timeout=600)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_job_killed_under_snakemake_is_redone_alone(workdir):
    target = f"{MODELS}/db/{LORA}"
    run = _start(workdir, target)
    _wait(lambda: _train_pid(run) is not None, run, "the training job")
    time.sleep(1.0)
    pid = _train_pid(run)
    before = _prepared(workdir)
    subprocess.run(["kill", "-9", str(pid)], check=True)
    out, _ = run.communicate(timeout=600)
    assert run.returncode != 0, out[-3000:]
    db = workdir / MODELS / "db"
    assert not (db / "manifest.json").exists() and not (db / LORA).exists(), out[-3000:]
    rerun = run_snakemake(workdir, None, "--cores", "1", "--rerun-incomplete", target)
    text = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, text[-3000:]
    assert "rule train:" in text and "rule prepare" not in text, text[-3000:]  # that job only
    assert _prepared(workdir) == before  # nothing finished is redone
    verified(db, LORA)

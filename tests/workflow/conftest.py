"""A finished tiny run (real snakemake, user-owned concept folders) shared by the workflow tests
that change one thing and look at what a dry run schedules, or that a rejected input leaves
results/ untouched."""

import subprocess
import sys

import pytest
from wfrun import REPO, run_snakemake, tiny_config


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """(workdir, config) of a finished tiny run; tests restore whatever they change."""
    workdir = tmp_path_factory.mktemp("finished_run")
    draw = subprocess.run([sys.executable, "-m", "dcobench", "prepare", "demo", "--root",
                           str(workdir / "data"), "--names", "toy_robot,spotted_mug,mosaic_style"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert draw.returncode == 0, draw.stderr
    config = tiny_config()
    run = run_snakemake(workdir, config, "--cores", "2")
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    again = run_snakemake(workdir, config, "-n", "--cores", "1")
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-3000:]
    return workdir, config

"""`record write` on a finished tiny run (real snakemake): a small record of its tables, grids
and manifest that changes nothing under results/, that two writes of the same run do not
differ in, and from which the report rebuilds."""

import json
import os
import subprocess
import sys

import pytest
from wfrun import REPO, results_listing

pytestmark = pytest.mark.slow


def _dcobench(workdir, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "dcobench", *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_record_of_a_finished_run(finished_run, tmp_path):
    workdir, config = finished_run
    before = results_listing(workdir)
    results = f"results/{config['experiment']}"
    a, b = tmp_path / "a", tmp_path / "b"
    _dcobench(workdir, "record", "write", "--results", results, "--out", str(a))
    _dcobench(workdir, "record", "write", "--results", results, "--out", str(b))
    assert results_listing(workdir) == before  # read only
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["config_files"][0]["copy"] == "config/config.yaml"
    assert {"train", "sample", "score", "aggregate", "report"} <= {
        r["rule"] for r in manifest["rule_times"]}
    assert manifest["grids"] and (a / "images" / manifest["grids"][0]).exists()
    assert sum(p.stat().st_size for p in a.rglob("*") if p.is_file()) < 2_000_000
    assert "no verdict or number moved" in _dcobench(workdir, "record", "diff", str(a), str(b),
                                                     "--fail-on-diff")
    _dcobench(workdir, "record", "report", "--record", str(a), "--out", str(tmp_path / "r.html"))
    assert "from the record" in (tmp_path / "r.html").read_text(encoding="utf-8")

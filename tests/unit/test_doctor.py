"""`python -m dcobench doctor` (issue 36): one line per check, non-zero exit on a failure; the
model, SLURM and estimate checks on real inputs."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dcobench.cli import doctor

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_doctor_on_this_machine_fails_cuda_and_the_hub_models_and_exits_nonzero():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "dcobench", "doctor", "--configfile",
                          "config/paper.yaml", "--bench", "/nonexistent.json"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = {line[6:22].strip(): line[:4] for line in out.stdout.splitlines()
             if line[:4] in ("PASS", "FAIL", "SKIP")}
    assert lines["models.base"] == "FAIL" and lines["models.siglip"] == "FAIL"
    assert lines["cuda"] == "FAIL"  # no GPU here
    assert lines["estimate"] == "PASS" and lines["slurm"] in ("PASS", "SKIP")
    assert lines["memory"] in ("PASS", "SKIP") and "disk" in lines
    assert "noise_distance_run" in out.stdout and "GPU-h" in out.stdout


@pytest.mark.slow
def test_a_downloaded_pipeline_and_a_local_folder_pass_with_their_tokenizers(monkeypatch,
                                                                             tmp_path):
    from dcobench import weights
    from dcobench.models.presets import resolve_model

    monkeypatch.setenv("DCOBENCH_CACHE", str(tmp_path))
    local = resolve_model("tiny-sdxl")
    check = doctor.model_check("base", local)
    assert check.status == "PASS" and "CLIPTokenizer" in check.detail
    folder = weights.weights_dir("org/sdxl")
    folder.parent.mkdir(parents=True)
    os.symlink(local, folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert doctor.model_check("base", "org/sdxl").status == "FAIL"  # not complete: offline
    (Path(local) / weights.COMPLETE).write_text("{}")
    try:
        assert doctor.model_check("base", "org/sdxl").status == "PASS"
    finally:
        (Path(local) / weights.COMPLETE).unlink()


def _fake(tmp_path, name, text):
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\ncat <<'EOF'\n{text}\nEOF\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_slurm_partitions_and_select_type_against_sinfo(monkeypatch, tmp_path):
    """sinfo / scontrol output as SLURM 22.05 prints it; the shipped profile (GPU rules on
    `gpu`, CPU rules on the default partition, --gpus)."""
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    _fake(tmp_path, "sinfo", "cpu* (null)\ngpu gpu:a100:4")
    _fake(tmp_path, "scontrol", "SelectType              = select/cons_tres")
    checks = doctor.slurm_checks(REPO / "slurm")
    assert [c.status for c in checks] == ["PASS", "PASS", "PASS"], checks
    _fake(tmp_path, "sinfo", "batch* (null)\ngpus gpu:a100:4")  # no partition named gpu
    _fake(tmp_path, "scontrol", "SelectType              = select/cons_res")
    bad = doctor.slurm_checks(REPO / "slurm")
    assert [c.status for c in bad] == ["PASS", "FAIL", "FAIL"]
    assert "partition gpu: not in sinfo" in bad[1].detail and "*gres" in bad[2].detail

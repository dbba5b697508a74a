"""The README's recipe for your own photo subject: config/my_concepts.yaml on the CPU-sized
real-photo config, a DreamBooth subject from the real-data mirror as "my_cat". It schedules only
that subject's jobs, runs to the report, and leaves another experiment's results untouched."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from wfrun import AGGREGATES, REPO, SNAKEMAKE, planned_jobs

SHARED = Path(os.environ.get("DCOBENCH_DATA_MIRROR", "/nonexistent/DCOBENCH_DATA_MIRROR-unset"))


def _snakemake(workdir: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DCOBENCH_CACHE": str(workdir / "models"),
           "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile",
         "config/smoke-real.yaml", "config/my_concepts.yaml", *args],
        capture_output=True, text=True, env=env, timeout=3600)


def _checksums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_the_recipe_adds_a_photo_subject_and_touches_nothing_else(tmp_path):
    photos = SHARED / "dreambooth" / "cat"
    if not photos.is_dir():
        pytest.skip(f"real data not found at {SHARED} (set DCOBENCH_DATA_MIRROR)")
    (tmp_path / "config").mkdir()
    for name in ("smoke-real.yaml", "my_concepts.yaml"):
        shutil.copy(REPO / "config" / name, tmp_path / "config" / name)
    mine = tmp_path / "data" / "local" / "my_cat"
    mine.mkdir(parents=True)
    for image in sorted(photos.glob("*.jpg"))[:3]:
        shutil.copy(image, mine / image.name)
    draft = subprocess.run([sys.executable, "-m", "dcobench", "new-concept", str(mine),
                            "--class", "cat", "--live"], capture_output=True, text=True,
                           cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert draft.returncode == 0, draft.stderr
    assert "'local/my_cat'" in draft.stdout  # the entry the overlay lists
    demo = tmp_path / "results" / "demo"  # another experiment's results, e.g. `make demo`'s
    (demo / "tables").mkdir(parents=True)
    (demo / "tables" / "summary.csv").write_text("metric,value\nprompt_acc,0.5\n")
    (demo / "report.html").write_text("<html>the demo</html>")
    before = _checksums(demo)

    dry = _snakemake(tmp_path, "-n", "--cores", "1")
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-4000:]
    jobs = planned_jobs(dry.stdout + dry.stderr)
    print(f"dry run: {len(jobs)} jobs:", sorted(rule for rule, _ in jobs))
    for rule, wildcards in jobs:
        if rule not in AGGREGATES and rule != "prepare_model":
            assert wildcards.get("concept") == "my_cat", (rule, wildcards)
    assert {"train", "sample", "score", "sample_pretrained"} <= {rule for rule, _ in jobs}

    run = _snakemake(tmp_path, "--cores", "2")
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    out = tmp_path / "results" / "my_concepts"
    assert (out / "report.html").is_file() and (out / "tables" / "summary.csv").is_file()
    assert {"db", "dco"} <= {p.name for p in (out / "models" / "subject" / "my_cat").iterdir()}
    assert _checksums(demo) == before

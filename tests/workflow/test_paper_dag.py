"""The paper preset's DAG (dry run, no images needed): Fig 8c's noise distance is one job per
(concept, variant) plus a join, not one job over every model."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def test_fig8c_has_one_noise_distance_job_per_model_and_a_join(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    cfg["experiments"] = ["fig8c"]
    cfg["data"]["root"] = str(REPO / "data")
    for name in cfg["data"]["sources"]:
        (tmp_path / "mirror" / name).mkdir(parents=True)  # a dry run reads no image
        cfg["data"]["sources"][name]["local"] = str(tmp_path / "mirror" / name)
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    # The paper's hub models (SDXL, DINOv2, SigLIP, CLIP) are not in this machine's cache, and
    # with HF_HUB_OFFLINE set the DAG build refuses them (by design). A dry run downloads
    # nothing, so it runs as a cluster's login node would: online.
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "DCOBENCH_CACHE": str(tmp_path / "models")}
    out = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                          "--configfile", str(tmp_path / "paper.yaml"), "-n", "-p"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = re.findall(r"dcobench analyze noise-distance --run \S+?:(\w+):\S+/models/subject/"
                      r"([\w.-]+)/\1 --out \S+/analysis/noise_distance/\2/\1/noise_distance\.csv",
                      out.stdout)
    subjects = cfg["experiment_defs"]["fig8c"]["subjects"]
    variants = cfg["analysis"]["noise_distance"]["variants"]
    assert sorted(runs) == sorted((v, s) for s in subjects for v in variants)  # 10 × 5, once each
    joins = re.findall(r"dcobench analyze join --part (.*?) --out \S+/analysis/noise_distance\.csv",
                       out.stdout)
    assert len(joins) == 1 and len(joins[0].split()) == len(subjects) * len(variants)

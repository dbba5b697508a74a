"""Rough H100 GPU-hour estimate per experiment of config/paper.yaml (numbers in config/README.md).

Run: .venv/bin/python config/estimate_gpu_hours.py. The per-unit costs below are assumptions
(SDXL 1024², bf16, one H100), not measurements; replace them with your own benchmark/ files.
"""

import copy
from pathlib import Path

import yaml

from dcobench.config import load_setup, train_options
from dcobench.data import prompts

PAPER = yaml.safe_load((Path(__file__).resolve().parent / "paper.yaml").read_text())
STEP_DB = 0.40  # s per DB / DB+CC training step, batch 1
RATIO = {"db": 1.0, "dco": 1.3, "dbpp": 1.6}  # DCO: paper App. D.5 (1.3×); dbpp: + a prior row
IMG_CFG, IMG_RG = 3.0, 4.5  # s per 50-step image: CFG (2 UNet rows), RG (3 rows, ≈ 1.5×)
PRIOR_IMG = 3.0  # s per class-prior image (CFG, 50 steps)
ND_FWD = 0.05  # s per UNet forward in the noise-distance analysis (θ and φ per noise)
ND_IMAGES = 5  # reference images per subject (DreamBooth: 4–6)


def sample_seconds(n_images: int, guides: list[str]) -> float:
    return sum(n_images * (IMG_CFG if g == "cfg" else IMG_RG) for g in guides)


def hours(experiments: list[str]) -> float:
    """Estimated GPU-hours of the union of `experiments` (shared models counted once)."""
    cfg = copy.deepcopy(PAPER)
    cfg["experiments"] = experiments
    setup = load_setup(cfg)
    plan, s, total = setup.plan, cfg["sample"], 0.0
    for kind, _, v in plan.models:
        var = setup.variants[v]
        if var.trained:
            ratio = RATIO["dbpp"] if var.prior else RATIO[var.objective]
            total += train_options(cfg, kind, v)["steps"] * STEP_DB * ratio
    classes = {setup.concepts[c].class_noun for _, c, v in plan.models
               if setup.variants[v].prior}
    total += len(classes) * cfg["train"]["prior"]["count"] * PRIOR_IMG
    for kind, c, _ in plan.evaluated:
        live = setup.concepts[c].live
        n = sum(len(prompts.PROMPT_SETS[prompts.resolve_set(kind, name, live)])
                for name in s["prompt_sets"][kind])
        total += sample_seconds(n * len(s["seeds"]), s["guides"])
    for kind, c in plan.pretrained:  # the pretrained model's point: CFG only
        live = setup.concepts[c].live
        n = sum(len(prompts.PROMPT_SETS[prompts.resolve_set(kind, name, live)])
                for name in s["prompt_sets"][kind])
        total += sample_seconds(n * len(s["seeds"]), ["cfg"])
    merge_images = len(prompts.MERGE_PROMPTS) * len(s["seeds"])
    total += len(plan.merges) * sample_seconds(merge_images, cfg["merge"]["guides"])
    nd = cfg["analysis"]["noise_distance"]
    total += len(plan.noise_distance) * ND_IMAGES * nd["timesteps"] * nd["noises"] * 2 * ND_FWD
    return total / 3600


if __name__ == "__main__":
    for name in PAPER["experiments"]:
        print(f"{name}: {hours([name]):.0f} GPU-h")
    print(f"all (shared models once): {hours(list(PAPER['experiments'])):.0f} GPU-h")

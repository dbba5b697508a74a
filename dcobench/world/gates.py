"""The world's gates (docs/world.md): measured on held-out data by the build, written to gates.json.

- vae_psnr: reconstruction PSNR (dB, posterior mean) on held-out renders; gate >= 26.
- vae_concepts: can the VAE reproduce what personalization must learn? The oracle's subject
  (style) probability on VAE reconstructions of each subject's (style's) references, averaged
  per kind; gate >= 0.8 for both kinds (our own gate: DB must reach subject_acc 0.8 in the
  references' contexts through this codec, docs/world_validity.md). Subjects in random
  contexts (small, styled) are reported beside it, ungated.
- oracle_accuracy: per head kind on held-out renders; gate >= 0.97 each. Colour is not asked
  under `vintage` (`readable_target`): its sepia keeps luminance only, and red, blue and purple
  share one (94, 95 and 103 of 255), so the colour is not in the image.
- sdxl: world-sdxl (DDIM, CFG 7.5) on prompts with held-out (class, colour) compositions, read
  by the oracle: accuracy per attribute >= 0.85 and fraction with every attribute right >= 0.5.
- siglip_top1: caption -> image top-1 among 64 unseen pretraining-style scenes of plain objects
  (a caption names a patterned object's class only, so it would fit several candidates);
  gate >= 0.8.
- dino_retrieval: nearest neighbour (cosine of CLS) of a subject render in a random context is
  a render of the same subject, among 8 renders x 8 subjects (one subject per render; any second
  object is an ordinary one); gate >= 0.9.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import dataset, render_scenes
from .oracle import (
    HEAD_INDEX,
    HEADS,
    IGNORE,
    attribute_hits,
    encode_request,
    load_oracle,
    probabilities,
    split_logits,
)
from .scenes import draw_scene
from .vocab import STYLES, SUBJECTS, Obj, parse_caption

GATES = {"vae_psnr": 26.0, "vae_concepts": 0.8, "oracle_min_accuracy": 0.97, "sdxl_min_attribute_accuracy": 0.85,
         "sdxl_all_right": 0.5, "siglip_top1": 0.8, "dino_retrieval": 0.9}
HOLDOUT_START = 5_000_000  # scene indices never used for training


@torch.no_grad()
def vae_psnr(vae, images: torch.Tensor) -> float:
    rec = torch.cat([vae.decode(vae.encode(images[i:i + 128]).latent_dist.mean).sample
                     for i in range(0, len(images), 128)]).clamp(-1, 1)
    mse = ((rec - images) / 2).square().flatten(1).mean(1)  # per image, on [0, 1]
    return float((10 * torch.log10(1 / mse.clamp_min(1e-10))).mean())


@torch.no_grad()
def oracle_accuracy(oracle, images: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Accuracy per head kind (slot heads pooled over positions)."""
    logits = torch.cat([oracle(images[i:i + 256]) for i in range(0, len(images), 256)])
    right: dict[str, list[float]] = {}
    for i, part in enumerate(split_logits(logits)):
        kind = HEADS[i][0].split(".")[-1]
        mask = target[:, i] != IGNORE
        right.setdefault(kind, []).extend((part.argmax(-1)[mask] == target[mask, i]).float().tolist())
    return {k: float(np.mean(v)) for k, v in right.items()}


def readable_target(target: torch.Tensor) -> torch.Tensor:
    """A copy of oracle targets (B, len(HEADS)) with every colour head set to IGNORE on the
    `vintage` rows: the colours that sepia maps to one luminance cannot be read back."""
    out = target.clone()
    vintage = out[:, HEAD_INDEX["style"]] == STYLES.index("vintage")
    for name, i in HEAD_INDEX.items():
        if name.endswith(".color"):
            out[vintage, i] = IGNORE
    return out


@torch.no_grad()
def vae_concepts(vae, oracle, seed: int) -> dict[str, float]:
    """The oracle's mean subject / style probability on renders and on their VAE
    reconstructions: each subject's references (`subject`), each subject in random contexts
    (`subject_in_context`: sizes, positions, personal styles) and each style's references."""
    from .concepts import STYLE_NAMES, style_scenes, subject_scenes
    from .oracle import style_probability, subject_probability

    def codec(x):
        return vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)

    def read(name, x, refs, prob):
        for key, imgs in ((name, x), (f"{name}_reconstructed", codec(x))):
            figures.setdefault(key, []).append(float(prob(oracle_read(oracle, imgs), refs).mean()))

    figures: dict[str, list[float]] = {}
    renders, _ = subject_renders(seed)
    per = len(renders) // len(SUBJECTS)
    for k in range(len(SUBJECTS)):
        x = render_scenes(subject_scenes(k, seed))
        refs = oracle_read(oracle, x)
        read("subject", x, refs, subject_probability)
        read("subject_in_context", render_scenes(renders[k * per:(k + 1) * per]), refs,
             subject_probability)
    for style in STYLE_NAMES:
        x = render_scenes(style_scenes(style, seed))
        read("style", x, oracle_read(oracle, x), style_probability)
    return {k: float(np.mean(v)) for k, v in figures.items()}


def oracle_read(oracle, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return probabilities(torch.cat([oracle(images[i:i + 256])
                                        for i in range(0, len(images), 256)]))


def sdxl_prompt_accuracy(pipe, oracle, prompts: list[str], steps: int, seed: int,
                         batch: int = 50) -> dict:
    """Sample each prompt once (CFG 7.5, DDIM) and read the images with the oracle."""
    from dcobench.io import derive_seed
    from dcobench.sample.denoise import GuideSpec, generate

    from .render import SIZE

    images = []
    for i in range(0, len(prompts), batch):
        chunk = prompts[i:i + batch]
        seeds = [derive_seed(seed, "gate", i + j) for j in range(len(chunk))]
        images.append(generate(pipe, GuideSpec("cfg", 7.5), chunk, chunk, seeds, SIZE, steps))
    images = torch.cat(images).clamp(-1, 1)
    probs = oracle_read(oracle, images)
    requests = torch.stack([encode_request(parse_caption(p)) for p in prompts])
    hits = attribute_hits(probs, requests)
    per_attr = {k: float(np.nanmean(v.numpy())) for k, v in hits.items()
                if not torch.isnan(v).all()}
    stacked = torch.stack([torch.nan_to_num(v, nan=1.0) for v in hits.values()], -1)
    return {"per_attribute": per_attr, "all_right": float((stacked == 1).all(-1).float().mean()),
            "n_prompts": len(prompts), "images": images}


@torch.no_grad()
def siglip_top1(model, proc, seed: int, groups: int = 4, n: int = 64) -> float:
    from .render import render
    from .vocab import caption

    right = 0
    for g in range(groups):
        scenes = [draw_scene(seed, "pretrain", HOLDOUT_START + g * n + i) for i in range(n)]
        pil = [render(s) for s in scenes]
        pix = proc(images=pil, return_tensors="pt")["pixel_values"]
        ids = proc(text=[caption(s) for s in scenes], padding="max_length", truncation=True,
                   return_tensors="pt")["input_ids"]
        img = F.normalize(_features(model.get_image_features(pixel_values=pix)), dim=-1)
        txt = F.normalize(_features(model.get_text_features(input_ids=ids)), dim=-1)
        right += int((txt @ img.T).argmax(-1).eq(torch.arange(n)).sum())
    return right / (groups * n)


def _features(out):
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def subject_renders(seed: int, per_subject: int = 8) -> tuple[list, list[int]]:
    """Renders of every subject in random contexts (backgrounds, sizes, positions, personal
    styles, a second object).

    The second object is always an ordinary one: a render showing two subjects holds two
    instances, so "the same instance" would be ill-defined for it (a neighbour sharing the
    other subject would count as wrong)."""
    scenes, ids = [], []
    for k in range(len(SUBJECTS)):
        for i in range(per_subject):
            base = draw_scene(seed, "oracle", HOLDOUT_START + 1000 * k + i)
            o = base.objects[0]
            subj = Obj(SUBJECTS[k].cls, None, o.size, o.position, subject=k + 1)
            others = tuple(replace(x, color=x.color or _ordinary_color(x.cls), subject=0)
                           for x in base.objects[1:])
            scenes.append(replace(base, medium="photo", objects=(subj,) + others))
            ids.append(k)
    return scenes, ids


def _ordinary_color(cls: str) -> str:
    """A colour for an ordinary object of `cls` that pretraining shows (not a held-out pair)."""
    from .vocab import COLORS, HELD_OUT_PAIRS

    return next(c for c in COLORS if (cls, c) not in HELD_OUT_PAIRS)


@torch.no_grad()
def dino_retrieval(model, proc, seed: int) -> float:
    from .render import render

    scenes, ids = subject_renders(seed)
    pix = proc(images=[render(s) for s in scenes], return_tensors="pt")["pixel_values"]
    emb = F.normalize(model(pixel_values=pix).last_hidden_state[:, 0], dim=-1)
    sim = emb @ emb.T
    sim.fill_diagonal_(-math.inf)
    ids_t = torch.tensor(ids)
    return float((ids_t[sim.argmax(-1)] == ids_t).float().mean())


def heldout_prompts(seed: int, n: int) -> list[str]:
    from .vocab import caption

    return [caption(draw_scene(seed, "heldout", i)) for i in range(n)]


def measure_gates(dirs: dict[str, Path], opts) -> dict:
    """Every gate figure, the thresholds and whether each passed."""
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline
    from transformers import AutoImageProcessor, AutoModel, AutoProcessor

    seed = opts.seed
    oracle = load_oracle(dirs["oracle"])
    images, _, target, _ = dataset(seed, "oracle", 1000, start=HOLDOUT_START,
                                   patterned=opts.patterned)
    vae = AutoencoderKL.from_pretrained(str(dirs["vae"])).eval()
    held = render_scenes([draw_scene(seed, "heldout", HOLDOUT_START + i) for i in range(256)])
    figures = {"vae_psnr": vae_psnr(vae, held), "vae_concepts": vae_concepts(vae, oracle, seed),
               "oracle_accuracy": oracle_accuracy(oracle, images, readable_target(target))}
    pipe = StableDiffusionXLPipeline.from_pretrained(str(dirs["sdxl"]))
    pipe.set_progress_bar_config(disable=True)
    sd = sdxl_prompt_accuracy(pipe, oracle, heldout_prompts(seed, opts.n_gate_prompts),
                              opts.gate_steps, seed)
    sd.pop("images")
    figures["sdxl"] = {**sd, "cfg": 7.5, "steps": opts.gate_steps, "scheduler": "ddim"}
    sig = AutoModel.from_pretrained(str(dirs["siglip"])).eval()
    figures["siglip_top1"] = siglip_top1(sig, AutoProcessor.from_pretrained(str(dirs["siglip"])),
                                         seed)
    dino = AutoModel.from_pretrained(str(dirs["dino"])).eval()
    figures["dino_retrieval"] = dino_retrieval(
        dino, AutoImageProcessor.from_pretrained(str(dirs["dino"])), seed)
    return {**figures, "thresholds": GATES, "passed": check(figures)}


def check(figures: dict) -> dict[str, bool]:
    """Gate name -> passed, from the figures of `measure_gates`."""
    return {
        "vae_psnr": figures["vae_psnr"] >= GATES["vae_psnr"],
        "vae_concepts": min(figures["vae_concepts"]["subject_reconstructed"],
                            figures["vae_concepts"]["style_reconstructed"]) >= GATES["vae_concepts"],
        "oracle": min(figures["oracle_accuracy"].values()) >= GATES["oracle_min_accuracy"],
        "sdxl_attributes": min(figures["sdxl"]["per_attribute"].values())
        >= GATES["sdxl_min_attribute_accuracy"],
        "sdxl_all_right": figures["sdxl"]["all_right"] >= GATES["sdxl_all_right"],
        "siglip_top1": figures["siglip_top1"] >= GATES["siglip_top1"],
        "dino_retrieval": figures["dino_retrieval"] >= GATES["dino_retrieval"],
    }

"""The world testbed's validity check, measured with the pretrained model and DB runs alone.

The world is a valid testbed for the paper's claims only if DB learns the subject
(`subject_acc` ≥ 0.8 on prompts in the references' contexts, set `world_context`) and DB's
`prompt_acc` on novel contexts (set `world_novel`) is at least 0.15 below the pretrained
model's on the same prompts and seeds: the trade-off the paper is about exists. Styles pass the
same two gates on the contents their references never showed (set `world_content`): DB's
`style_acc` ≥ 0.8 there, and its `prompt_acc` (the content asked for) ≥ 0.15 below the
pretrained model's. Both are read from the ordinary long score tables (CFG folder), pooled over
every concept of the kind scored.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

MIN_CONCEPT_ACC = 0.8  # DB's subject_acc / style_acc where the concept must show
MIN_PROMPT_DROP = 0.15  # pretrained − DB prompt_acc where the prompt asks for something new
# kind: (prompt set where DB must show the concept, the oracle's reading of it,
#        prompt set where DB must lose prompt fidelity against the pretrained model)
GATES = {
    "subject": ("world_context", "subject_acc", "world_novel"),
    "style": ("world_content", "style_acc", "world_content"),
}
PRETRAINED = "pretrained"


def read_scores(score_root: str | Path, kind: str = "subject", guide: str = "cfg") -> pd.DataFrame:
    """Every score table `<root>/<kind>/<concept>/<variant>/<guide>.csv`, concatenated."""
    files = sorted(Path(score_root).glob(f"{kind}/*/*/{guide}.csv"))
    if not files:
        raise FileNotFoundError(f"{score_root}: no {kind}/<concept>/<variant>/{guide}.csv score tables")
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def _mean(scores: pd.DataFrame, variant: str, prompt_set: str, metric: str,
          concepts: list[str]) -> float:
    sel = scores[(scores["variant"] == variant) & (scores["prompt_set"] == prompt_set)
                 & (scores["metric"] == metric) & scores["concept"].isin(concepts)]
    return float(sel["value"].mean()) if len(sel) else float("nan")


def validity_table(scores: pd.DataFrame, variants: list[str] | None = None,
                   kind: str = "subject") -> pd.DataFrame:
    """One row per DB variant: the concepts it and the pretrained model were both scored on,
    pretrained and DB prompt_acc where the prompt asks for something new, their drop, DB's
    reading of the concept where it must show (and the lowest single concept's), and whether
    both gates pass."""
    show_set, metric, new_set = GATES[kind]
    pre = set(scores.loc[scores["variant"] == PRETRAINED, "concept"])
    variants = variants or sorted(set(scores["variant"]) - {PRETRAINED})
    rows = []
    for v in variants:
        concepts = sorted(pre & set(scores.loc[scores["variant"] == v, "concept"]))
        if not concepts:
            continue
        p_pre = _mean(scores, PRETRAINED, new_set, "prompt_acc", concepts)
        p_db = _mean(scores, v, new_set, "prompt_acc", concepts)
        shown = _mean(scores, v, show_set, metric, concepts)
        row = {"variant": v, "concepts": len(concepts),
               f"pretrained_prompt_acc_{new_set}": p_pre, f"db_prompt_acc_{new_set}": p_db,
               "prompt_acc_drop": p_pre - p_db, f"db_{metric}_{show_set}": shown,
               f"db_{metric}_{show_set}_min": min(_mean(scores, v, show_set, metric, [c])
                                                  for c in concepts),
               f"pretrained_{metric}_{show_set}": _mean(scores, PRETRAINED, show_set,
                                                         metric, concepts),
               "valid": bool(shown >= MIN_CONCEPT_ACC and p_pre - p_db >= MIN_PROMPT_DROP)}
        if new_set != show_set:  # does the concept survive the new contexts?
            row[f"db_{metric}_{new_set}"] = _mean(scores, v, new_set, metric, concepts)
        rows.append(row)
    return pd.DataFrame(rows)


# --- the codec ceiling: can the world's VAE represent the concepts at all? ------------------


def _pil(batch) -> list:
    from PIL import Image

    arr = ((batch.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a) for a in arr]


def codec_ceiling(concept_root: str | Path, base: str = "world-sdxl", oracle: str = "world-oracle",
                  finetune_steps: int = 0, finetune_images: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Per world concept under concept_root: the oracle's subject_acc / style_acc on its
    references and on their VAE reconstructions (encode → posterior mean → decode), and the
    reconstructions' PSNR. A DB model that reproduced its references exactly would score the
    reconstruction figure: the ceiling the codec sets. finetune_steps > 0 first fine-tunes the
    VAE on renders of the `oracle` split (which includes the subjects and styles) with the
    build's VAE loss, batch 16, lr 3e-4 — a measurement, nothing is saved."""
    import numpy as np
    import torch
    from diffusers import AutoencoderKL
    from PIL import Image

    from dcobench.data.concept import load_concept
    from dcobench.models import resolve_model

    from . import scorers
    from .concepts import concept_kinds
    from .data import dataset
    from .pretrain import train_vae

    vae = AutoencoderKL.from_pretrained(resolve_model(base), subfolder="vae").float().eval()
    if finetune_steps:
        train_vae(vae, dataset(seed, "oracle", finetune_images)[0], finetune_steps, 16, 3e-4, seed)
    judge = scorers.load(oracle)
    rows = []
    for name, (kind, _) in concept_kinds().items():
        folder = Path(concept_root) / name
        if not (folder / "concept.yaml").is_file():
            continue
        refs = [Image.open(p).convert("RGB") for p in load_concept(folder).images]
        x = torch.from_numpy(np.stack([np.asarray(im) for im in refs])).float()
        x = x.permute(0, 3, 1, 2) / 127.5 - 1.0  # (N, 3, S, S) in [-1, 1]
        with torch.no_grad():
            rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
            metric = "subject_acc" if kind == "subject" else "style_acc"
            ref_emb = scorers.embed_images(judge, refs)
            on_refs = scorers.oracle_metric(metric, ref_emb, ref_emb, None).mean().item()
            on_rec = scorers.oracle_metric(metric, scorers.embed_images(judge, _pil(rec)), ref_emb,
                                           None).mean().item()
        psnr = (10 * torch.log10(4.0 / ((rec - x) ** 2).flatten(1).mean(1))).mean().item()
        rows.append({"concept": name, "kind": kind, "metric": metric, "references": on_refs,
                     "reconstructions": on_rec, "psnr_db": psnr})
    if not rows:
        raise FileNotFoundError(f"{concept_root}: no world concept folders "
                                "(python -m dcobench world concepts --out DIR)")
    return pd.DataFrame(rows)

"""Scorers (paper App. D.4): a registry of metrics whose math is a pure function of embeddings.

- dino: mean cosine of DINOv2 CLS embeddings, generated image vs every reference image.
- siglip_text: σ(t·cos + b) with SigLIP's learned t = exp(logit_scale) and b = logit_bias, for
  the image and its class-word prompt (index.csv ``scoring_prompt``: learned tokens replaced by
  class words): SigLIP's own pair probability. App. D.4 writes the score as
  S_IT(x, c) = 1 / (1 + exp(−f_img(x)ᵀ f_text(c) + b)), f ℓ2-normalised, b "optimized during
  pretraining" — no temperature, and +b inside the exponent. Taken literally with a released
  checkpoint's b (SigLIP starts it at −10 and learns it; |b| stays of order 10) and
  |cos| ≤ 1, that is σ(cos − b) ≈ 1 for every pair (≈ 0 with the opposite sign), which cannot
  give the paper's 0.72–0.90 spread; with the learned scale t (of order 100) the scores spread
  over (0, 1). So we use SigLIP's own scale and bias and read the formula as shorthand for it.
- siglip_image: mean SigLIP image–image cosine vs the style references (style fidelity).
- clip_i / clip_t: open_clip image–image (mean over references) / image–text cosine
  (DreamBooth's CLIP-I / CLIP-T).

Embeddings come from `dcobench.score.embedders.Embedder` (batched, cached by content); pooling and
preprocessing per model are documented there.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from dcobench.score.embedders import Embedder, file_hash, plugin_embedder  # noqa: F401
from dcobench.score.metrics import PLUGIN_EMBEDDERS, SCORERS, Scorer  # noqa: F401


def mean_cosine(gen: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """(N, D), (M, D) -> (N,): mean over references of the cosine similarity."""
    return (F.normalize(gen.float(), dim=-1) @ F.normalize(refs.float(), dim=-1).T).mean(dim=1)


def paired_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, D), (N, D) -> (N,): row-wise cosine similarity."""
    return (F.normalize(a.float(), dim=-1) * F.normalize(b.float(), dim=-1)).sum(dim=-1)


def siglip_probability(img: torch.Tensor, txt: torch.Tensor, scale: float, bias: float) -> torch.Tensor:
    """(N, D), (N, D) -> (N,): σ(scale · cos(img, txt) + bias)."""
    return torch.sigmoid(scale * paired_cosine(img, txt) + bias)


def metric_from_embeddings(name: str, gen: torch.Tensor, refs: torch.Tensor | None = None,
                           txt: torch.Tensor | None = None, scale: float | None = None,
                           bias: float | None = None) -> torch.Tensor:
    """Scores (N,) of metric `name` from generated-image embeddings `gen` (N, D) and either
    reference-image embeddings `refs` (M, D) or per-image text embeddings `txt` (N, D);
    siglip_text also needs SigLIP's `scale` (= exp(logit_scale)) and `bias`."""
    scorer = SCORERS[name]  # unknown names fail with suggestions
    if scorer.model in PLUGIN_EMBEDDERS:
        return plugin_embedder(scorer.model).metric(name, gen, refs, txt)
    if scorer.reference == "text":
        if txt is None or txt.shape[0] != gen.shape[0]:
            raise ValueError(f"metric {name!r} needs one text embedding per image")
        if name == "siglip_text":
            if scale is None or bias is None:
                raise ValueError("siglip_text needs SigLIP's logit scale and bias")
            return siglip_probability(gen, txt, scale, bias)
        return paired_cosine(gen, txt)
    if refs is None or refs.shape[0] == 0:
        raise ValueError(f"metric {name!r} needs {scorer.reference} reference images")
    return mean_cosine(gen, refs)


def score_images(name: str, embedder: Embedder, files: list[Path], prompts: list[str],
                 subject_refs: list[Path], style_refs: list[Path]) -> torch.Tensor:
    """Scores (N,) of metric `name` for generated `files` (prompts: class-word captions)."""
    scorer = SCORERS[name]
    if embedder.kind != scorer.model:
        raise ValueError(f"metric {name!r} needs a {scorer.model} embedder, got {embedder.kind}")
    gen = embedder.images(files)
    if scorer.reference == "text":
        scale_bias = embedder.logit_scale_bias() if name == "siglip_text" else (None, None)
        return metric_from_embeddings(name, gen, txt=embedder.texts(prompts),
                                      scale=scale_bias[0], bias=scale_bias[1])
    refs = subject_refs if scorer.reference == "subject" else style_refs
    if not refs:
        raise ValueError(f"metric {name!r} needs {scorer.reference} reference images "
                         f"(pass --{scorer.reference})")
    return metric_from_embeddings(name, gen, refs=embedder.images(refs))

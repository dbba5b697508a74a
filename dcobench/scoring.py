"""Scorers (paper App. D.4): pure similarity math plus batched embedders with a content cache.

- dino: mean cosine of DINOv2 CLS embeddings, generated image vs every reference image.
- siglip_text: σ(logit_scale·cos + logit_bias) of image and class-word prompt (the paper's
  formula omits the scale; SigLIP's own probability includes it).
- siglip_image: mean SigLIP image–image cosine vs the style references.
- clip_i / clip_t: open_clip image–image / image–text cosine (DreamBooth's metrics).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from dcobench.registry import Registry


def mean_cosine(gen: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """(N, D), (M, D) -> (N,): mean over references of the cosine similarity."""
    return (F.normalize(gen.float(), dim=-1) @ F.normalize(refs.float(), dim=-1).T).mean(dim=1)


def paired_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, D), (N, D) -> (N,): row-wise cosine similarity."""
    return (F.normalize(a.float(), dim=-1) * F.normalize(b.float(), dim=-1)).sum(dim=-1)


def siglip_probability(img: torch.Tensor, txt: torch.Tensor, scale: float, bias: float) -> torch.Tensor:
    """(N, D), (N, D) -> (N,): σ(scale · cos(img, txt) + bias)."""
    return torch.sigmoid(scale * paired_cosine(img, txt) + bias)


@dataclass(frozen=True)
class Scorer:
    """`model` names the embedder (config models.<model>); `reference` what it compares to."""

    model: str  # dino | siglip | clip
    reference: str  # subject | style | text
    higher_is_better: bool = True


SCORERS: Registry[Scorer] = Registry("scorer")
SCORERS.register("dino", Scorer("dino", "subject"))
SCORERS.register("siglip_text", Scorer("siglip", "text"))
SCORERS.register("siglip_image", Scorer("siglip", "style"))
SCORERS.register("clip_i", Scorer("clip", "subject"))
SCORERS.register("clip_t", Scorer("clip", "text"))


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Embedder:
    """Image/text embeddings of one model, cached in memory by (content hash, model spec)."""

    def __init__(self, kind: str, spec: str, device: torch.device, batch_size: int = 16) -> None:
        self.kind, self.spec, self.device, self.batch_size = kind, spec, device, batch_size
        self._cache: dict[str, torch.Tensor] = {}
        from dcobench import models

        if kind == "dino":
            self.model, self.processor = models.load_dino(spec)
        elif kind == "siglip":
            self.model, self.processor = models.load_siglip(spec)
        elif kind == "clip":
            self.model, self.preprocess, self.tokenizer = models.load_open_clip(spec)
        else:
            raise ValueError(f"unknown embedder {kind!r}")
        self.model.to(device).eval()

    @torch.no_grad()
    def images(self, paths: list[Path]) -> torch.Tensor:
        """(N, D) embeddings; each file embedded once per process (keyed by its content)."""
        from PIL import Image

        keys = [file_hash(p) for p in paths]
        todo = [(k, p) for k, p in dict(zip(keys, paths, strict=True)).items() if k not in self._cache]
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            pil = [Image.open(p).convert("RGB") for _, p in chunk]
            for (k, _), e in zip(chunk, self._embed_images(pil).cpu(), strict=True):
                self._cache[k] = e
        return torch.stack([self._cache[k] for k in keys])

    def _embed_images(self, pil) -> torch.Tensor:
        if self.kind == "dino":
            pixels = self.processor(images=pil, return_tensors="pt")["pixel_values"].to(self.device)
            return self.model(pixel_values=pixels).last_hidden_state[:, 0]  # CLS token
        if self.kind == "siglip":
            pixels = self.processor(images=pil, return_tensors="pt")["pixel_values"].to(self.device)
            return _features(self.model.get_image_features(pixel_values=pixels))
        pixels = torch.stack([self.preprocess(im) for im in pil]).to(self.device)
        return self.model.encode_image(pixels)

    @torch.no_grad()
    def texts(self, prompts: list[str]) -> torch.Tensor:
        if self.kind == "siglip":
            tok = self.processor(text=prompts, padding="max_length", truncation=True,
                                 return_tensors="pt")
            return _features(self.model.get_text_features(input_ids=tok["input_ids"].to(self.device)))
        if self.kind == "clip":
            return self.model.encode_text(self.tokenizer(prompts).to(self.device))
        raise ValueError(f"{self.kind} has no text tower")

    def logit_scale_bias(self) -> tuple[float, float]:
        return self.model.logit_scale.exp().item(), self.model.logit_bias.item()


def _features(out) -> torch.Tensor:
    """transformers 5 may return a model output instead of a tensor."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def score_images(name: str, embedder: Embedder, files: list[Path], prompts: list[str],
                 subject_refs: list[Path], style_refs: list[Path]) -> torch.Tensor:
    """Scores (N,) of metric `name` for generated `files` (prompts: class-word captions)."""
    scorer = SCORERS[name]
    gen = embedder.images(files)
    if scorer.reference == "text":
        txt = embedder.texts(prompts)
        if name == "siglip_text":
            return siglip_probability(gen, txt, *embedder.logit_scale_bias())
        return paired_cosine(gen, txt)
    refs = subject_refs if scorer.reference == "subject" else style_refs
    if not refs:
        raise ValueError(f"metric {name!r} needs {scorer.reference} reference images")
    return mean_cosine(gen, embedder.images(refs))

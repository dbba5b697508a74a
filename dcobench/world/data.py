"""Rendered batches: scenes -> image tensors in [-1, 1], captions and oracle labels."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from .oracle import labels
from .render import render
from .scenes import scenes
from .vocab import Scene, caption


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """[(S, S, 3) uint8] -> (N, 3, S, S) float32 in [-1, 1]."""
    arr = np.stack(images).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def render_scenes(items: list[Scene], desc: str | None = None) -> torch.Tensor:
    it = tqdm(items, desc=desc, unit="img", mininterval=2.0) if desc else items
    return to_tensor([render(s) for s in it])


def dataset(seed: int, split: str, n: int, start: int = 0, desc: str | None = None,
            patterned: float = 0.0):
    """(images (N, 3, S, S), captions [N], labels (N, heads) long, scenes) of a split."""
    items = scenes(seed, split, n, start, patterned)
    images = render_scenes(items, desc)
    target = torch.tensor([labels(s) for s in items], dtype=torch.long)
    return images, [caption(s) for s in items], target, items


def incomplete_captions(items: list[Scene], seed: int, p: float = 0.25) -> list[str]:
    """Captions that leave each object's colour unsaid with probability p (deterministic from
    seed and scene index), as real captions leave things out. A subject's prompts name no
    colour ("a large star in the center"), so a model pretrained only on complete captions
    meets them out of distribution and draws a poor baseline."""
    from dataclasses import replace

    out = []
    for i, s in enumerate(items):
        rng = np.random.default_rng([seed, 7, i])
        objects = tuple(replace(o, color=None) if rng.random() < p else o for o in s.objects)
        out.append(caption(replace(s, objects=objects)))
    return out

"""Oracle scorers (prompt_acc, subject_acc, style_acc): the embedder side and the metric math.

The oracle's "image embedding" is its concatenated head probabilities (N, 90); the "text
embedding" of a prompt is the encoded attribute request (N, 22, -1 = not asked), so both are
cached by content like any other embedding. Images of another size are resized (bicubic) to
the world's canvas.
"""

from __future__ import annotations

import torch

from .oracle import (
    encode_request,
    load_oracle,
    probabilities,
    prompt_accuracy,
    style_probability,
    subject_probability,
)
from .render import SIZE
from .vocab import parse_caption

ORACLE_METRICS = {"prompt_acc": "text", "subject_acc": "subject", "style_acc": "style"}
POOLING_VERSION = "probs-v1"  # in the embedding cache's model id (score.embedders.model_id)


def load(spec: str):
    """The oracle of a preset name or folder."""
    from dcobench.models import resolve_model

    return load_oracle(resolve_model(spec))


def embed_images(model, pil_images) -> torch.Tensor:
    """(N, 90) head probabilities of PIL images."""
    import numpy as np
    from PIL import Image

    arr = np.stack([np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BICUBIC))
                    if im.size != (SIZE, SIZE) else np.asarray(im.convert("RGB"))
                    for im in pil_images]).astype(np.float32)
    x = torch.from_numpy(arr / 127.5 - 1.0).permute(0, 3, 1, 2).to(next(model.parameters()).device)
    return probabilities(model(x))


def embed_texts(prompts: list[str]) -> torch.Tensor:
    """(N, 22) encoded attribute requests of the prompts."""
    return torch.stack([encode_request(parse_caption(p)) for p in prompts])


def oracle_metric(name: str, gen: torch.Tensor, refs: torch.Tensor | None,
                  txt: torch.Tensor | None) -> torch.Tensor:
    """(N,) scores of an oracle metric from oracle embeddings."""
    if name == "prompt_acc":
        if txt is None or txt.shape[0] != gen.shape[0]:
            raise ValueError("prompt_acc needs one prompt per image")
        return prompt_accuracy(gen, txt)
    if refs is None or refs.shape[0] == 0:
        raise ValueError(f"{name} needs {ORACLE_METRICS[name]} reference images")
    if name == "subject_acc":
        return subject_probability(gen, refs)
    if name == "style_acc":
        return style_probability(gen, refs)
    raise ValueError(f"unknown oracle metric {name!r}; known: {', '.join(ORACLE_METRICS)}")


metric = oracle_metric  # the name score.scorers calls a plug-in embedder's metric by

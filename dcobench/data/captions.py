"""The (θ caption, φ caption) pair: what the fine-tuned and the pretrained model read.

One rule for training, sampling, the analyses and ZipLoRA. A caption is written with the
concepts' tokens ("a <dog> in the jungle"); θ reads the concept's phrase for its caption mode
(the token, or "sks {class}" for compact captions), φ — the pretrained model, which has no
learned token — reads the class words where θ's token was learned, else θ's own words.
Scoring reads the plain caption (class words for every token).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from dcobench.data.concept import Concept

CAPTION_MODES = ("comprehensive", "compact")


def theta_phrase(concept: Concept, mode: str) -> str:
    """The words standing for the concept in θ's captions: its token, or "sks {class}"
    (compact: the rare-token DreamBooth caption, no learned token)."""
    if mode not in CAPTION_MODES:
        raise ValueError(f"caption mode must be comprehensive or compact, got {mode!r}")
    return f"sks {concept.class_noun}" if mode == "compact" else concept.token


def caption_pair(caption: str, concepts: Sequence[Concept], mode: str,
                 learned: Collection[str]) -> tuple[str, str]:
    """(θ caption, φ caption) of `caption` written with the concepts' tokens; `learned` holds
    the tokens whose embeddings the model learned (those become class words for φ)."""
    theta = phi = caption
    for concept in concepts:
        words = theta_phrase(concept, mode)
        theta = theta.replace(concept.token, words)
        phi = phi.replace(concept.token, concept.class_noun if concept.token in learned else words)
    return theta, phi


def plain_caption(caption: str, concepts: Sequence[Concept]) -> str:
    """The caption with every token replaced by its class words (scoring, the pretrained model)."""
    for concept in concepts:
        caption = concept.base_caption(caption)
    return caption


def image_captions(concept: Concept, mode: str, learns_token: bool) -> tuple[list[str], list[str]]:
    """(θ captions, φ captions) of the concept's reference images, in `concept.images` order:
    the concept.yaml captions (comprehensive) or "a photo of sks {class}" (compact)."""
    learned = {concept.token} if learns_token else set()
    pairs = [caption_pair(concept.caption_for(p) if mode == "comprehensive"
                          else f"a photo of {concept.token}", [concept], mode, learned)
             for p in concept.images]
    return [t for t, _ in pairs], [f for _, f in pairs]

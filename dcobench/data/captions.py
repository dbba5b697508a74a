"""The (θ caption, φ caption) pair: what the fine-tuned and the pretrained model read.

One rule for training, sampling (CFG and reward guidance), the analyses and ZipLoRA. A caption
is written with the concepts' tokens ("a <dog> in the jungle"); each token then becomes words:

- a token the model learned (textual embeddings, paper §4.3): θ reads the token, φ — the
  pretrained model, which has no such token — reads the class words;
- `rare_token` captions (DreamBooth's "a photo of [V] [class]", paper §4.3 and its footnote):
  θ and φ both read "sks {class}" for a subject; no token is learned;
- any other token stands for its class words in θ's and φ's caption alike. This is how styles
  train (paper §5.2: no textual embedding): "a <flat> of a woman" → "a flat cartoon
  illustration of a woman", never a literal "<flat>" that CLIP would split into fragments.

Scoring reads the plain caption (class words for every token). The caption of a reference
image is its concept.yaml caption (comprehensive) or "a photo of {token}" (compact and
rare_token: the compact caption of App. D.1 / the rebuttal, with the learned token or the rare
identifier in the token's place).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from dcobench.data.concept import Concept
from dcobench.spec.train import CAPTION_MODES

RARE_IDENTIFIER = "sks"  # DreamBooth's rare token [V]
COMPACT_TEMPLATE = "a photo of {token}"


def check_mode(mode: str) -> str:
    if mode not in CAPTION_MODES:
        raise ValueError(f"caption mode must be one of {', '.join(CAPTION_MODES)}, got {mode!r}")
    return mode


def concept_words(concept: Concept, mode: str, learned: Collection[str]) -> tuple[str, str]:
    """(θ words, φ words) standing for the concept's token (see the module docstring)."""
    check_mode(mode)
    if concept.token in learned:
        return concept.token, concept.class_noun
    if mode == "rare_token" and concept.kind == "subject":
        words = f"{RARE_IDENTIFIER} {concept.class_noun}"
        return words, words
    return concept.class_noun, concept.class_noun


def caption_pair(caption: str, concepts: Sequence[Concept], mode: str,
                 learned: Collection[str]) -> tuple[str, str]:
    """(θ caption, φ caption) of `caption` written with the concepts' tokens; `learned` holds
    the tokens whose embeddings the model learned."""
    theta = phi = caption
    for concept in concepts:
        theta_words, phi_words = concept_words(concept, mode, learned)
        theta = theta.replace(concept.token, theta_words)
        phi = phi.replace(concept.token, phi_words)
    return theta, phi


def plain_caption(caption: str, concepts: Sequence[Concept]) -> str:
    """The caption with every token replaced by its class words (scoring, the pretrained model)."""
    for concept in concepts:
        caption = concept.base_caption(caption)
    return caption


def reference_caption(concept: Concept, image, mode: str) -> str:
    """The caption of one reference image, written with the concept's token."""
    if check_mode(mode) == "comprehensive":
        return concept.caption_for(image)
    return COMPACT_TEMPLATE.format(token=concept.token)


def image_captions(concept: Concept, mode: str, learns_token: bool) -> tuple[list[str], list[str]]:
    """(θ captions, φ captions) of the concept's reference images, in `concept.images` order."""
    learned = {concept.token} if learns_token else set()
    pairs = [caption_pair(reference_caption(concept, p, mode), [concept], mode, learned)
             for p in concept.images]
    return [t for t, _ in pairs], [f for _, f in pairs]

"""The metric registry: each scorer's embedder, what it compares to, its label and direction.

Registered once here (lm-evaluation-harness's `higher_is_better`); the math lives in
`dcobench.score.scorers`, the aggregated tables carry `higher_is_better`, and the report's
labels and arrows read this registry. Adding a metric = one entry here + its math in
`scorers.metric_from_embeddings`. No torch: the DAG checks names at build time.
"""

from __future__ import annotations

from dataclasses import dataclass

from dcobench.registry import Registry


@dataclass(frozen=True)
class Scorer:
    """`model` names the embedder (config models.<model>); `reference` what it compares to."""

    model: str  # dino | siglip | clip, or a plug-in's embedder (PLUGIN_EMBEDDERS)
    reference: str  # subject | style | text
    label: str  # axis / column label in the report
    higher_is_better: bool = True

    @property
    def image_or_text(self) -> str:
        """"text" for image–text scores, "image" for image–image similarities."""
        return "text" if self.reference == "text" else "image"


SCORERS: Registry[Scorer] = Registry("scorer")
SCORERS.register("dino", Scorer("dino", "subject", "Subject fidelity (DINOv2)"))
SCORERS.register("siglip_text", Scorer("siglip", "text", "Prompt fidelity (SigLIP)"))
SCORERS.register("siglip_image", Scorer("siglip", "style", "Style fidelity (SigLIP image)"))
SCORERS.register("clip_i", Scorer("clip", "subject", "CLIP-I"))
SCORERS.register("clip_t", Scorer("clip", "text", "CLIP-T"))

# Embedders a plug-in adds (dcobench.plugins; the world's oracle): kind -> the module that
# implements them, imported on first use: load(spec) -> model, embed_images(model, pil_images),
# embed_texts(prompts) and metric(name, gen, refs, txt) -> (N,) scores. Its metrics go into
# SCORERS with `model` = the kind.
PLUGIN_EMBEDDERS: Registry[str] = Registry("plug-in embedder")

"""Evaluation prompt sets as templates with `{subject}` / `{style}` slots.

A template is filled twice: with the learned-token phrase for the fine-tuned model θ
(e.g. "<toy_robot>", or "sks robot" under compact captions) and with the class words for the
pretrained model φ and for scoring (e.g. "robot"). Object and live-subject lists are the
DreamBooth evaluation prompts (github.com/google/dreambooth, CC-BY-4.0).
"""

from __future__ import annotations

from dataclasses import dataclass

from dcobench.registry import Registry

_SHARED = [
    "a {subject} in the jungle",
    "a {subject} in the snow",
    "a {subject} on the beach",
    "a {subject} on a cobblestone street",
    "a {subject} on top of pink fabric",
    "a {subject} on top of a wooden floor",
    "a {subject} with a city in the background",
    "a {subject} with a mountain in the background",
    "a {subject} with a blue house in the background",
    "a {subject} on top of a purple rug in a forest",
]
_ATTRIBUTES = [
    "a red {subject}",
    "a purple {subject}",
    "a shiny {subject}",
    "a wet {subject}",
    "a cube shaped {subject}",
]
OBJECT_PROMPTS = _SHARED + [
    "a {subject} with a wheat field in the background",
    "a {subject} with a tree and autumn leaves in the background",
    "a {subject} with the Eiffel Tower in the background",
    "a {subject} floating on top of water",
    "a {subject} floating in an ocean of milk",
    "a {subject} on top of green grass with sunflowers around it",
    "a {subject} on top of a mirror",
    "a {subject} on top of the sidewalk in a crowded street",
    "a {subject} on top of a dirt road",
    "a {subject} on top of a white rug",
] + _ATTRIBUTES
LIVE_PROMPTS = _SHARED + [
    "a {subject} wearing a red hat",
    "a {subject} wearing a santa hat",
    "a {subject} wearing a rainbow scarf",
    "a {subject} wearing a black top hat and a monocle",
    "a {subject} in a chef outfit",
    "a {subject} in a firefighter outfit",
    "a {subject} in a police outfit",
    "a {subject} wearing pink glasses",
    "a {subject} wearing a yellow shirt",
    "a {subject} in a purple wizard outfit",
] + _ATTRIBUTES
# Subject stylization (paper Fig 9b): the subject rendered in styles it was never shown in.
STYLIZATION_PROMPTS = [
    "a {subject} in watercolor painting style",
    "a {subject} in oil painting style",
    "a {subject} in line drawing style",
    "a {subject} in flat cartoon illustration style",
    "a {subject} in 3d rendering style",
    "a {subject} in kid crayon drawing style",
    "a {subject} in sticker style",
    "a {subject} in pixel art style",
    "a {subject} in origami style",
    "a {subject} in stained glass style",
]
# Style personalization contents (the paper uses 190 Parti prompts; see config/paper.yaml).
STYLE_PROMPTS = [
    "a cat in {style} style",
    "a lighthouse by the sea in {style} style",
    "a red car in {style} style",
    "a bowl of fruit in {style} style",
    "a mountain landscape in {style} style",
    "a portrait of a woman in {style} style",
    "a bicycle leaning on a wall in {style} style",
    "a city skyline at night in {style} style",
]
# My subject in my style (paper Table 1): composition plus attribute prompts.
MERGE_PROMPTS = [
    "a {subject} in {style} style",
    "a {subject} on the beach in {style} style",
    "a {subject} in the snow in {style} style",
    "a red {subject} in {style} style",
    "a {subject} wearing a hat in {style} style",
    "a {subject} with a city in the background in {style} style",
]

PROMPT_SETS: Registry = Registry("prompt set")
for _name, _prompts in {
    "object": OBJECT_PROMPTS,
    "live": LIVE_PROMPTS,
    "stylization": STYLIZATION_PROMPTS,
    "style": STYLE_PROMPTS,
    "merge": MERGE_PROMPTS,
}.items():
    PROMPT_SETS.register(_name, _prompts)


@dataclass(frozen=True)
class Prompt:
    """One evaluation prompt: `index` in its set, text for θ and text for φ / scoring."""

    index: int
    theta: str
    base: str


def fill(templates: list[str], theta: dict[str, str], base: dict[str, str]) -> list[Prompt]:
    """Fill every template with the learned phrases (θ) and the class words (φ, scoring)."""
    return [
        Prompt(i, t.format_map(_Slots(theta)), t.format_map(_Slots(base)))
        for i, t in enumerate(templates)
    ]


class _Slots(dict):
    def __missing__(self, key: str) -> str:
        raise KeyError(f"prompt template needs a {{{key}}} slot value; have {sorted(self)}")


def select(templates: list[str], count: int | None) -> list[str]:
    """The first `count` templates (all when None): a deterministic, documented subset."""
    return list(templates if count is None else templates[:count])

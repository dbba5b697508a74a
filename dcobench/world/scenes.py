"""Drawing scenes from a seed: the pretraining split, held-out compositions and oracle data.

Splits (every draw is a pure function of (seed, index)):

- ``pretrain``: photo/drawing scenes of ordinary objects; never a held-out (class, colour) pair,
  never a personal subject or style. The generative model and SigLIP learn from these.
- ``heldout``: like pretrain, but at least one object shows a held-out pair (gate prompts).
- ``oracle``: anything the oracle must read: all pairs, personal subjects and styles too.

With ``patterned`` > 0, that fraction of the ordinary objects of ``pretrain`` and ``oracle`` is
drawn with a two-colour pattern (`Obj.look`) on a (class, pattern) no subject has, captioned by
its class alone; 0 (the default) draws exactly the scenes of a world built without them.
"""

from __future__ import annotations

import numpy as np

from .vocab import (
    BG_COLORS,
    CLASSES,
    COLORS,
    HELD_OUT_PAIRS,
    MEDIA,
    PATTERNS,
    SIZES,
    STYLES,
    SUBJECT_KINDS,
    SUBJECTS,
    TEXTURES,
    Obj,
    Scene,
)

SPLITS = ("pretrain", "heldout", "oracle")
_SPLIT_SALT = {"pretrain": 11, "heldout": 23, "oracle": 37}
# (class, pattern) kinds of the patterned ordinary objects: every pair no subject takes.
PATTERNED_KINDS = tuple((c, p) for c in CLASSES for p in PATTERNS if (c, p) not in SUBJECT_KINDS)


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _SPLIT_SALT[split], index])


def _pick(rng: np.random.Generator, values):
    return values[int(rng.integers(len(values)))]


def _object(rng, position: str, split: str, subject_p: float, patterned: float) -> Obj:
    size = _pick(rng, SIZES)
    if split == "oracle" and rng.random() < subject_p:
        k = int(rng.integers(len(SUBJECTS)))
        return Obj(SUBJECTS[k].cls, None, size, position, subject=k + 1)
    if patterned and split != "heldout" and rng.random() < patterned:
        return _patterned_object(rng, size, position, split)
    while True:
        cls, color = _pick(rng, CLASSES), _pick(rng, COLORS)
        if split != "pretrain" or (cls, color) not in HELD_OUT_PAIRS:
            return Obj(cls, color, size, position)


def _patterned_object(rng, size: str, position: str, split: str) -> Obj:
    """An ordinary object with a two-colour pattern (never a held-out colour in pretraining)."""
    cls, pattern = _pick(rng, PATTERNED_KINDS)
    colors = [c for c in COLORS if split != "pretrain" or (cls, c) not in HELD_OUT_PAIRS]
    i, j = (int(v) for v in rng.choice(len(colors), 2, replace=False))
    return Obj(cls, None, size, position, look=(pattern, colors[i], colors[j]))


def _held_out_object(rng, position: str) -> Obj:
    cls, color = sorted(HELD_OUT_PAIRS)[int(rng.integers(len(HELD_OUT_PAIRS)))]
    return Obj(cls, color, _pick(rng, SIZES), position)


def draw_scene(seed: int, split: str, index: int, patterned: float = 0.0) -> Scene:
    """Scene `index` of `split` for world seed `seed` (`patterned`: see the module doc)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    rng = _rng(seed, split, index)
    medium = _pick(rng, MEDIA)
    bg, texture = _pick(rng, BG_COLORS), _pick(rng, TEXTURES)
    positions = ["left", "right"] if rng.random() < 0.5 else [_pick(rng, ("left", "center", "right"))]
    if not 0.0 <= patterned < 1.0:
        raise ValueError(f"patterned must be a fraction in [0, 1), got {patterned!r}")
    objects = [_object(rng, p, split, 0.3, patterned) for p in positions]
    if split == "heldout":  # at least one object shows a held-out pair
        k = int(rng.integers(len(objects)))
        objects[k] = _held_out_object(rng, positions[k])
    style = _pick(rng, STYLES) if split == "oracle" and rng.random() < 0.4 else "none"
    if split == "oracle" and any(o.subject for o in objects):
        medium = "photo"  # subjects are shown as photos (their pattern is the identity)
    return Scene(medium, bg, texture, tuple(objects), style, seed=int(rng.integers(2**31)))


def scenes(seed: int, split: str, n: int, start: int = 0, patterned: float = 0.0) -> list[Scene]:
    """Scenes start .. start+n-1 of a split."""
    return [draw_scene(seed, split, i, patterned) for i in range(start, start + n)]

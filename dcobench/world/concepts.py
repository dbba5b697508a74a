"""The world's personalization concepts, written as ordinary concept folders.

Subjects (8): a known class drawn with a two-colour pattern the vocabulary cannot name, shown
in 5 references whose contexts are deliberately narrow (large, centred, photo, one or two
backgrounds: `contexts`) and readable (`reference_backgrounds`).
Styles (4): rendering transforms never seen in pretraining, shown on 5 varied scenes.
Each folder holds the PNGs, ``concept.yaml`` (comprehensive captions generated from the truth)
and ``world_truth.json`` (the scene of every image, for the oracle and for tests).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from dcobench.io import save_png_atomic, write_text_atomic

from .render import background_rgbs, render
from .scenes import draw_scene
from .vocab import (  # noqa: F401  (STYLE_NAMES, concept_kinds: re-exported)
    BG_COLORS,
    STYLE_NAMES,
    STYLES,
    SUBJECTS,
    TEXTURES,
    Obj,
    Scene,
    SubjectLook,
    caption,
    concept_kinds,
)

N_REFERENCES = 5
TRUTH_FILE = "world_truth.json"


def subject_token(name: str) -> str:
    return f"<{name}>"


def style_token(style: str) -> str:
    return f"<{style}_style>"


# A reference background keeps the subject readable: each colour it is painted in lies at least
# this far (RGB distance) from both of the subject's colours, and its texture does not repeat the
# subject's pattern. Without this rule an indigo-and-orange ringed circle drawn on navy showed
# DB only an orange blob, and quarters on a checked ground of the same scale were learned as
# background (docs/world_validity.md, sixth check).
MIN_CONTRAST = 100.0
PATTERN_ECHOES = {"stripes": "striped", "quarters": "checked", "dot": "dotted"}


def reference_backgrounds(look: SubjectLook) -> list[tuple[str, str]]:
    """The (colour, texture) backgrounds a subject's references may be drawn on."""
    out = []
    for bg in BG_COLORS:
        for tex in TEXTURES:
            if tex == PATTERN_ECHOES.get(look.pattern):
                continue
            gap = min(float(np.linalg.norm(np.subtract(a, b)))
                      for a in background_rgbs(bg, tex) for b in look.colors)
            if gap >= MIN_CONTRAST:
                out.append((bg, tex))
    return out


def subject_scenes(index: int, seed: int, contexts: int = 2) -> list[Scene]:
    """The references of subject `index` (0-based): large, centred photos on `contexts` distinct
    backgrounds drawn at random among `reference_backgrounds`, taken in turn."""
    if not 1 <= contexts <= N_REFERENCES:
        raise ValueError(f"contexts must be in 1..{N_REFERENCES}, got {contexts}")
    look = SUBJECTS[index]
    allowed = reference_backgrounds(look)
    if len(allowed) < contexts:
        raise ValueError(f"subject {look.name!r} has {len(allowed)} readable backgrounds, "
                         f"fewer than contexts={contexts}")
    rng = np.random.default_rng([seed, 101, index])
    backgrounds: list[tuple[str, str]] = []
    while len(backgrounds) < contexts:  # rejection keeps earlier draws where they were allowed
        bg = (BG_COLORS[int(rng.integers(4))], TEXTURES[int(rng.integers(4))])
        if bg in allowed and bg not in backgrounds:
            backgrounds.append(bg)
    out = []
    for i in range(N_REFERENCES):
        bg, tex = backgrounds[i % contexts]
        obj = Obj(look.cls, None, "large", "center", subject=index + 1)
        out.append(Scene("photo", bg, tex, (obj,), seed=int(rng.integers(2**31))))
    return out


def style_scenes(style: str, seed: int) -> list[Scene]:
    """The references of a personal style: varied pretraining photos with the transform."""
    k = STYLE_NAMES.index(style)
    out = []
    for i in range(N_REFERENCES):
        base = draw_scene(seed, "pretrain", 1_000_000 + 100 * k + i)
        out.append(Scene("photo", base.bg_color, base.texture, base.objects, style, base.seed))
    return out


def _write_folder(folder: Path, meta: dict, scenes: list[Scene], captions: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{i:02d}.png" for i in range(len(scenes))]
    for name, scene in zip(names, scenes, strict=True):
        save_png_atomic(Image.fromarray(render(scene)), folder / name)
    for p in folder.iterdir():  # stale images would make the folder invalid
        if p.suffix == ".png" and p.name not in names:
            p.unlink()
    meta = {**meta, "captions": dict(zip(names, captions, strict=True))}
    write_text_atomic(folder / "concept.yaml",
                      yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000))
    truth = {name: asdict(s) for name, s in zip(names, scenes, strict=True)}
    write_text_atomic(folder / TRUTH_FILE, json.dumps(truth, indent=1) + "\n")
    return folder


def write_world_concepts(out_dir: str | Path, seed: int = 0, contexts: int = 2,
                         names: list[str] | None = None) -> list[Path]:
    """Write the subject and style folders under out_dir (all, or those in `names`); return the
    folders. Each concept is drawn from its own seed stream, so drawing one alone writes the
    same bytes as drawing all: the workflow draws one concept per job, and adding a concept to
    a config draws only that one. `contexts`: backgrounds per subject's references."""
    known = concept_kinds()
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise ValueError(f"unknown world concept(s) {unknown}; known: {', '.join(known)}")
    wanted = set(names) if names else set(known)
    out_dir, folders = Path(out_dir), []
    for i, look in enumerate(SUBJECTS):
        if look.name not in wanted:
            continue
        token = subject_token(look.name)
        scenes = subject_scenes(i, seed, contexts)
        caps = [caption(s, tokens={i + 1: token}) for s in scenes]
        meta = {"kind": "subject", "class": look.cls, "live": False, "token": token}
        folders.append(_write_folder(out_dir / look.name, meta, scenes, caps))
    for style in STYLE_NAMES:
        if f"{style}_style" not in wanted:
            continue
        token = style_token(style)
        scenes = style_scenes(style, seed)
        caps = [caption(s, style_word=token) for s in scenes]
        meta = {"kind": "style", "class": style, "live": False, "token": token}
        folders.append(_write_folder(out_dir / f"{style}_style", meta, scenes, caps))
    return folders

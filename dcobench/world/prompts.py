"""Evaluation prompt sets of the world, generated from a concept's truth (`world_truth.json`).

Each set is a list of templates with `{subject}` / `{style}` slots, built per concept from what
its references show, so "novel" means what *this* concept's references never showed:

- ``world_context`` (subjects): the references' own scenes (medium, size, position, background),
  one prompt per distinct reference context: the validity check's "references' contexts".
- ``world_novel`` (subjects): changes of what the references never showed, one or two at a
  time: backgrounds (colour and texture both unseen), positions, size, a second object, and
  combinations. The customization set.
- ``world_drawing`` (subjects): the subject in the other medium (outline drawings), which the
  pretrained model knows and the references never show. The stylization set.
- ``world_content`` (styles): scenes of ordinary objects the style's references never showed.
- ``world_merge`` (subject × style pairs): the subject's reference context and novel scenes, in
  the style.

Every set is a pure function of the concept folder (no randomness): the same folder gives the
same prompts on every machine.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from .vocab import BG_COLORS, CLASSES, COLORS, TEXTURES, Obj, Scene, caption

TRUTH_FILE = "world_truth.json"  # written beside concept.yaml by dcobench.world.concepts
SUBJECT_SLOT, STYLE_SLOT = "{subject}", "{style}"
N_CONTENT = 10  # world_content prompts per style
N_MERGE = 6  # world_merge prompts per pair


def read_truth(folder: str | Path) -> list[Scene]:
    """The reference scenes of a world concept folder, in file order."""
    path = Path(folder) / TRUTH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a world concept folder (world prompt sets need "
                                "the truth file `python -m dcobench world concepts` writes)")
    raw = json.loads(path.read_text())
    scenes = []
    for name in sorted(raw):
        s = raw[name]
        objs = tuple(Obj(**o) for o in s["objects"])
        scenes.append(Scene(s["medium"], s["bg_color"], s["texture"], objs, s.get("style", "none"),
                            s.get("seed", 0)))
    return scenes


def _subject_of(refs: list[Scene]) -> Obj:
    subj = [o for s in refs for o in s.objects if o.subject]
    if not subj:
        raise ValueError("the references show no personal subject (is this a style folder?)")
    return subj[0]


def _template(scene: Scene, subject: int) -> str:
    """The caption of a scene with the subject written as the {subject} slot."""
    return caption(scene, tokens={subject: SUBJECT_SLOT})


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def context_templates(refs: list[Scene]) -> list[str]:
    """One prompt per distinct reference scene context (the references' own captions)."""
    sub = _subject_of(refs).subject
    return _unique([_template(replace(s, seed=0), sub) for s in refs])


def _novel_backgrounds(refs: list[Scene]) -> list[tuple[str, str]]:
    """Backgrounds whose colour and texture both differ from every reference's."""
    colors = [c for c in BG_COLORS if c not in {s.bg_color for s in refs}]
    textures = [t for t in TEXTURES if t not in {s.texture for s in refs}]
    return [(c, t) for c in colors for t in textures]


def _other_object(subj: Obj, position: str, k: int) -> Obj:
    """An ordinary object of another class (deterministic in k) for the second-object prompts."""
    classes = [c for c in CLASSES if c != subj.cls]
    return Obj(classes[k % len(classes)], COLORS[(2 * k + 1) % len(COLORS)], "small", position)


def novel_templates(refs: list[Scene]) -> list[str]:
    """What the references never showed: background, position, size, a second object, and
    combinations, each built from the first reference scene."""
    base, subj = refs[0], _subject_of(refs)
    seen_pos, seen_size = {subj.position}, {subj.size}
    other_pos = [p for p in ("left", "right", "center") if p not in seen_pos]
    other_size = [s for s in ("small", "large") if s not in seen_size]
    backgrounds = _novel_backgrounds(refs)
    scenes = []
    for bg, tex in backgrounds[:4]:  # background alone
        scenes.append(replace(base, bg_color=bg, texture=tex))
    for pos in other_pos[:2]:  # position alone
        scenes.append(replace(base, objects=(replace(subj, position=pos),)))
    for size in other_size[:1]:  # size alone
        scenes.append(replace(base, objects=(replace(subj, size=size),)))
    for k, (pos, opos) in enumerate((("left", "right"), ("right", "left"))):  # a second object
        scenes.append(replace(base, objects=(replace(subj, position=pos), _other_object(subj, opos, k))))
    if backgrounds and other_size and other_pos:  # size + position + background together
        bg, tex = backgrounds[-1]
        scenes.append(replace(base, bg_color=bg, texture=tex,
                              objects=(replace(subj, size=other_size[0], position=other_pos[-1]),)))
    return _unique([_template(replace(s, seed=0), subj.subject) for s in scenes])


def drawing_templates(refs: list[Scene]) -> list[str]:
    """The subject as an outline drawing (the medium the references never show)."""
    subj = _subject_of(refs)
    media = {s.medium for s in refs}
    if "drawing" in media:
        return []
    base = refs[0]
    backgrounds = _novel_backgrounds(refs)
    scenes = [replace(base, medium="drawing")]
    if backgrounds:
        bg, tex = backgrounds[0]
        scenes.append(replace(base, medium="drawing", bg_color=bg, texture=tex))
    scenes.append(replace(base, medium="drawing", objects=(replace(subj, size="small", position="left"),)))
    return _unique([_template(replace(s, seed=0), subj.subject) for s in scenes])


def content_templates(refs: list[Scene], count: int = N_CONTENT) -> list[str]:
    """Scenes of ordinary objects in the style that the style's references never showed: a
    fixed walk over classes × colours × positions × backgrounds, skipping the references'
    (class, colour) pairs and their backgrounds."""
    seen_pairs = {(o.cls, o.color) for s in refs for o in s.objects}
    seen_bg = {(s.bg_color, s.texture) for s in refs}
    out: list[str] = []
    k = 0
    while len(out) < count and k < 10_000:
        cls, color = CLASSES[k % 6], COLORS[(k // 6 + k) % 6]
        bg, tex = BG_COLORS[(k // 3) % 4], TEXTURES[(k // 2 + k) % 4]
        pos, size = ("left", "center", "right")[k % 3], ("small", "large")[(k // 5) % 2]
        k += 1
        if (cls, color) in seen_pairs or (bg, tex) in seen_bg:
            continue
        scene = Scene("photo", bg, tex, (Obj(cls, color, size, pos),), "none")
        out.append(caption(scene) + f", in {STYLE_SLOT} style")
    return _unique(out)


def merge_templates(refs: list[Scene], count: int = N_MERGE) -> list[str]:
    """The subject's reference contexts and novel scenes, in the style."""
    subject = (context_templates(refs)[:1] + novel_templates(refs)[::2])[:count]
    return [f"{t}, in {STYLE_SLOT} style" for t in subject]


# set name -> (group, concept slot whose truth it reads, generator)
WORLD_SETS = {
    "world_context": ("subject", "subject", context_templates),
    "world_novel": ("subject", "subject", novel_templates),
    "world_drawing": ("subject", "subject", drawing_templates),
    "world_content": ("style", "style", content_templates),
    "world_merge": ("merge", "subject", merge_templates),
}


def world_templates(name: str, folders: dict[str, str | Path]) -> list[str]:
    """The templates of world set `name` for the concept folders filling the slots
    (slot -> folder); KeyError naming the set or the missing slot."""
    if name not in WORLD_SETS:
        raise KeyError(f"unknown world prompt set {name!r}; known: {', '.join(WORLD_SETS)}")
    _, slot, make = WORLD_SETS[name]
    if slot not in folders:
        raise KeyError(f"world prompt set {name!r} needs a {slot} concept folder")
    return make(read_truth(folders[slot]))

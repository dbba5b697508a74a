"""The world's vocabulary: attribute values, scenes as data, captions and their parser.

A scene is a rendering medium (photo | drawing), an optional personal style (never in
pretraining), a background (colour x texture) and one or two objects (class noun, colour, size,
position; or a personal subject standing in for the class noun). Captions are built from a
fixed English template and parsed back by ``parse_caption``:

    "a photo of a small red star on the left and a large blue circle on the right,
     on a gray striped background[, in vintage style]"

Every word is a whole token of the full CLIP BPE (checked by a test).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CLASSES = ("circle", "square", "triangle", "star", "heart", "cross")
COLORS = ("red", "yellow", "green", "blue", "purple", "white")
SIZES = ("small", "large")
POSITIONS = ("left", "center", "right")
BG_COLORS = ("black", "gray", "brown", "navy")
TEXTURES = ("plain", "striped", "dotted", "checked")
MEDIA = ("photo", "drawing")
# Personal styles (rendering transforms absent from pretraining); "none" = no transform.
STYLES = ("none", "vintage", "negative", "blinds", "wavy")
# Two-colour fill patterns (personal subjects; patterned ordinary objects, see `Obj.look`).
PATTERNS = ("split_v", "split_h", "stripes", "dot", "rings", "quarters")
POSITION_PHRASE = {"left": "on the left", "center": "in the center", "right": "on the right"}

# Held-out compositions: (class, colour) pairs that never appear in pretraining renders.
HELD_OUT_PAIRS = frozenset((c, COLORS[(i * 2 + 1) % len(COLORS)]) for i, c in enumerate(CLASSES))


@dataclass(frozen=True)
class Obj:
    """One object. color is None for a personal subject (its pattern has no name);
    subject is the subject's index in `SUBJECTS` + 1 (0 = an ordinary object). look, for an
    ordinary patterned object (a "distractor": the class's prior holds patterned instances, as
    "dog" holds many dogs), is (pattern, colour, colour) with named colours; its color is None
    and captions name only its class."""

    cls: str
    color: str | None
    size: str
    position: str
    subject: int = 0
    look: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class Scene:
    """Everything a render depends on; `seed` drives the jitter (exact placement, shading)."""

    medium: str
    bg_color: str
    texture: str
    objects: tuple[Obj, ...]
    style: str = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [(self.medium, MEDIA), (self.bg_color, BG_COLORS), (self.texture, TEXTURES),
                  (self.style, STYLES)]
        for o in self.objects:
            checks += [(o.cls, CLASSES), (o.size, SIZES), (o.position, POSITIONS)]
            if o.color is not None:
                checks.append((o.color, COLORS))
            if o.look is not None:
                if o.color is not None or o.subject:
                    raise ValueError("a patterned object (look) has no colour and is no subject")
                checks += [(o.look[0], PATTERNS), (o.look[1], COLORS), (o.look[2], COLORS)]
        for value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"scene attribute {value!r} is not one of {allowed}")
        if not 1 <= len(self.objects) <= 2:
            raise ValueError(f"a scene has 1 or 2 objects, got {len(self.objects)}")
        if len({o.position for o in self.objects}) != len(self.objects):
            raise ValueError("two objects of a scene must be at different positions")

    @property
    def held_out(self) -> bool:
        """True when some object shows a held-out (class, colour) pair."""
        return any((o.cls, o.color) in HELD_OUT_PAIRS for o in self.objects)


def object_phrase(o: Obj, token: str | None = None) -> str:
    """ "a small red star on the left"; a subject's `token` replaces class and colour."""
    noun = token if token is not None else " ".join(w for w in (o.color, o.cls) if w)
    return f"a {o.size} {noun} {POSITION_PHRASE[o.position]}"


def caption(scene: Scene, tokens: dict[int, str] | None = None, style_word: str | None = None) -> str:
    """The English caption of a scene. tokens: subject index -> token (else the class noun);
    style_word: the words naming a personal style (default: the style's own name)."""
    tokens = tokens or {}
    objs = " and ".join(object_phrase(o, tokens.get(o.subject)) if o.subject
                        else object_phrase(o) for o in scene.objects)
    text = f"a {scene.medium} of {objs}, on a {scene.bg_color} {scene.texture} background"
    if scene.style != "none":
        text += f", in {style_word or scene.style} style"
    return text


@dataclass
class Request:
    """What a prompt asks for; None / missing = not asked. objects: (cls, color, size, position)."""

    medium: str | None = None
    bg_color: str | None = None
    texture: str | None = None
    style: str | None = None
    objects: list[tuple[str | None, str | None, str | None, str | None]] = field(default_factory=list)

    @property
    def n_attributes(self) -> int:
        head = [self.medium, self.bg_color, self.texture]
        return sum(v is not None for v in head) + sum(v is not None for o in self.objects for v in o)


def _word(words: list[str], vocab: tuple[str, ...]) -> str | None:
    hits = [w for w in words if w in vocab]
    return hits[0] if hits else None


def parse_caption(text: str) -> Request:
    """The attributes a caption names (inverse of `caption`; tolerant of missing parts).

    Words outside the vocabulary (learned tokens, other nouns) are ignored."""
    text = text.lower().strip().rstrip(".")
    req = Request()
    m = re.search(r",?\s*in (?:an? )?([\w<>-]+(?: [\w<>-]+)*) style$", text)
    if m:
        req.style = m.group(1)
        text = text[: m.start()]
    m = re.search(r",?\s*on an? ([\w ]+?) background", text)
    if m:
        bg = m.group(1).split()
        req.bg_color, req.texture = _word(bg, BG_COLORS), _word(bg, TEXTURES)
        text = text[: m.start()] + text[m.end():]
    m = re.match(r"^an? (\w+) of (.*)$", text)
    if m:
        req.medium = m.group(1) if m.group(1) in MEDIA else None
        text = m.group(2)
    for part in re.split(r"\band\b", text):
        words = re.findall(r"[\w<>-]+", part)
        position = next((p for p, phrase in POSITION_PHRASE.items() if phrase in part), None)
        cls = _word(words, CLASSES)
        if cls is None and position is None:
            continue
        req.objects.append((cls, _word(words, COLORS), _word(words, SIZES), position))
    return req


@dataclass(frozen=True)
class SubjectLook:
    """A personal subject: a known class drawn with a two-colour pattern no word names."""

    name: str
    cls: str
    pattern: str  # one of PATTERNS
    colors: tuple[tuple[int, int, int], tuple[int, int, int]]


# Index i here is Obj.subject == i + 1. Pattern colours deliberately include unnamed hues.
SUBJECTS = (
    SubjectLook("split_star", "star", "split_v", ((230, 60, 40), (40, 200, 220))),
    SubjectLook("ringed_circle", "circle", "rings", ((250, 150, 20), (60, 30, 140))),
    SubjectLook("quartered_square", "square", "quarters", ((250, 120, 190), (30, 140, 90))),
    SubjectLook("striped_heart", "heart", "stripes", ((240, 240, 120), (200, 30, 110))),
    SubjectLook("dotted_triangle", "triangle", "dot", ((90, 200, 250), (250, 90, 30))),
    SubjectLook("banded_cross", "cross", "split_h", ((170, 230, 60), (120, 40, 200))),
    SubjectLook("striped_star", "star", "stripes", ((255, 200, 0), (20, 90, 160))),
    SubjectLook("split_circle", "circle", "split_h", ((250, 250, 250), (230, 30, 60))),
)

# (class, pattern) of the subjects: patterned ordinary objects never take these.
SUBJECT_KINDS = frozenset((s.cls, s.pattern) for s in SUBJECTS)


STYLE_NAMES = tuple(s for s in STYLES if s != "none")


def concept_kinds() -> dict[str, tuple[str, str]]:
    """Every world concept folder name -> (kind, class noun), without drawing anything
    (numpy- and torch-free: the DAG build reads it for data.world)."""
    out = {look.name: ("subject", look.cls) for look in SUBJECTS}
    out.update({f"{style}_style": ("style", style) for style in STYLE_NAMES})
    return out

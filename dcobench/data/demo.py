"""Procedural demo concepts drawn deterministically with PIL (no downloads, no randomness
beyond fixed seeds): two subjects (``toy_robot``, ``spotted_mug``) and one style
(``mosaic_style``). ``write_demo_concepts`` writes concept folders in the format of
docs/INTERFACES.md (images + concept.yaml); the bytes are identical on every call.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw

SIZE = 128
UNIT = 200  # objects are drawn on a UNIT x UNIT canvas, then scaled down (antialiasing)
OUTLINE = (40, 30, 40)


@dataclass(frozen=True)
class DemoConcept:
    """Metadata of a demo concept plus ``render() -> [(image, caption)]``."""

    kind: str
    class_noun: str
    live: bool
    token: str
    render: Callable[[], list[tuple[Image.Image, str]]]


def _gradient(top, bottom) -> Image.Image:
    t = np.linspace(0.0, 1.0, SIZE)[:, None, None]
    arr = (1 - t) * np.array(top, float) + t * np.array(bottom, float)
    return Image.fromarray(np.repeat(arr, SIZE, axis=1).round().astype(np.uint8), "RGB")


def _floor(d: ImageDraw.ImageDraw, y: int, kind: str, color) -> None:
    """Floor / table surface from row y down: plain, wood (planks), checker or grass."""
    d.rectangle((0, y, SIZE, SIZE), fill=color)
    dark = tuple(max(c - 40, 0) for c in color)
    if kind == "wood":
        for i, yy in enumerate(range(y + 6, SIZE, 9)):
            d.line((0, yy, SIZE, yy), fill=dark, width=1)
            x = 20 + (i * 37) % 90
            d.line((x, max(yy - 9, y), x, yy), fill=dark, width=1)
    elif kind == "checker":
        for j, yy in enumerate(range(y, SIZE, 12)):
            for i, xx in enumerate(range(0, SIZE, 12)):
                if (i + j) % 2 == 0:
                    d.rectangle((xx, yy, xx + 11, yy + 11), fill=(250, 250, 250))
    elif kind == "grass":
        for x in range(2, SIZE, 6):
            d.line((x, y + 3, x + 2, y - 3), fill=dark, width=1)
    d.line((0, y, SIZE, y), fill=dark, width=2)


def _prop(d: ImageDraw.ImageDraw, kind: str, x: int, y: int) -> None:
    """Small props anchored at bottom-centre (x, y), or top-left for the window."""
    if kind == "plant":
        d.polygon([(x - 9, y - 14), (x + 9, y - 14), (x + 6, y), (x - 6, y)], fill=(190, 100, 60))
        for dx, dy in ((-8, -26), (0, -32), (8, -26)):
            d.ellipse((x + dx - 6, y + dy - 6, x + dx + 6, y + dy + 6), fill=(50, 150, 60))
    elif kind == "books":
        for i, c in enumerate(((200, 60, 60), (60, 90, 190), (230, 190, 60))):
            d.rectangle((x - 14 + 2 * i, y - 8 * (i + 1), x + 14 - i, y - 8 * i - 1), fill=c,
                        outline=OUTLINE)
    elif kind == "window":
        d.rectangle((x, y, x + 34, y + 30), fill=(160, 210, 250), outline=(250, 250, 250), width=3)
        d.line((x + 17, y, x + 17, y + 30), fill=(250, 250, 250), width=2)
        d.line((x, y + 15, x + 34, y + 15), fill=(250, 250, 250), width=2)
    elif kind == "sun":
        d.ellipse((x - 10, y - 10, x + 10, y + 10), fill=(255, 225, 70))
    elif kind == "spoon":
        d.line((x - 14, y - 2, x + 6, y - 10), fill=(190, 190, 200), width=3)
        d.ellipse((x + 3, y - 15, x + 15, y - 7), fill=(200, 200, 210), outline=(120, 120, 130))
    elif kind == "cookie":
        d.ellipse((x - 12, y - 9, x + 12, y), fill=(200, 150, 80), outline=(140, 90, 40))
        for dx, dy in ((-5, -6), (3, -4), (6, -7)):
            d.ellipse((x + dx - 2, y + dy - 2, x + dx + 2, y + dy + 2), fill=(80, 50, 30))


def _robot() -> Image.Image:
    """Red boxy body, yellow head with two cyan eyes, antenna, blue arms; badge on the left."""
    im = Image.new("RGBA", (UNIT, UNIT), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.line((100, 14, 100, 40), fill=(120, 120, 130), width=6)
    d.ellipse((89, 2, 111, 24), fill=(230, 40, 40), outline=OUTLINE, width=3)
    for box in ((22, 112, 46, 162), (154, 112, 178, 162)):
        d.rectangle(box, fill=(40, 90, 220), outline=OUTLINE, width=3)
    for box in ((20, 156, 48, 180), (152, 156, 180, 180)):  # hands
        d.ellipse(box, fill=(150, 150, 160), outline=OUTLINE, width=3)
    for x0 in (66, 110):
        d.rectangle((x0, 164, x0 + 24, 190), fill=(150, 150, 160), outline=OUTLINE, width=3)
        d.rectangle((x0 - 6, 186, x0 + 30, 199), fill=(30, 50, 140), outline=OUTLINE, width=3)
    d.rectangle((44, 106, 156, 168), fill=(220, 40, 40), outline=OUTLINE, width=4)
    d.ellipse((56, 118, 80, 142), fill=(255, 220, 50), outline=OUTLINE, width=3)  # badge
    for i, c in enumerate(((40, 200, 90), (40, 90, 220), (250, 250, 250))):
        d.ellipse((100 + 16 * i, 148, 110 + 16 * i, 158), fill=c, outline=OUTLINE, width=2)
    d.rectangle((90, 98, 110, 108), fill=(120, 120, 130))
    d.rounded_rectangle((54, 36, 146, 100), radius=12, fill=(255, 210, 40), outline=OUTLINE,
                        width=4)
    for x0 in (68, 108):
        d.ellipse((x0, 50, x0 + 24, 74), fill=(40, 230, 240), outline=OUTLINE, width=3)
        d.ellipse((x0 + 8, 58, x0 + 16, 66), fill=OUTLINE)
    d.rectangle((78, 84, 122, 91), fill=(90, 90, 100))
    return im


_DOTS = ((58, 80), (92, 72), (124, 90), (70, 118), (106, 112), (56, 156), (92, 148),
         (126, 132), (118, 170), (80, 178))


def _mug() -> Image.Image:
    """Green mug with white polka dots and an orange handle (handle on the right)."""
    im = Image.new("RGBA", (UNIT, UNIT), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.ellipse((128, 78, 192, 156), outline=OUTLINE, width=22)
    d.ellipse((131, 81, 189, 153), outline=(250, 140, 30), width=16)
    d.rounded_rectangle((38, 48, 152, 196), radius=18, fill=(40, 160, 80), outline=OUTLINE,
                        width=4)
    for x, y in _DOTS:
        d.ellipse((x - 9, y - 9, x + 9, y + 9), fill=(250, 250, 250))
    d.ellipse((38, 36, 152, 66), fill=(30, 120, 60), outline=OUTLINE, width=4)
    d.ellipse((48, 42, 142, 60), fill=(90, 50, 30))
    return im


def _place(bg: Image.Image, obj: Image.Image, cx: int, bottom: int, size: int,
           angle: float = 0.0, mirror: bool = False) -> None:
    """Scale obj to size px, mirror/rotate it, paste with its bottom-centre at (cx, bottom)."""
    o = obj.resize((size, size), Image.LANCZOS)
    if mirror:
        o = o.transpose(Image.FLIP_LEFT_RIGHT)
    if angle:
        o = o.rotate(angle, resample=Image.BICUBIC, expand=True)
    x0, y0 = cx - o.width // 2, bottom - o.height + (o.height - size) // 2
    layer = Image.new("RGBA", bg.size, (0, 0, 0, 0))
    layer.paste(o, (x0, y0))
    bg.paste(Image.alpha_composite(bg.convert("RGBA"), layer).convert("RGB"))


# scene: (wall top, wall bottom, floor y, floor kind, floor colour, props, (cx, size, angle,
#         mirror), description with "{t}" for the token)
_ROBOT_SCENES: list[tuple] = [
    ((200, 225, 245), (170, 205, 235), 96, "wood", (170, 115, 65), [], (64, 84, 0, False),
     "a photo of a {t} standing on a wooden floor in front of a pale blue wall"),
    ((245, 180, 215), (170, 130, 220), 100, "plain", (245, 245, 245), [("plant", 104, 112)],
     (44, 68, 0, False),
     "a photo of a {t} on a white table next to a small potted plant, with a pink and purple "
     "gradient background"),
    ((235, 220, 190), (220, 200, 165), 98, "plain", (130, 130, 135), [("window", 84, 18)],
     (54, 80, 8, True),
     "a photo of a {t}, mirrored and tilted slightly, standing on a grey carpet in front of a "
     "beige wall with a window"),
    ((90, 150, 240), (190, 225, 250), 104, "grass", (80, 170, 70), [("sun", 108, 20)],
     (64, 100, 0, False),
     "a close-up photo of a {t} standing on green grass under a blue sky with a yellow sun"),
    ((30, 90, 95), (40, 110, 115), 102, "plain", (235, 140, 50), [("books", 26, 112)],
     (80, 76, -6, False),
     "a photo of a {t} standing on an orange floor beside a stack of books, with a dark teal "
     "wall behind"),
]
_MUG_SCENES: list[tuple] = [
    ((225, 225, 228), (200, 200, 205), 92, "plain", (250, 250, 250), [], (64, 72, 0, False),
     "a photo of a {t} on a white table in front of a light grey wall"),
    ((250, 225, 120), (240, 200, 90), 96, "wood", (160, 105, 60), [], (80, 62, 0, True),
     "a photo of a {t} with its handle on the left, on a wooden table in front of a warm "
     "yellow wall"),
    ((70, 110, 200), (150, 190, 240), 100, "plain", (60, 65, 80), [("spoon", 100, 116)],
     (48, 56, 0, False),
     "a photo of a small {t} next to a silver spoon on a dark slate countertop, with a blue "
     "gradient background"),
    ((245, 190, 200), (235, 165, 180), 94, "checker", (220, 50, 50), [], (60, 70, -5, False),
     "a photo of a {t} on a red and white checkered tablecloth with a pink wall behind"),
    ((210, 195, 240), (185, 165, 225), 108, "plain", (240, 235, 250), [("cookie", 108, 120)],
     (54, 96, 5, True),
     "a close-up photo of a {t} next to a cookie on a lavender background"),
]


def _render_scenes(obj: Image.Image, scenes: list[tuple], token: str):
    out = []
    for top, bottom, fy, fkind, fcol, props, (cx, size, angle, mirror), cap in scenes:
        im = _gradient(top, bottom)
        d = ImageDraw.Draw(im)
        _floor(d, fy, fkind, fcol)
        for kind, x, y in props:
            _prop(d, kind, x, y)
        _place(im, obj, cx, fy + 8 + size // 10, size, angle, mirror)
        out.append((im, cap.format(t=token)))
    return out


R, E, P = "rectangle", "ellipse", "polygon"
# mosaic contents: (caption with "{t}" for the token, [(ImageDraw method, xy, fill)])
_MOSAIC = [
    ("a {t} picture of a house with a red roof and a brown door under a blue sky", [
        (R, (0, 0, 128, 92), (90, 160, 235)), (R, (0, 92, 128, 128), (70, 160, 60)),
        (R, (30, 56, 98, 104), (240, 225, 180)), (R, (56, 76, 72, 104), (120, 70, 30)),
        (R, (36, 64, 50, 78), (250, 240, 120)), (R, (80, 64, 94, 78), (250, 240, 120)),
        (P, [(22, 58), (64, 22), (106, 58)], (200, 40, 40))]),
    ("a {t} picture of a green tree with red apples on a meadow under a light blue sky", [
        (R, (0, 0, 128, 100), (150, 210, 245)), (R, (0, 100, 128, 128), (100, 180, 70)),
        (R, (56, 64, 72, 108), (120, 75, 35)), (E, (24, 8, 104, 80), (30, 130, 50)),
        (E, (41, 27, 51, 37), (220, 40, 40)), (E, (73, 39, 83, 49), (220, 40, 40)),
        (E, (53, 51, 63, 61), (220, 40, 40))]),
    ("a {t} picture of a yellow sun over green hills in an orange evening sky", [
        (R, (0, 0, 128, 60), (250, 170, 80)), (R, (0, 60, 128, 128), (250, 200, 120)),
        (E, (44, 18, 84, 58), (255, 235, 60)), (E, (-40, 70, 80, 170), (60, 150, 60)),
        (E, (50, 78, 180, 180), (30, 110, 50))]),
    ("a {t} picture of an orange fish swimming in blue water above a sandy bottom", [
        (R, (0, 0, 128, 110), (40, 110, 200)), (R, (0, 110, 128, 128), (220, 200, 140)),
        (P, [(84, 64), (112, 42), (112, 86)], (240, 110, 30)),
        (E, (24, 40, 96, 88), (250, 140, 30)),
        (E, (38, 54, 48, 64), (250, 250, 250)), (E, (41, 57, 46, 62), (20, 20, 30)),
        (E, (25, 19, 35, 29), (180, 220, 250)), (E, (36, 8, 44, 16), (180, 220, 250))]),
]


def _mosaic(shapes, seed: int, tile: int = 8) -> Image.Image:
    """Draw the shapes, sample one colour per tile, jitter it, add dark grout lines."""
    src = Image.new("RGB", (SIZE, SIZE))
    d = ImageDraw.Draw(src)
    for method, xy, fill in shapes:
        getattr(d, method)(xy, fill=fill)
    n = SIZE // tile
    small = np.asarray(src.resize((n, n), Image.NEAREST), dtype=float)
    rng = np.random.RandomState(seed)
    small = small * rng.uniform(0.85, 1.1, (n, n, 1)) + rng.randint(-12, 13, (n, n, 3))
    big = np.kron(np.clip(small, 0, 255).round(), np.ones((tile, tile, 1))).astype(np.uint8)
    grout = np.zeros(SIZE, bool)
    grout[::tile] = grout[tile - 1 :: tile] = True
    big[grout, :, :] = big[:, grout, :] = (45, 40, 38)
    return Image.fromarray(big, "RGB")


def _render_mosaic(token: str):
    return [(_mosaic(sh, 1000 + i), cap.format(t=token)) for i, (cap, sh) in enumerate(_MOSAIC)]


DEMO_CONCEPTS: dict[str, DemoConcept] = {
    "toy_robot": DemoConcept("subject", "robot", False, "<toy_robot>",
                             lambda: _render_scenes(_robot(), _ROBOT_SCENES, "<toy_robot>")),
    "spotted_mug": DemoConcept("subject", "mug", False, "<spotted_mug>",
                               lambda: _render_scenes(_mug(), _MUG_SCENES, "<spotted_mug>")),
    "mosaic_style": DemoConcept("style", "mosaic", False, "<mosaic_style>",
                                lambda: _render_mosaic("<mosaic_style>")),
}


def demo_names() -> list[str]:
    """Names of the demo concepts."""
    return list(DEMO_CONCEPTS)


def _write_atomic(path: Path, data: bytes | Image.Image) -> None:
    """Write bytes (or an image as PNG without text chunks/timestamps) via a temp file."""
    if isinstance(data, Image.Image):
        buf = io.BytesIO()
        data.save(buf, format="PNG", optimize=True)
        data = buf.getvalue()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_demo_concepts(out_dir: Path, names: list[str] | None = None) -> list[Path]:
    """Write one concept folder per demo concept under out_dir; return the folders.

    Existing folders are updated in place: stale image files (not part of the demo) are removed
    so that the folder stays a valid concept. Output bytes are identical on every call.
    """
    names = demo_names() if names is None else list(names)
    unknown = [n for n in names if n not in DEMO_CONCEPTS]
    if unknown:
        raise ValueError(f"unknown demo concept(s) {unknown}; known: {demo_names()}")
    out = []
    for name in names:
        spec = DEMO_CONCEPTS[name]
        folder = Path(out_dir) / name
        folder.mkdir(parents=True, exist_ok=True)
        captions = {}
        for i, (im, cap) in enumerate(spec.render()):
            fname = f"{i:02d}.png"
            _write_atomic(folder / fname, im.convert("RGB"))
            captions[fname] = cap
        for p in folder.iterdir():
            if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp") and p.name not in captions:
                p.unlink()
        meta = {"kind": spec.kind, "class": spec.class_noun, "live": spec.live,
                "token": spec.token, "captions": captions}
        text = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
        _write_atomic(folder / "concept.yaml", text.encode("utf-8"))
        out.append(folder)
    return out

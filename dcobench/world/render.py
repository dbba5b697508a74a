"""Scene rendering: a `Scene` -> RGB uint8 array (S, S, 3), drawn at 4x and box-downsampled.

Pure functions of the scene (its seed drives the sub-pixel jitter); no global randomness.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .vocab import SUBJECTS, Obj, Scene

SIZE = 32  # canvas in pixels
SS = 4  # supersampling factor
RGB = {"red": (220, 40, 40), "yellow": (240, 215, 40), "green": (50, 180, 60),
       "blue": (50, 90, 235), "purple": (150, 60, 205), "white": (240, 240, 240)}
BG_RGB = {"black": (20, 20, 20), "gray": (120, 120, 120), "brown": (115, 70, 40),
          "navy": (25, 35, 95)}
X_OF = {"left": 8.0, "center": 16.0, "right": 24.0}
R_OF = {"small": 4.5, "large": 7.5}


def _shape_points(cls: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    """Polygon of a class (None for the circle, drawn as an ellipse)."""
    if cls == "circle":
        return None
    if cls == "square":
        h = 0.85 * r
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if cls == "triangle":
        return [(cx, cy - r), (cx + 0.95 * r, cy + 0.8 * r), (cx - 0.95 * r, cy + 0.8 * r)]
    if cls == "star":
        return [(cx + (r if k % 2 == 0 else 0.45 * r) * math.sin(k * math.pi / 5),
                 cy - (r if k % 2 == 0 else 0.45 * r) * math.cos(k * math.pi / 5))
                for k in range(10)]
    if cls == "heart":
        ts = np.linspace(0, 2 * math.pi, 40, endpoint=False)
        xs, ys = 16 * np.sin(ts) ** 3, 13 * np.cos(ts) - 5 * np.cos(2 * ts) - 2 * np.cos(3 * ts)
        ys = ys - np.cos(4 * ts)
        return [(cx + r * x / 16.5, cy - r * (y + 2.5) / 15.5) for x, y in zip(xs, ys, strict=True)]
    if cls == "cross":
        a, w = r, 0.36 * r
        pts = [(w, a), (w, w), (a, w), (a, -w), (w, -w), (w, -a),
               (-w, -a), (-w, -w), (-a, -w), (-a, w), (-w, w), (-w, a)]
        return [(cx + x, cy + y) for x, y in pts]
    raise ValueError(f"unknown class {cls!r}")


def background_rgbs(bg_color: str, texture: str) -> tuple[tuple[int, int, int], ...]:
    """The colours a background is painted in: its base, and a lighter one for its texture."""
    base = tuple(BG_RGB[bg_color])
    if texture == "plain":
        return (base,)
    return base, tuple(int(v) for v in np.clip(np.array(base) + 55, 0, 255))


def _background(scene: Scene) -> Image.Image:
    base, *rest = background_rgbs(scene.bg_color, scene.texture)
    light = rest[0] if rest else base
    n = SIZE * SS
    im = Image.new("RGB", (n, n), base)
    d = ImageDraw.Draw(im)
    if scene.texture == "striped":
        for y in range(0, n, 4 * SS):
            d.rectangle((0, y, n, y + 2 * SS - 1), fill=light)
    elif scene.texture == "dotted":
        for y in range(3 * SS, n, 6 * SS):
            for x in range(3 * SS, n, 6 * SS):
                d.ellipse((x - SS, y - SS, x + SS, y + SS), fill=light)
    elif scene.texture == "checked":
        for j, y in enumerate(range(0, n, 4 * SS)):
            for i, x in enumerate(range(0, n, 4 * SS)):
                if (i + j) % 2 == 0:
                    d.rectangle((x, y, x + 4 * SS - 1, y + 4 * SS - 1), fill=light)
    return im


def _fill_look(obj: Obj) -> tuple[str, tuple, tuple] | None:
    """(pattern, rgb, rgb) of a subject or a patterned object; None for a plain object."""
    if obj.subject:
        look = SUBJECTS[obj.subject - 1]
        return look.pattern, *look.colors
    if obj.look is not None:
        return obj.look[0], RGB[obj.look[1]], RGB[obj.look[2]]
    return None


def _pattern(pattern: str, c1, c2, box: tuple[float, float, float, float]) -> Image.Image:
    """Full-canvas fill image of a two-colour pattern, laid out relative to a bounding box."""
    n = SIZE * SS
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    if pattern == "split_v":
        sel = xx < cx
    elif pattern == "split_h":
        sel = yy < cy
    elif pattern == "stripes":
        sel = ((xx - x0) // max((x1 - x0) / 3, 1)) % 2 == 0
    elif pattern == "dot":
        sel = (xx - cx) ** 2 + (yy - cy) ** 2 > ((x1 - x0) * 0.3) ** 2
    elif pattern == "rings":
        rad = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        sel = (rad // max((x1 - x0) / 4, 1)) % 2 == 0
    elif pattern == "quarters":
        sel = (xx < cx) == (yy < cy)
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    arr = np.where(sel[..., None], np.array(c1), np.array(c2)).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def _draw_object(im: Image.Image, obj: Obj, medium: str, rng: np.random.Generator) -> None:
    cx = (X_OF[obj.position] + rng.uniform(-1, 1)) * SS
    cy = (16.0 + rng.uniform(-2, 2)) * SS
    r = (R_OF[obj.size] + rng.uniform(-0.4, 0.4)) * SS
    pts = _shape_points(obj.cls, cx, cy, r)
    box = (cx - r, cy - r, cx + r, cy + r)
    look = _fill_look(obj)
    fill_rgb = look[1] if look else RGB[obj.color]
    mask = Image.new("L", im.size, 0)
    md = ImageDraw.Draw(mask)
    dark = tuple(int(v * 0.45) for v in fill_rgb)
    if medium == "drawing":  # outline only, in the object's colour
        width = 2 * SS
        if pts is None:
            md.ellipse(box, outline=255, width=width)
        else:
            md.polygon(pts, outline=255, width=width)
        im.paste(Image.new("RGB", im.size, fill_rgb), mask=mask)
        return
    if pts is None:
        md.ellipse(box, fill=255)
    else:
        md.polygon(pts, fill=255)
    fill = _pattern(*look, box) if look else Image.new("RGB", im.size, fill_rgb)
    im.paste(fill, mask=mask)
    d = ImageDraw.Draw(im)
    if pts is None:
        d.ellipse(box, outline=dark, width=SS)
    else:
        d.polygon(pts, outline=dark, width=SS)


def apply_style(arr: np.ndarray, style: str) -> np.ndarray:
    """A personal style's transform of a (S, S, 3) uint8 render."""
    x = arr.astype(float)
    if style == "none":
        return arr
    if style == "vintage":
        lum = x @ np.array([0.299, 0.587, 0.114])
        x = lum[..., None] * np.array([1.07, 0.74, 0.43]) + np.array([30, 20, 0])
    elif style == "negative":
        x = 255 - x
    elif style == "blinds":
        x[1::2] *= 0.3
    elif style == "wavy":
        x = np.stack([np.roll(row, round(2 * math.sin(2 * math.pi * y / 8)), axis=0)
                      for y, row in enumerate(x)])
    else:
        raise ValueError(f"unknown style {style!r}")
    return np.clip(x, 0, 255).round().astype(np.uint8)


def render(scene: Scene) -> np.ndarray:
    """(SIZE, SIZE, 3) uint8 image of the scene."""
    rng = np.random.default_rng(scene.seed)
    im = _background(scene)
    for obj in scene.objects:
        _draw_object(im, obj, scene.medium, rng)
    small = np.asarray(im.resize((SIZE, SIZE), Image.BOX))
    return apply_style(small, scene.style)

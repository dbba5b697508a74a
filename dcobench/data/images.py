"""Reading an image the way a person sees it: the one loader of prepare, training and scoring.

What a viewer sees is what the model gets:
- EXIF orientation is applied;
- 16-bit grayscale is scaled from its full range to 8 bits (never clipped to white);
- palette, grayscale, bilevel, CMYK and YCbCr images are converted to RGB;
- transparency (an alpha channel, or a palette / grayscale transparent colour) is composited
  onto white (`BACKGROUND`): a cut-out object shows on white, as in a product photo, never on
  black;
- an image whose short side is below `MIN_SIDE_FRACTION` of the training resolution is refused
  (upscaled more than 2×, it is a blur the model would learn as the concept);
- an image whose long side is more than `MAX_ASPECT` times its short side (e.g. a 4000 × 40
  panorama) is refused: the centre square crop would keep less than 1 / MAX_ASPECT (25 %) of it;
  above `WARN_ASPECT` (the crop keeps less than half) `prepare` prints a note naming the image.
Anything PIL cannot decode (truncated files, decompression bombs, unknown modes) raises
`ImageError` naming the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

BACKGROUND = (255, 255, 255)  # transparent pixels become white
MIN_SIDE_FRACTION = 0.5  # short side ≥ this × training resolution
MAX_ASPECT = 4.0  # long side / short side above this is refused (the crop keeps < 25 %)
WARN_ASPECT = 2.0  # above this, a note names the image (the crop keeps < 50 %)
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # PNG 16-bit grayscale opens as these


class ImageError(ValueError):
    """An image file that cannot be used as it is; the message names the file and the fix."""


def min_side(resolution: int) -> int:
    """The smallest short side (pixels) accepted for training at `resolution`."""
    return max(1, int(np.ceil(MIN_SIDE_FRACTION * resolution)))


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in SIXTEEN_BIT_MODES:
        # (H, W) integers in [0, 65535] -> [0, 255], rounded; "I" from a PNG is 16-bit too
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(arr * (255.0 / 65535.0) + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def read_rgb(path: str | Path, draft_side: int | None = None) -> Image.Image:
    """The image at `path` as an 8-bit RGB PIL image (see the module docstring).

    draft_side: for JPEGs, decode at a reduced DCT scale that keeps at least this many pixels on
    the short side (fast for 2048² photos that are trained at 1024² or less).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as raw:
                if draft_side and raw.format == "JPEG":
                    w, h = raw.size
                    scale = min(w, h) / draft_side
                    raw.draft("RGB", (max(draft_side, round(w / scale)),
                                      max(draft_side, round(h / scale))))
                raw.load()
                return _to_rgb(ImageOps.exif_transpose(raw))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: cannot be read as an image ({type(exc).__name__}: {exc}); "
                         "replace it with a valid png/jpg/webp file") from exc


def check_size(path: str | Path, size: tuple[int, int], resolution: int) -> None:
    """Refuse an image too small to train on at `resolution` (size = (width, height))."""
    need = min_side(resolution)
    if min(size) < need:
        raise ImageError(
            f"{path}: {size[0]}×{size[1]} pixels is too small to train on at resolution "
            f"{resolution} (short side must be ≥ {need}); use a larger image or a lower "
            "train.resolution"
        )


def crop_kept(size: tuple[int, int]) -> float:
    """The fraction of an image of `size` that the centre square crop keeps."""
    w, h = size
    return min(w, h) ** 2 / (w * h)


def aspect(size: tuple[int, int]) -> float:
    """Long side / short side of an image of `size` (≥ 1; the crop keeps 1 / aspect of it)."""
    return max(size) / max(1, min(size))


def check_aspect(path: str | Path, size: tuple[int, int]) -> None:
    """Refuse an image more than `MAX_ASPECT` times longer than wide (or wider than long)."""
    if aspect(size) > MAX_ASPECT:
        raise ImageError(
            f"{path}: {size[0]}×{size[1]} pixels has an aspect ratio of {aspect(size):.1f}:1; the "
            f"centre square crop would keep only {crop_kept(size):.1%} of it (the limit is "
            f"{MAX_ASPECT:g}:1); crop it yourself to the part that shows the concept"
        )

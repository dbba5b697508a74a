"""Images are read the way a person sees them: the pixels training receives (io.load_image) for
16-bit, transparent, palette, CMYK and tiny images, and concept folders that hold what is not a
usable image."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml
from PIL import Image

from dcobench.data import ConceptError, validate_concept
from dcobench.data.images import ImageError, aspect, read_rgb
from dcobench.io import load_image

RES = 32


def _pixels(path) -> np.ndarray:
    """What training receives, back in 0..255: (R, R, 3)."""
    return ((load_image(path, RES).permute(1, 2, 0).numpy() + 1.0) * 127.5).round()


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))  # left black, right white
    path = tmp_path / "g16.png"
    Image.fromarray(ramp).save(path)  # a 16-bit grayscale PNG
    with Image.open(path) as im:
        assert im.mode in ("I;16", "I")
    px = _pixels(path)
    assert px[:, 0].max() <= 10 and px[:, -1].min() >= 245  # not all white
    assert np.all(np.diff(px[0, :, 0]) >= 0)  # the ramp survives, monotone
    flat = tmp_path / "mid16.png"
    Image.fromarray(np.full((48, 48), 32768, np.uint16)).save(flat)
    assert np.abs(_pixels(flat) - 128).max() <= 1  # mid-grey, as a viewer sees it


def test_transparent_area_becomes_white_not_black(tmp_path):
    rgba = np.zeros((64, 64, 4), np.uint8)  # transparent black everywhere ...
    rgba[16:48, 16:48] = (200, 30, 30, 255)  # ... but an opaque red square
    path = tmp_path / "cut.png"
    Image.fromarray(rgba, "RGBA").save(path)
    px = _pixels(path)
    assert px[0, 0].tolist() == [255, 255, 255]
    assert np.abs(px[RES // 2, RES // 2] - (200, 30, 30)).max() <= 2
    half = rgba.copy()
    half[..., 3] = 128  # half-transparent red on white: pink, composited
    Image.fromarray(half, "RGBA").save(path)
    assert np.abs(_pixels(path)[RES // 2, RES // 2] - (227, 142, 142)).max() <= 2


def test_palette_and_grayscale_transparency_and_la(tmp_path):
    pal = Image.new("P", (40, 40), 0)
    pal.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    pal.paste(1, (10, 10, 30, 30))
    pal.save(tmp_path / "p.png", transparency=0)  # palette index 0 is transparent
    px = _pixels(tmp_path / "p.png")
    assert px[0, 0].tolist() == [255, 255, 255] and px[RES // 2, RES // 2, 1] >= 190
    la = Image.new("LA", (40, 40), (0, 0))
    la.save(tmp_path / "la.png")
    assert _pixels(tmp_path / "la.png").min() == 255


def test_cmyk_jpeg_is_converted(tmp_path):
    Image.new("CMYK", (40, 40), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # red in CMYK
    r, g, b = _pixels(tmp_path / "c.jpg")[RES // 2, RES // 2]
    assert r > 200 and g < 60 and b < 60


def _concept(tmp_path, files: dict[str, Image.Image | None], captions=None):
    root = tmp_path / "c"
    root.mkdir(exist_ok=True)
    for name, img in files.items():
        if img is not None:
            img.save(root / name)
    caps = captions or {n: "a photo of <c> on a table" for n in files}
    (root / "concept.yaml").write_text(yaml.safe_dump(
        {"kind": "subject", "class": "mug", "token": "<c>", "captions": caps}))
    return root


def test_tiny_image_is_refused_with_its_size_and_the_minimum(tmp_path):
    root = _concept(tmp_path, {"00.png": Image.new("RGB", (1, 1), "red")})
    validate_concept(root)  # without a training resolution only decoding is checked
    with pytest.raises(ConceptError, match=r"00.png: 1×1 pixels is too small .* resolution 64 "
                                           r"\(short side must be ≥ 32\)"):
        validate_concept(root, 64)
    root = _concept(tmp_path, {"00.png": Image.new("RGB", (32, 120), "red")})
    assert validate_concept(root, 64).name == "c"  # the short side is what counts


@pytest.mark.parametrize("size", [(4000, 40), (40, 4000), (500, 100)])
def test_extreme_panorama_is_refused_naming_the_limit(tmp_path, size):
    root = _concept(tmp_path, {"00.png": Image.new("RGB", size, "red")})
    with pytest.raises(ConceptError, match=rf"00.png: {size[0]}×{size[1]} pixels has an aspect "
                                           r"ratio of .*the limit is 4:1.*crop it yourself"):
        validate_concept(root)


def test_wide_image_below_the_limit_is_kept_with_a_note_naming_it(tmp_path, capsys):
    from types import SimpleNamespace

    from dcobench.cli.prepare import _validate

    root = _concept(tmp_path, {"00.png": Image.new("RGB", (120, 40), "red"),  # 3:1: a note
                               "01.png": Image.new("RGB", (80, 40), "red")})  # 2:1: silent
    assert aspect((120, 40)) == 3.0
    _validate(SimpleNamespace(concepts=[str(root)], resolution=32, out=None))
    err = capsys.readouterr().err
    assert "c/00.png: the centre square crop keeps only 33%" in err
    assert "01.png" not in err


def _bad_entry(kind: str, root) -> str:
    """Put one unusable entry into a valid concept folder; return its name."""
    if kind == "tiff":
        Image.new("RGB", (64, 64)).save(root / "01.tif")
        return "01.tif"
    if kind == "no_extension":
        (root / "photo").write_bytes(b"\x89PNG")
        return "photo"
    if kind == "dangling_link":
        os.symlink(root / "gone.png", root / "02.png")
        return "02.png"
    if kind == "link_loop":
        os.symlink(root / "loop_b.png", root / "loop_a.png")
        os.symlink(root / "loop_a.png", root / "loop_b.png")
        return "loop_a.png"
    if kind == "folder":
        (root / "more").mkdir()
        return "more"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["tiff", "no_extension", "dangling_link", "link_loop", "folder"])
def test_unusable_entries_are_named_not_skipped(tmp_path, kind):
    root = _concept(tmp_path, {"00.png": Image.new("RGB", (64, 64), "red")})
    name = _bad_entry(kind, root)
    with pytest.raises(ConceptError, match=name):
        validate_concept(root, 64)


def test_notes_beside_the_images_are_allowed(tmp_path):
    root = _concept(tmp_path, {"00.png": Image.new("RGB", (64, 64), "red")})
    (root / "README.md").write_text("where these photos come from\n")
    (root / ".DS_Store").write_bytes(b"\0")
    assert validate_concept(root, 64).images == [root / "00.png"]


def test_truncated_file_is_named(tmp_path):
    path = tmp_path / "t.png"
    Image.new("RGB", (64, 64), "red").save(path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ImageError, match=r"t.png: cannot be read as an image"):
        read_rgb(path)

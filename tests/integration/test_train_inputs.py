"""What training actually receives from awkward images (the trainer's own data path: concept
validation, then batches.encode_latents through the tiny SDXL VAE), and that a failed training
run leaves the previous model folder exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from dcobench.data.concept import ConceptError, validate_concept
from dcobench.train.batches import encode_latents

RES = 64


@pytest.fixture(scope="module")
def pipe(model_cache):
    from dcobench.models import load_sdxl

    return load_sdxl("tiny-sdxl")


def _folder(root, images: dict[str, Image.Image]):
    root.mkdir(parents=True, exist_ok=True)
    for name, img in images.items():
        img.save(root / name)
    (root / "concept.yaml").write_text(yaml.safe_dump(
        {"kind": "subject", "class": "mug", "token": "<c>",
         "captions": {n: "a photo of <c> on a table" for n in images}}))
    return root


def _latents(pipe, root):
    concept = validate_concept(root, RES)  # what Trainer.__init__ runs first
    return encode_latents(pipe, concept.images, RES)[:, 0]


def test_16_bit_gray_trains_like_its_8_bit_view(pipe, tmp_path):
    ramp = np.tile(np.linspace(0, 65535, RES).astype(np.uint16), (RES, 1))
    eight = np.round(ramp / 257.0).astype(np.uint8)  # what a viewer shows
    deep = _latents(pipe, _folder(tmp_path / "a", {"00.png": Image.fromarray(ramp)}))
    seen = _latents(pipe, _folder(tmp_path / "b", {"00.png": Image.fromarray(eight).convert("RGB")}))
    white = _latents(pipe, _folder(tmp_path / "c", {"00.png": Image.new("RGB", (RES, RES), "white")}))
    assert torch.allclose(deep, seen, atol=1e-5)
    assert (deep - white).abs().max() > 0.02  # not the all-white image of the bug (tiny VAE scale)


def test_transparent_area_trains_as_white(pipe, tmp_path):
    rgba = np.zeros((RES, RES, 4), np.uint8)  # transparent black ...
    rgba[16:48, 16:48] = (200, 30, 30, 255)  # ... around an opaque red square
    on_white = np.full((RES, RES, 3), 255, np.uint8)
    on_white[16:48, 16:48] = (200, 30, 30)
    got = _latents(pipe, _folder(tmp_path / "a", {"00.png": Image.fromarray(rgba, "RGBA")}))
    want = _latents(pipe, _folder(tmp_path / "b", {"00.png": Image.fromarray(on_white)}))
    black = on_white.copy()
    black[rgba[..., 3] == 0] = 0
    wrong = _latents(pipe, _folder(tmp_path / "c", {"00.png": Image.fromarray(black)}))
    assert torch.allclose(got, want, atol=1e-5)
    assert (got - wrong).abs().max() > 0.02


def test_tiny_image_never_reaches_a_training_step(model_cache, tmp_path):
    from dcobench.train.options import TrainOptions
    from dcobench.train.trainer import train

    root = _folder(tmp_path / "tiny", {"00.png": Image.new("RGB", (1, 1), "red")})
    out = tmp_path / "model"
    opts = TrainOptions(concept_dir=root, out_dir=out, objective="dco", steps=2, rank=2,
                        resolution=RES)
    with pytest.raises(ConceptError, match=r"00.png: 1×1 pixels is too small .*≥ 32"):
        train(opts)
    assert not out.exists() and not out.with_name("model.resume").exists()


def test_failed_training_keeps_the_previous_model(model_cache, demo_root, tmp_path):
    """A run that fails (here: a learning rate so large that step 2's loss is not finite) leaves the finished model's files
    byte-identical, with nothing added; a successful rerun replaces the folder whole."""
    from dcobench.train.options import TrainOptions
    from dcobench.train.trainer import train

    out = tmp_path / "dco"
    opts = TrainOptions(concept_dir=demo_root / "toy_robot", out_dir=out, objective="dco",
                        steps=2, rank=2, resolution=RES)
    train(opts)
    (out / "stale.txt").write_text("from an older run")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = TrainOptions(concept_dir=demo_root / "toy_robot", out_dir=out, objective="dco",
                       steps=2, rank=2, resolution=RES, lr=1e30)
    with pytest.raises(FloatingPointError):
        train(bad)
    with pytest.raises(ValueError, match="lr is inf; set a finite number"):
        TrainOptions(concept_dir=out, out_dir=out, objective="dco", lr=float("inf"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".dco.*"))  # no staging folder left behind
    train(opts)
    assert "stale.txt" not in {p.name for p in out.iterdir()}  # replaced whole

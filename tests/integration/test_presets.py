"""Tiny offline presets: build, determinism, loading through the real loaders, inference."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dcobench.models import (
    PRESETS,
    build_all,
    build_clip_tokenizer,
    cache_root,
    load_dino,
    load_open_clip,
    load_sdxl,
    load_siglip,
    resolve_model,
)
from dcobench.models.presets import _build_atomic


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One shared build of every preset for the loading tests."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCOBENCH_CACHE", str(root))
        paths = build_all()
    assert set(paths) == set(PRESETS)
    return root


@pytest.fixture
def use_cache(cache, monkeypatch) -> Path:
    monkeypatch.setenv("DCOBENCH_CACHE", str(cache))
    return cache


@pytest.fixture
def image() -> Image.Image:
    rng = np.random.RandomState(0)
    return Image.fromarray((rng.rand(80, 100, 3) * 255).astype("uint8"))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_build_is_deterministic(name, tmp_path, monkeypatch):
    dirs = []
    for sub in ("a", "b"):
        monkeypatch.setenv("DCOBENCH_CACHE", str(tmp_path / sub))
        path = Path(resolve_model(name))
        assert path == cache_root() / name and path.is_dir()
        assert [p.name for p in path.parent.iterdir()] == [name]  # no temp dir left over
        dirs.append(path)
    first, second = (_hashes(d) for d in dirs)
    assert first and first == second


def test_resolve_reuses_existing_build(tmp_path, monkeypatch):
    monkeypatch.setenv("DCOBENCH_CACHE", str(tmp_path))
    path = Path(resolve_model("tiny-dinov2"))
    stamp = (path / "config.json").stat().st_mtime_ns
    assert resolve_model("tiny-dinov2") == str(path)
    assert (path / "config.json").stat().st_mtime_ns == stamp


def test_lost_rename_race_discards_temp_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DCOBENCH_CACHE", str(tmp_path))
    final = Path(resolve_model("tiny-dinov2"))
    before = _hashes(final)
    _build_atomic("tiny-dinov2", final)  # as if another process won the race
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-dinov2"]
    assert _hashes(final) == before


def test_resolve_passthrough(tmp_path, monkeypatch):
    monkeypatch.setenv("DCOBENCH_CACHE", str(tmp_path / "cache"))
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    hub = "stabilityai/stable-diffusion-xl-base-1.0"
    assert resolve_model(hub) == hub
    assert not (tmp_path / "cache").exists()


def test_cache_root_default(monkeypatch):
    monkeypatch.delenv("DCOBENCH_CACHE", raising=False)
    assert cache_root() == Path("resources/models")


def test_tokenizer_pieces(tmp_path):
    tok = build_clip_tokenizer(tmp_path, pad_token="!")
    assert {"vocab.json", "merges.txt", "tokenizer.json"} <= {p.name for p in tmp_path.iterdir()}
    for word in ("robot", "teapot", "photo", "painting"):
        pieces = tok.tokenize(word)
        assert 1 <= len(pieces) <= 4 and "".join(pieces) == word + "</w>"
    ids = tok("a photo", padding="max_length", max_length=8).input_ids
    assert ids[0] == tok.bos_token_id and ids[3] == tok.eos_token_id
    assert ids[4:] == [tok.convert_tokens_to_ids("!")] * 4


def test_tiny_sdxl_pipeline(use_cache):
    pipe = load_sdxl("tiny-sdxl")
    assert pipe.tokenizer_2.pad_token == "!" and pipe.tokenizer.pad_token == "<|endoftext|>"
    assert pipe.config.force_zeros_for_empty_prompt
    assert pipe.scheduler.config.timestep_spacing == "leading"
    assert pipe.vae_scale_factor == 8
    assert sum(p.numel() for p in pipe.unet.parameters()) < 3.5e6
    out = pipe("a photo of a robot", num_inference_steps=2, height=64, width=64,
               output_type="np", generator=torch.Generator().manual_seed(0))
    assert out.images.shape == (1, 64, 64, 3)
    assert np.isfinite(out.images).all()


def test_tiny_dinov2(use_cache, image):
    model, processor = load_dino("tiny-dinov2")
    inputs = processor(images=image, return_tensors="pt")
    assert inputs["pixel_values"].shape == (1, 3, 64, 64)
    with torch.no_grad():
        emb = model(**inputs).pooler_output
    assert emb.shape == (1, 32)


def test_tiny_siglip(use_cache, image):
    model, processor = load_siglip("tiny-siglip")
    inputs = processor(text=["a photo of a teapot"], images=image, padding="max_length",
                       return_tensors="pt")
    assert inputs["input_ids"].shape == (1, 64)
    with torch.no_grad():
        out = model(**inputs)
    assert out.text_embeds.shape == (1, 32) and out.image_embeds.shape == (1, 32)


def test_tiny_open_clip(use_cache, image):
    model, preprocess, tokenizer = load_open_clip("tiny-clip")
    text = tokenizer(["a painting of a robot"])
    assert text.shape == (1, 77)
    with torch.no_grad():
        img_emb = model.encode_image(preprocess(image).unsqueeze(0))
        txt_emb = model.encode_text(text)
    assert img_emb.shape == (1, 32) and txt_emb.shape == (1, 32)

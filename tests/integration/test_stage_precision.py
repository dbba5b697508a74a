"""Memory and precision per stage: chunked VAE encodes (DB + p.p. at 1024²), cached captions
encoded as the training step encodes them, class priors in the sampling dtype, the noise
distance in fp32."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dcobench.analysis.noise_distance import NoiseDistanceOptions, noise_distance
from dcobench.models import adapters, load_sdxl, text
from dcobench.train.batches import VAE_ENCODE_CHUNK, encode_latents

RES = 64


@pytest.fixture(scope="module")
def pipe(model_cache):
    return load_sdxl("tiny-sdxl")


def _images(root: Path, n: int) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        paths.append(root / f"{i:02d}.png")
        Image.fromarray(rng.integers(0, 256, (RES, RES, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def test_latents_are_encoded_in_chunks_and_equal_the_one_call_encode(pipe, tmp_path):
    """100 class-prior images in one fp32 VAE call at 1024² need ≈ 250 GiB: at most
    VAE_ENCODE_CHUNK images go through the VAE at once, with the same latents."""
    paths = _images(tmp_path, 2 * VAE_ENCODE_CHUNK + 1)
    calls = []
    encode = pipe.vae.encode

    def spy(x, *a, **k):
        calls.append(x.shape[0])
        return encode(x, *a, **k)

    pipe.vae.encode = spy
    try:
        chunked = encode_latents(pipe, paths, RES, flips=True)
        calls_chunked = list(calls)
        whole = encode_latents(pipe, paths, RES, flips=True, chunk=len(paths))
    finally:
        del pipe.vae.encode
    assert max(calls_chunked) == VAE_ENCODE_CHUNK and sum(calls_chunked) == 2 * len(paths)
    assert chunked.shape == (len(paths), 2, 4, RES // 8, RES // 8)
    assert chunked.dtype == torch.float32
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match=">= 1"):
        encode_latents(pipe, paths, RES, chunk=0)


def test_cached_captions_match_the_steps_own_encoding_in_bf16(model_cache, demo_root, tmp_path):
    """The reference pass reads cached base-caption embeddings while θ's token captions are
    encoded each step under the training precision: both must come from the same arithmetic."""
    from dcobench.train.options import TrainOptions
    from dcobench.train.trainer import Trainer

    trainer = Trainer(TrainOptions(concept_dir=demo_root / "toy_robot", out_dir=tmp_path / "o",
                                   objective="dco", steps=1, rank=4, resolution=RES,
                                   mixed_precision="bf16"))
    base = trainer.data.base_captions
    with torch.no_grad(), trainer.autocast():
        embeds, pooled = text.encode_prompts(trainer.pipe, base)
    torch.testing.assert_close(trainer.data.cond["base_embeds"], embeds, rtol=0, atol=0)
    torch.testing.assert_close(trainer.data.cond["base_pooled"], pooled, rtol=0, atol=0)


def test_class_priors_are_generated_in_the_configured_dtype(model_cache, tmp_path):
    import yaml

    from dcobench.config import prior_options
    from dcobench.train.priors import PriorOptions, generate_priors, prior_dtype

    assert prior_dtype("auto", torch.device("cpu")) == torch.float32
    assert prior_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert prior_dtype("fp16", torch.device("cuda")) == torch.float16
    assert PriorOptions("dog", tmp_path).precision == "auto"  # bf16/fp16 on a GPU
    paper = yaml.safe_load(Path("config/paper.yaml").read_text())
    assert prior_options(paper)["precision"] == "auto"
    images = {}
    for precision in ("fp32", "bf16"):
        out = generate_priors(PriorOptions("dog", tmp_path / precision, count=1, steps=2,
                                           resolution=RES, precision=precision))
        images[precision] = np.asarray(Image.open(out / "0000.png"), dtype=float)
        assert json.loads((out / "manifest.json").read_text())["options"]["precision"] == precision
    assert np.abs(images["fp32"] - images["bf16"]).max() > 0  # the dtype was used


def _lora_pipe(dtype: torch.dtype):
    """tiny-sdxl with a random LoRA, weights rounded to bf16 (so the fp32 and the bf16 pipeline
    hold the same numbers), in `dtype`."""
    torch.manual_seed(0)
    p = load_sdxl("tiny-sdxl")
    adapters.add_lora(p.unet, 4, None)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in p.unet.named_parameters():
            if "lora_B" in name:
                param.copy_(0.2 * torch.randn(param.shape, generator=g))
    for module in (p.unet, p.vae, p.text_encoder, p.text_encoder_2):
        module.to(torch.bfloat16).to(dtype)
    return p


def test_noise_distance_is_computed_in_fp32(model_cache, demo_root, tmp_path):
    """A bf16 pipeline gives the fp32 pipeline's figures (before: +18 % at t = 0 on tiny-sdxl)."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "manifest.json").write_text(json.dumps({"stage": "train",
                                                         "options": {"captions": "compact"}}))
    opts = NoiseDistanceOptions(timesteps=2, noises=2, resolution=RES, batch_size=2)
    concept = Path(demo_root / "toy_robot")
    want = noise_distance(_lora_pipe(torch.float32), concept, opts, model_dir)
    got = noise_distance(_lora_pipe(torch.bfloat16), concept, opts, model_dir)
    assert [r["timestep"] for r in got] == [0, 999]
    for g, w in zip(got, want, strict=True):
        assert w["distance"] > 0
        assert g["distance"] == pytest.approx(w["distance"], rel=1e-5)

"""ZipLoRA on tiny-sdxl (mergers move, loss falls, export = merged forward) and the noise
distance (0 for a zero LoRA, grows with the LoRA scale)."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dcobench.analysis.noise_distance import NoiseDistanceOptions, noise_distance
from dcobench.merge.lora import Lora, read_lora, write_lora
from dcobench.merge.ziplora import ZipLora, ZipLoraOptions, train_mergers
from dcobench.models import adapters

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipe(model_cache):
    from dcobench.models import load_sdxl

    torch.manual_seed(0)
    p = load_sdxl("tiny-sdxl")
    p.unet.requires_grad_(False)
    return p


def _random_lora(unet, rank, seed, scale=0.5):
    """A LoRA on every attention projection with random A and B (ΔW ≠ 0)."""
    g = torch.Generator().manual_seed(seed)
    A, B = {}, {}
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(adapters.LORA_TARGETS):
            A[name] = 0.3 * torch.randn(rank, module.in_features, generator=g)
            B[name] = 0.3 * torch.randn(module.out_features, rank, generator=g)
    return Lora(A, B, scale, {"r": rank, "lora_alpha": scale * rank,
                              "target_modules": list(adapters.LORA_TARGETS)})


def _fixed_batch(pipe, seed=0):
    from dcobench.models import text

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        embeds, pooled = text.encode_prompts(pipe, ["a photo of a robot", "a mosaic of tiles"])
    return {"x_t": torch.randn(2, 4, 8, 8, generator=g), "t": torch.tensor([300, 700]),
            "embeds": embeds, "pooled": pooled, "n_subject": 1,
            "time_ids": text.time_ids(64, 64, 2)}


def test_ziplora_mergers_move_and_loss_decreases(pipe):
    zl = ZipLora(_random_lora(pipe.unet, 4, 0), _random_lora(pipe.unet, 8, 1))
    batch = _fixed_batch(pipe)
    rows = train_mergers(pipe.unet, zl, lambda step: batch,
                         ZipLoraOptions(steps=6, lr=0.05, penalty=0.0))
    assert rows[-1]["loss"] < 0.8 * rows[0]["loss"]
    assert zl.movement()["mean_abs_change"] > 0.05
    before = sum(p.numel() for p in pipe.unet.parameters() if p.requires_grad)
    assert before == 0  # only the mergers train


def test_ziplora_penalty_pulls_mergers_apart(pipe):
    zl = ZipLora(_random_lora(pipe.unet, 4, 0), _random_lora(pipe.unet, 8, 1))
    start = zl.penalty("mean_abs").item()
    train_mergers(pipe.unet, zl, lambda step: _fixed_batch(pipe),
                  ZipLoraOptions(steps=3, lr=0.05, penalty=0.01))
    assert zl.penalty("mean_abs").item() < start


def test_ziplora_export_reproduces_the_merged_forward(pipe, tmp_path):
    from dcobench.models import load_sdxl

    subject, style = _random_lora(pipe.unet, 4, 2), _random_lora(pipe.unet, 8, 3)
    zl = ZipLora(subject, style)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in [*zl.m_subject, *zl.m_style]:
            m.uniform_(-0.5, 1.5, generator=g)  # as if trained
    batch = _fixed_batch(pipe, seed=4)
    cond = {"encoder_hidden_states": batch["embeds"],
            "added_cond_kwargs": {"text_embeds": batch["pooled"], "time_ids": batch["time_ids"]}}
    with torch.no_grad(), zl.attached(pipe.unet), zl.mode("merged"):
        merged = pipe.unet(batch["x_t"], batch["t"], **cond).sample
    exported = zl.export()
    assert exported.rank == 12
    write_lora(tmp_path / "lora", exported)
    assert read_lora(tmp_path / "lora").rank == 12
    fresh = load_sdxl("tiny-sdxl")
    adapters.load_lora(fresh, tmp_path / "lora", "merged")
    with torch.no_grad():
        out = fresh.unet(batch["x_t"], batch["t"], **cond).sample
        with adapters.adapters_disabled(fresh.unet):
            base = fresh.unet(batch["x_t"], batch["t"], **cond).sample
    assert (out - base).abs().max() > 1e-3  # the LoRA does something
    assert (out - merged).abs().max() <= 1e-5


def _nd_pipe(pipe_scale, model_cache):
    from dcobench.models import load_sdxl

    torch.manual_seed(0)
    p = load_sdxl("tiny-sdxl")
    adapters.add_lora(p.unet, 4, None)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in p.unet.named_parameters():
            if "lora_B" in name:
                param.copy_(pipe_scale * 0.2 * torch.randn(param.shape, generator=g))
    return p


def test_noise_distance_zero_for_zero_lora_and_grows_with_scale(model_cache, demo_root, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()  # no learned token: θ and φ read the same class words, only the LoRA differs
    (model_dir / "manifest.json").write_text(json.dumps({"stage": "train",
                                                         "options": {"captions": "compact"}}))
    opts = NoiseDistanceOptions(timesteps=2, noises=3, resolution=64, batch_size=2)
    distances = []
    for scale in (0.0, 0.5, 1.0, 2.0):
        rows = noise_distance(_nd_pipe(scale, model_cache), Path(demo_root / "toy_robot"),
                              opts, model_dir)
        assert [r["n"] for r in rows] == [3, 3]
        for r in rows:  # §5.4's ‖·‖²: the sum over the 4 × 8 × 8 latent elements of a 64² image
            assert r["elements"] == 256
            assert r["distance_sum"] == pytest.approx(256 * r["distance"], rel=1e-12)
        distances.append(sum(r["distance"] for r in rows))
    assert distances[0] == 0.0
    assert 0 < distances[1] < distances[2] < distances[3]


def test_noise_distance_options_validate():
    with pytest.raises(ValueError, match=">= 1"):
        replace(NoiseDistanceOptions(), noises=0)

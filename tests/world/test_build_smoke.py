"""The builder runs end to end for a few steps (so it cannot rot), resumes, and is seeded."""

import json

import torch
from safetensors.torch import load_file

from dcobench.world.build import PHASES, Builder, BuildOptions

SMOKE = BuildOptions(n_train=128, n_oracle=128, vae_steps=2, vae_batch=4, oracle_steps=2,
                     oracle_batch=8, sdxl_steps=2, sdxl_batch=4, siglip_steps=2, siglip_batch=8,
                     dino_steps=2, dino_batch=8, n_gate_prompts=4, gate_steps=2,
                     patterned=0.25, latent_channels=8, decoder_steps=2)


def test_smoke_build_writes_loadable_presets_gates_and_manifest_and_resumes(tmp_path):
    from diffusers import StableDiffusionXLPipeline
    from transformers import AutoModel

    work, out = tmp_path / "work", tmp_path / "out"
    manifest = Builder(SMOKE, work, out).run(["vae", "oracle"])
    assert manifest == {} and not (work / "sdxl").exists()
    vae_file = work / "vae" / "vae" / "diffusion_pytorch_model.safetensors"
    stamp = vae_file.stat().st_mtime_ns
    manifest = Builder(SMOKE, work, out).run(list(PHASES))  # resumes: vae is not retrained
    assert vae_file.stat().st_mtime_ns == stamp
    assert set(json.loads((out / "gates.json").read_text())["passed"]) >= {"vae_psnr", "oracle"}
    assert manifest["command"].startswith("python -m dcobench world build --options")
    assert manifest["options"]["vae_steps"] == 2 and manifest["options"]["patterned"] == 0.25
    assert set(manifest["phase_seconds"]) == set(PHASES)
    pipe = StableDiffusionXLPipeline.from_pretrained(str(out / "world-sdxl"))
    assert pipe.unet.dtype == torch.float32  # fp16 files, upcast on load
    assert pipe.unet.config.in_channels == pipe.vae.config.latent_channels == 8
    assert all(v.dtype == torch.float16 for v in load_file(
        str(out / "world-sdxl" / "unet" / "diffusion_pytorch_model.safetensors")).values())
    for name in ("world-siglip", "world-dinov2"):
        assert AutoModel.from_pretrained(str(out / name)).dtype == torch.float32


def test_vae_phase_is_deterministic_from_the_seed(tmp_path):
    opts = BuildOptions(**{**SMOKE.__dict__, "n_train": 64})
    for run in ("a", "b"):
        Builder(opts, tmp_path / run, tmp_path / f"out-{run}").run(["vae"])
    a, b = (load_file(str(tmp_path / r / "vae" / "vae" / "diffusion_pytorch_model.safetensors"))
            for r in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_build_options_refuse_a_patterned_fraction_outside_0_1():
    import pytest

    assert BuildOptions(patterned=0.25).patterned == 0.25
    for bad in (1.0, -0.1, "x"):
        with pytest.raises(ValueError, match="patterned"):
            BuildOptions(patterned=bad)


def test_decoder_fine_tune_keeps_the_latent_space_and_changes_the_decoding():
    """train_decoder touches post_quant_conv + decoder only: the encoder's latents (what the
    UNet learns) are bit-identical, reconstructions are not."""
    from dcobench.world.data import dataset
    from dcobench.world.models import build_vae
    from dcobench.world.pretrain import train_decoder

    torch.manual_seed(0)
    vae = build_vae(4).eval()
    images = dataset(0, "oracle", 32)[0]
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    with torch.no_grad():
        z = vae.encode(images).latent_dist.mean
        rec = vae.decode(z).sample
    train_decoder(vae, images, steps=3, batch=8, lr=1e-3, seed=0)
    after = vae.state_dict()
    with torch.no_grad():
        assert torch.equal(vae.encode(images).latent_dist.mean, z)
        assert not torch.allclose(vae.decode(z).sample, rec)
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"post_quant_conv", "decoder"}


def test_build_options_allow_no_decoder_steps_and_refuse_negative_ones():
    import pytest

    assert BuildOptions(decoder_steps=0).decoder_steps == 0
    with pytest.raises(ValueError, match="decoder_steps"):
        BuildOptions(decoder_steps=-1)
    with pytest.raises(ValueError, match="vae_steps"):
        BuildOptions(vae_steps=0)

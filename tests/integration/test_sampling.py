"""Sampler: batched reward guidance vs separate forwards at every step, the official split
arrangement, zero-LoRA identity, the stock diffusers pipeline, determinism of the noise."""

import pytest
import torch

from dcobench.models import adapters, load_sdxl, text
from dcobench.sample import denoise as sampling
from dcobench.sample import guidance
from dcobench.sample.guides import Guide


def _pipe_with_lora(scale_b: float, dtype=torch.float32):
    pipe = load_sdxl("tiny-sdxl").to(dtype=dtype)
    adapters.add_lora(pipe.unet, rank=4, alpha=4, name="theta")
    adapters.randomize_lora_b(pipe.unet, scale_b)
    pipe.unet.set_adapters(["theta"])
    return pipe


def _separate_rg(pipe, spec, cond, x, t):
    """ε̂ of reward guidance from 3·B single-row UNet calls: base rows with every adapter off."""
    b = x.shape[0]
    out = []
    for row in range(3 * b):
        embeds, added = cond.rows(slice(row, row + 1))
        xi = x[row % b : row % b + 1].to(torch.float64)
        if row < 2 * b:
            with adapters.adapters_disabled(pipe.unet):
                out.append(pipe.unet(xi, t, encoder_hidden_states=embeds, added_cond_kwargs=added).sample)
        else:
            out.append(pipe.unet(xi, t, encoder_hidden_states=embeds, added_cond_kwargs=added).sample)
    eps_u, eps_c, eps_t = torch.cat(out).chunk(3)
    return guidance.reward_guidance(eps_u, eps_c, eps_t, spec.w_text, spec.w_rg)


@pytest.mark.slow
@pytest.mark.parametrize(("batch", "resolution"), [(1, 64), (3, 96)])
def test_batched_rg_equals_separate_forwards_at_every_step(model_cache, batch, resolution):
    """In float64, so the bound tests the row arrangement, not fp32 rounding (fp32: ~1.6e-5,
    the per-row rounding amplified by ω_text and ω_rg in the formula)."""
    pipe = _pipe_with_lora(0.5, torch.float64)
    spec = sampling.GuideSpec(Guide("rg", 3.0), 7.5, "theta")
    theta = [f"a <x> robot number {i}" for i in range(batch)]
    base = [f"a robot number {i}" for i in range(batch)]
    cond = sampling.conditioning(pipe, spec, theta, base, resolution)
    assert cond.names == ["__base__"] * (2 * batch) + ["theta"] * batch
    assert cond.time_ids[0].tolist() == [resolution, resolution, 0, 0, resolution, resolution]
    h = resolution // pipe.vae_scale_factor
    noise = sampling.initial_noise(list(range(batch)), (4, h, h))
    errors = []

    def check(i, t, x, eps_hat):
        errors.append((eps_hat - _separate_rg(pipe, spec, cond, x, t)).abs().max().item())

    sampling.denoise(pipe, spec, cond, noise, steps=4, on_step=check)
    assert len(errors) == 4
    assert max(errors) <= 1e-5, errors


# Identities of the row arrangement run the UNet in float64: in fp32 another batch shape may pick
# other kernels (seen with torch 2.14.1: 1.2e-4 for split vs batched after 3 steps, ω-amplified),
# which is rounding, not arrangement. In float64 the gaps measured 0.0; the loop still combines
# and steps in fp32, so a last-bit flip of an fp32 latent (~1e-7) amplified by ω_text·ω_rg over
# a few steps bounds them: 1e-5 on images in [-1, 1].
ARRANGEMENT_ATOL = 1e-5


def test_split_arrangement_equals_batched(model_cache):
    pipe = _pipe_with_lora(0.5, torch.float64)
    spec = sampling.GuideSpec(Guide("rg", 4.0), 7.5, "theta")
    args = (["a <x> robot", "a <x> mug"], ["a robot", "a mug"], [3, 4], 64, 3)
    batched = sampling.generate(pipe, spec, *args)
    split = sampling.generate(pipe, spec, *args, arrangement="split")
    torch.testing.assert_close(batched, split, rtol=0, atol=ARRANGEMENT_ATOL)
    with pytest.raises(ValueError, match="reward guidance only"):
        sampling.generate(pipe, sampling.GuideSpec("cfg"), *args, arrangement="split")


def test_rg_with_zero_lora_equals_base_cfg(model_cache):
    pipe = _pipe_with_lora(0.0, torch.float64)
    args = (["a robot"], ["a robot"], [7], 64, 4)
    for w_rg in (2.0, 5.0):
        rg = sampling.generate(pipe, sampling.GuideSpec(Guide("rg", w_rg), 7.5, "theta"), *args)
        with adapters.adapters_disabled(pipe.unet):
            cfg = sampling.generate(pipe, sampling.GuideSpec("cfg", 7.5), *args)
        torch.testing.assert_close(rg, cfg, rtol=0, atol=ARRANGEMENT_ATOL)


def test_cfg_equals_stock_diffusers_pipeline(model_cache):
    """Our CFG loop (base model) against StableDiffusionXLPipeline.__call__ on the same noise."""
    pipe = load_sdxl("tiny-sdxl").to(dtype=torch.float64)
    prompts, seeds, steps = ["a red robot", "a blue mug"], [11, 12], 5
    ours = sampling.generate(pipe, sampling.GuideSpec("cfg", 7.5), prompts, prompts, seeds, 64, steps)
    pipe.scheduler = sampling.make_scheduler(pipe, "ddim")
    stock = pipe(prompt=prompts, height=64, width=64, num_inference_steps=steps, guidance_scale=7.5,
                 latents=sampling.initial_noise(seeds, (4, 8, 8)).double(), output_type="pt").images
    assert stock.shape == ours.shape
    # Both UNets in float64; stock also steps in float64, ours in fp32: fp32 rounding of ε̂
    # (ω_text 7.5 × 1.2e-7 × |ε|) over 5 steps ≈ 5e-6 (measured 1.7e-6); 2e-5 on [0, 1] images.
    torch.testing.assert_close((ours / 2 + 0.5).clamp(0, 1), stock.float(), rtol=0, atol=2e-5)


def test_same_seed_same_image_and_noise_depends_only_on_seed(model_cache):
    pipe = _pipe_with_lora(0.3, torch.float64)
    spec = sampling.GuideSpec(Guide("rg", 2.0), 7.5, "theta")
    a = sampling.generate(pipe, spec, ["a <x> robot", "a <x> mug"], ["a robot", "a mug"], [1, 2], 64, 3)
    b = sampling.generate(pipe, spec, ["a <x> mug"], ["a mug"], [2], 64, 3)
    torch.testing.assert_close(a[1:], b, rtol=0, atol=ARRANGEMENT_ATOL)  # batch composition
    assert a.std() > 0.01
    noise = sampling.initial_noise([5, 6], (4, 8, 8))
    assert torch.equal(noise[1], sampling.initial_noise([6], (4, 8, 8))[0])
    assert not torch.equal(noise[0], noise[1])


def test_conditioning_rows_and_time_ids(model_cache):
    pipe = load_sdxl("tiny-sdxl")
    cond = sampling.conditioning(pipe, sampling.GuideSpec("cfg"), ["a <x> dog"], ["a dog"], 64)
    assert cond.names is None and cond.embeds.shape[0] == 2
    assert torch.equal(cond.embeds[0], torch.zeros_like(cond.embeds[0]))  # SDXL: zeros for ∅
    base, _ = text.encode_prompts(pipe, ["a dog"])
    # base model CFG conditions on the class words (fp32 encoder in another batch: dtype defaults)
    torch.testing.assert_close(cond.embeds[1], base[0])


@pytest.mark.slow
def test_bench_sample_writes_its_figures(model_cache, tmp_path):
    """The benchmark runs end to end on the tiny model and writes the ratios it promises
    (their values are measured, not asserted)."""
    import json
    import subprocess
    import sys

    out = tmp_path / "sample.json"
    subprocess.run([sys.executable, "-m", "dcobench", "bench", "sample", "--steps", "2", "--warmup", "0",
                    "--rounds", "1", "--batch", "2", "--out", str(out)], check=True, capture_output=True)
    result = json.loads(out.read_text())
    for key in ("rg_over_cfg", "official_rg_over_cfg", "ours_cfg_over_stock"):
        assert result[key] > 0
    assert set(result["seconds_per_step"]) == {"cfg", "rg", "rg_official"}


@pytest.mark.parametrize("scheduler", ["euler", "dpm"])
def test_other_schedulers_run_on_the_same_noise(model_cache, scheduler):
    """`sample.scheduler` is configurable: each gives finite images that differ from DDIM's."""
    pipe = load_sdxl("tiny-sdxl")
    args = (sampling.GuideSpec("cfg"), ["a robot"], ["a robot"], [3], 64, 4)
    ddim = sampling.generate(pipe, *args, scheduler="ddim")
    other = sampling.generate(pipe, *args, scheduler=scheduler)
    assert torch.isfinite(other).all() and other.shape == ddim.shape
    assert not torch.allclose(other, ddim, atol=1e-3)


def test_unknown_scheduler_is_refused(model_cache):
    with pytest.raises(ValueError, match="unknown scheduler 'heun'; known: ddim, euler, dpm"):
        sampling.make_scheduler(load_sdxl("tiny-sdxl"), "heun")


def test_fp16_vae_with_force_upcast_decodes_in_fp32_once(model_cache):
    pipe = load_sdxl("tiny-sdxl")
    latents = sampling.initial_noise([1], (4, 8, 8))
    reference = sampling.decode(pipe, latents)
    pipe.vae.to(torch.float16)
    assert pipe.vae.config.force_upcast
    images = sampling.decode(pipe, latents)
    assert pipe.vae.dtype == torch.float32  # upcast once, kept for the next batches
    assert images.dtype == torch.float32
    assert torch.allclose(images, reference, atol=2e-2)  # only the fp16 rounding of the weights


def test_row_masks_equal_peft_mixed_batch(model_cache):
    """The default per-row adapters (0/1 row masks on the LoRA outputs) give peft's mixed-batch
    forward: one UNet call, base rows and θ rows, fp32. Measured bit-identical on CPU; bounded
    by the rounding of a LoRA matmul on a sub-batch vs the full batch."""
    pipe = _pipe_with_lora(0.5)
    spec = sampling.GuideSpec(Guide("rg", 3.0), 7.5, "theta")
    cond = sampling.conditioning(pipe, spec, ["a <x> robot", "a <x> mug"], ["a robot", "a mug"], 64)
    x = sampling.initial_noise([1, 2], (4, 8, 8))
    out = {}
    with torch.no_grad():
        for method in ("mask", "peft"):
            with adapters.per_row_adapters(pipe.unet, cond.names, method=method):
                out[method] = sampling.predict_batched(pipe.unet, cond, x, 500)
        plain = sampling.predict_batched(pipe.unet, cond, x, 500)  # every row with the LoRA
        with adapters.adapters_disabled(pipe.unet):
            base = sampling.predict_batched(pipe.unet, cond, x, 500)
    torch.testing.assert_close(out["mask"], out["peft"], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out["mask"][:4], base[:4], rtol=0, atol=0)  # "__base__" rows: + 0
    torch.testing.assert_close(out["mask"][4:], plain[4:], rtol=0, atol=0)  # θ rows: the LoRA
    assert (out["mask"][4:] - base[4:]).abs().max() > 1e-3  # the LoRA matters


def test_row_masks_need_active_plain_adapters(model_cache):
    pipe = _pipe_with_lora(0.5)
    names = ["__base__", "theta"]
    with pytest.raises(ValueError, match="unknown per-row method"):
        with adapters.per_row_adapters(pipe.unet, names, method="fast"):
            pass
    with adapters.adapters_disabled(pipe.unet), pytest.raises(ValueError, match="every named adapter"):
        with adapters.per_row_adapters(pipe.unet, names, method="mask"):
            pass
    layer = adapters.lora_layers(pipe.unet)[0]
    with adapters.per_row_adapters(pipe.unet, names, method="mask"):
        assert layer.lora_B["theta"]._forward_hooks and not layer._forward_pre_hooks
    assert not layer.lora_B["theta"]._forward_hooks  # removed on exit
    cond = sampling.conditioning(pipe, sampling.GuideSpec("cfg", lora="theta"), ["a <x> robot"], ["a robot"], 64)
    with torch.no_grad(), adapters.per_row_adapters(pipe.unet, names * 2, method="mask"):
        with pytest.raises(ValueError, match="name 4 rows; a LoRA layer saw 2"):
            sampling.predict_batched(pipe.unet, cond, sampling.initial_noise([1], (4, 8, 8)), 500)
    with pytest.warns(UserWarning, match="multiple adapters"):
        adapters.add_lora(pipe.unet, rank=2, alpha=2, name="other")
    pipe.unet.set_adapters(["theta"])
    with adapters.per_row_adapters(pipe.unet, ["__base__", "other"]):  # not active: peft's hook
        assert layer._forward_pre_hooks and not layer.lora_B["theta"]._forward_hooks


def test_outputs_are_ordinary_tensors(model_cache):
    """The loop and the decode run under inference mode; what they return can enter autograd
    and be changed in place (a prior image used in training, a clamp_ by a caller)."""
    pipe = load_sdxl("tiny-sdxl")
    images = sampling.generate(pipe, sampling.GuideSpec("cfg"), ["a robot"], ["a robot"], [3], 64, 2)
    assert not images.is_inference()
    images.clamp_(-1, 1)
    assert not any(p.is_inference() for p in pipe.vae.parameters())


def test_channels_last_gives_the_same_images_within_rounding(model_cache, tmp_path):
    """`sample.channels_last` (not exact: other conv kernels) against the default layout, fp32:
    measured 2.7e-6 on CPU; bound 1e-4 on images in [-1, 1]."""
    from dcobench.sample.grid import SampleOptions, load_model

    torch.manual_seed(0)
    opts = SampleOptions(out_dir=tmp_path, subject_dir=tmp_path, guides=("cfg",), channels_last=True)
    pipe = load_model(opts)
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    args = (sampling.GuideSpec("cfg"), ["a robot", "a mug"], ["a robot", "a mug"], [1, 2], 64, 4)
    fast = sampling.generate(pipe, *args)
    pipe.unet.to(memory_format=torch.contiguous_format)
    reference = sampling.generate(pipe, *args)
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-4)

"""DDIM built from an SDXL-style Euler config must not clip latents to the pixel range [-1, 1]."""

from types import SimpleNamespace

import torch
from diffusers import EulerDiscreteScheduler

from dcobench.models.sdxl_shaped import SCHEDULER, sdxl_scheduler
from dcobench.sample.denoise import make_scheduler


def _ddim_x0(scheduler_config_source) -> torch.Tensor:
    """DDIM's predicted x0 for a latent of 3s with a zero noise prediction at the first step."""
    sched = make_scheduler(SimpleNamespace(scheduler=scheduler_config_source), "ddim")
    sched.set_timesteps(10)
    latent = torch.full((1, 4, 2, 2), 3.0)
    out = sched.step(torch.zeros_like(latent), sched.timesteps[0], latent)
    return out.pred_original_sample


def test_sdxl_scheduler_config_carries_sdxl_keys():
    config = sdxl_scheduler().config
    assert config["clip_sample"] is False and config["set_alpha_to_one"] is False


def test_ddim_from_a_config_without_clip_sample_does_not_clip_latents():
    """An Euler config saved without SDXL's extra keys (older tiny/world presets): DDIM's own
    default would clip x0 to 1.0; with eps = 0, x0 = latent / sqrt(alpha_bar_t) > 3."""
    bare = EulerDiscreteScheduler(**SCHEDULER)
    assert "clip_sample" not in bare.config
    for source in (bare, sdxl_scheduler()):
        x0 = _ddim_x0(source)
        assert x0.min() > 3.0, x0.flatten()[:4]

"""`sdxl-shaped`: SDXL base 1.0's exact architecture with random weights, built offline.

For GPU benchmarks where the hub cannot be reached: every shape (UNet 2.57 B parameters, CLIP
ViT-L and OpenCLIP bigG text encoders with the full 49 408-token CLIP vocabulary, the 8× VAE)
and every config value that changes compute match stabilityai/stable-diffusion-xl-base-1.0, so
timings and memory are SDXL's; images are noise. Weights are saved in fp16 (≈ 7 GB).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .tokenizer import build_clip_tokenizer

# The special-token ids SDXL base 1.0's text_encoder/config.json and text_encoder_2/config.json
# carry (inherited from openai/clip-vit-large-patch14's legacy config), not the tokenizer's ids:
# with eos_token_id 2, transformers' CLIP pools at the largest token id of each prompt. The
# presets carry them so tests take the branch real SDXL takes (dcobench.models.text.eos_pooled).
SDXL_TEXT_SPECIAL_IDS = dict(bos_token_id=0, eos_token_id=2, pad_token_id=1)

FULL_MERGES = 49152 - 256 - 2  # every merge of CLIP's BPE: vocabulary 49 408

UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280), attention_head_dim=(5, 10, 20),
    transformer_layers_per_block=(1, 2, 10), norm_num_groups=32, cross_attention_dim=2048,
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)
VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, sample_size=1024, layers_per_block=2,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512), norm_num_groups=32, scaling_factor=0.13025,
    force_upcast=True,
)
TEXT_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, hidden_act="quick_gelu", projection_dim=768)
TEXT_G = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
              num_attention_heads=20, hidden_act="gelu", projection_dim=1280)
SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                 beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading",
                 prediction_type="epsilon", interpolation_type="linear", use_karras_sigmas=False)
# Keys SDXL base 1.0's scheduler_config.json carries for the other schedulers built from it
# (DDIM reads clip_sample / set_alpha_to_one; its defaults would clip latents to [-1, 1]).
SCHEDULER_EXTRA = dict(clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True,
                       sample_max_value=1.0)


def sdxl_scheduler():
    """SDXL base 1.0's scheduler: Euler discrete, with its full saved config."""
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler(**SCHEDULER)
    scheduler.register_to_config(**SCHEDULER_EXTRA)
    return scheduler


def components(tok1, tok2) -> dict:
    """Randomly initialised SDXL modules (on the current default device)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    def text_config(tok, spec):
        return CLIPTextConfig(vocab_size=len(tok), max_position_embeddings=77,
                              **SDXL_TEXT_SPECIAL_IDS, **spec)

    return {
        "unet": UNet2DConditionModel(**UNET),
        "vae": AutoencoderKL(**VAE),
        "text_encoder": CLIPTextModel(text_config(tok1, TEXT_L)),
        "text_encoder_2": CLIPTextModelWithProjection(text_config(tok2, TEXT_G)),
    }


def build_sdxl_shaped(out_dir: Path) -> None:
    """Build on the GPU when there is one (random init of 3.5 B parameters is slow on a CPU)."""
    from diffusers import StableDiffusionXLPipeline

    tok1 = build_clip_tokenizer(n_merges=FULL_MERGES)
    tok2 = build_clip_tokenizer(n_merges=FULL_MERGES, pad_token="!")
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        parts = components(tok1, tok2)
    parts = {name: module.to(torch.float16) for name, module in parts.items()}
    pipe = StableDiffusionXLPipeline(tokenizer=tok1, tokenizer_2=tok2,
                                     scheduler=sdxl_scheduler(),
                                     force_zeros_for_empty_prompt=True, add_watermarker=False, **parts)
    pipe.save_pretrained(str(out_dir), safe_serialization=True)

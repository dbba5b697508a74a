"""Architectures of the world's models (the real diffusers / transformers classes, small sizes).

- world-sdxl: ``StableDiffusionXLPipeline`` with two CLIP text encoders over the full CLIP BPE
  (49,408 tokens), a text-time UNet on C x 8 x 8 latents and an AutoencoderKL with a x4 scale
  (3 blocks), so images are 32x32 px (C = the build's ``latent_channels``).
- world-siglip: ``SiglipModel`` (32 px, patch 4) + ``SiglipProcessor`` (CLIP BPE, 64 tokens).
- world-dinov2: ``Dinov2Model`` (32 px, patch 4) + ``BitImageProcessor`` (no crop: objects sit
  at the edges).
"""

from __future__ import annotations

import torch

from dcobench.models.presets import IMAGENET_MEAN, IMAGENET_STD
from dcobench.models.tokenizer import build_clip_tokenizer

from .render import SIZE

FULL_MERGES = 49152 - 256 - 2  # every merge of CLIP's BPE: the real 49,408-token vocabulary
LATENT = SIZE // 4


def tokenizers():
    """SDXL's two tokenizers (the second pads with "!") over the full CLIP BPE."""
    return (build_clip_tokenizer(n_merges=FULL_MERGES),
            build_clip_tokenizer(n_merges=FULL_MERGES, pad_token="!"))


def build_vae(latent_channels: int = 4):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels, sample_size=SIZE,
        layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 48, 64), norm_num_groups=8, scaling_factor=1.0,
        force_upcast=False,
    )


def build_text_encoders(tok1, tok2):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    def config(tok, hidden, **kw):
        return CLIPTextConfig(
            vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
            num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id, **kw)

    te1 = CLIPTextModel(config(tok1, 32, hidden_act="quick_gelu"))
    te2 = CLIPTextModelWithProjection(config(tok2, 48, hidden_act="gelu", projection_dim=40))
    return te1, te2


def build_unet(latent_channels: int = 4):
    """The tiny-sdxl UNet, on the VAE's latent channels."""
    from diffusers import UNet2DConditionModel

    from dcobench.models.presets import TINY_UNET

    return UNet2DConditionModel(**{**TINY_UNET, "sample_size": LATENT,
                                   "in_channels": latent_channels,
                                   "out_channels": latent_channels})


def scheduler():
    """SDXL's scheduler config (Euler discrete, clip_sample false for DDIM built from it)."""
    from dcobench.models.sdxl_shaped import sdxl_scheduler

    return sdxl_scheduler()


def assemble_sdxl(vae, te1, te2, tok1, tok2, unet):
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline(
        vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tok1, tokenizer_2=tok2,
        unet=unet, scheduler=scheduler(), force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )


def build_siglip():
    """(SiglipModel, SiglipProcessor)."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    tok = build_clip_tokenizer(n_merges=FULL_MERGES, model_max_length=64)
    layers = dict(num_hidden_layers=2, num_attention_heads=4)
    config = SiglipConfig(  # small text width: the 49,408-row embedding dominates the size
        text_config=dict(layers, hidden_size=32, intermediate_size=64, vocab_size=len(tok),
                         max_position_embeddings=64, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         projection_size=64),
        vision_config=dict(layers, hidden_size=64, intermediate_size=128, image_size=SIZE,
                           patch_size=4),
    )
    proc = SiglipProcessor(
        image_processor=SiglipImageProcessor(
            do_resize=True, size={"height": SIZE, "width": SIZE}, resample=3, do_rescale=True,
            rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5] * 3, image_std=[0.5] * 3),
        tokenizer=tok)
    return SiglipModel(config), proc


def build_dinov2():
    """(Dinov2Model, BitImageProcessor)."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    model = Dinov2Model(Dinov2Config(hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                     mlp_ratio=2, patch_size=4, image_size=SIZE))
    proc = BitImageProcessor(
        do_resize=True, size={"shortest_edge": SIZE}, resample=3, do_center_crop=True,
        crop_size={"height": SIZE, "width": SIZE}, do_rescale=True, rescale_factor=1 / 255,
        do_normalize=True, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD, do_convert_rgb=True)
    return model, proc


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images -> what BitImageProcessor feeds DINOv2 (ImageNet mean/std)."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x + 1) / 2 - mean) / std

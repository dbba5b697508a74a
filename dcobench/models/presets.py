"""Tiny offline model presets (built deterministically on first use) and model loaders.

A model spec is a preset name (``tiny-sdxl``, ``tiny-dinov2``, ``tiny-siglip``, ``tiny-clip``;
``sdxl-shaped``: SDXL's full architecture with random weights, for GPU benchmarks),
a local directory, or a hub id. Presets are built into ``cache_root()/<name>`` through the real
``save_pretrained`` paths, so the loaders below treat them exactly like downloaded checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from dcobench.modelspec import PLUGIN_PRESETS, plugin_preset_dir

from .sdxl_shaped import SDXL_TEXT_SPECIAL_IDS, build_sdxl_shaped, sdxl_scheduler
from .tokenizer import build_clip_tokenizer, build_siglip_tokenizer

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]


def cache_root() -> Path:
    """Where presets are built: ``$DCOBENCH_CACHE`` or ``resources/models`` (relative to cwd)."""
    return Path(os.environ.get("DCOBENCH_CACHE") or "resources/models")


# The tiny SDXL-architecture UNet (3 levels, text-time conditioning; text encoders 32 + 48 wide,
# pooled projection 40), shared by tiny-sdxl and the world's world-sdxl.
TINY_UNET = dict(
    in_channels=4, out_channels=4, layers_per_block=2,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(32, 64, 64), attention_head_dim=(2, 4, 4),
    transformer_layers_per_block=(1, 1, 2), norm_num_groups=8, use_linear_projection=True,
    addition_embed_type="text_time", addition_time_embed_dim=8, cross_attention_dim=80,
    projection_class_embeddings_input_dim=6 * 8 + 40,
)



def _text_encoder_config(tok, hidden: int, **kw):
    """CLIP text config for a tiny SDXL text encoder (2 layers, 77 positions)."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
        **SDXL_TEXT_SPECIAL_IDS, **kw)


def build_tiny_sdxl(out_dir: Path) -> None:
    """SDXL-architecture pipeline (two CLIP encoders, text_time UNet, x8 VAE), 64x64 px."""
    from diffusers import (
        AutoencoderKL,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tok1 = build_clip_tokenizer()
    tok2 = build_clip_tokenizer(pad_token="!")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, **TINY_UNET)
    torch.manual_seed(1)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=64, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16), norm_num_groups=8, scaling_factor=0.13025,
    )
    torch.manual_seed(2)
    te1 = CLIPTextModel(_text_encoder_config(tok1, 32, hidden_act="quick_gelu"))
    torch.manual_seed(3)
    te2 = CLIPTextModelWithProjection(
        _text_encoder_config(tok2, 48, hidden_act="gelu", projection_dim=40))
    scheduler = sdxl_scheduler()
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tok1, tokenizer_2=tok2,
        unet=unet, scheduler=scheduler, force_zeros_for_empty_prompt=True, add_watermarker=False,
    )
    pipe.save_pretrained(str(out_dir), safe_serialization=True)


def build_tiny_dinov2(out_dir: Path) -> None:
    """Tiny ``Dinov2Model`` (hidden 32, 2 layers, patch 8, 64 px) + DINOv2-style processor."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    model = Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     mlp_ratio=2, patch_size=8, image_size=64))
    model.save_pretrained(str(out_dir), safe_serialization=True)
    # DINOv2 resizes the short side to 256 and crops 224; same 8:7 ratio at 64 px
    BitImageProcessor(
        do_resize=True, size={"shortest_edge": 73}, resample=3, do_center_crop=True,
        crop_size={"height": 64, "width": 64}, do_rescale=True, rescale_factor=1 / 255,
        do_normalize=True, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD, do_convert_rgb=True,
    ).save_pretrained(str(out_dir))


def build_tiny_siglip(out_dir: Path) -> None:
    """Tiny ``SiglipModel`` (hidden 32, 2 layers, 64 px, patch 8, 64 text positions) with a
    SentencePiece ``SiglipTokenizer`` as google/siglip-so400m-patch14-384 ships (needs protobuf)."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    tok = build_siglip_tokenizer(model_max_length=64)
    tower = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = SiglipConfig(
        text_config=dict(tower, vocab_size=len(tok), max_position_embeddings=64,
                         pad_token_id=tok.pad_token_id, bos_token_id=None,
                         eos_token_id=tok.eos_token_id),
        vision_config=dict(tower, image_size=64, patch_size=8),
    )
    torch.manual_seed(0)
    SiglipModel(config).save_pretrained(str(out_dir), safe_serialization=True)
    image_processor = SiglipImageProcessor(
        do_resize=True, size={"height": 64, "width": 64}, resample=3, do_rescale=True,
        rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5] * 3, image_std=[0.5] * 3,
    )
    SiglipProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(str(out_dir))


def build_tiny_clip(out_dir: Path) -> None:
    """Tiny open_clip ViT (64 px, patch 8) in the ``local-dir:`` / ``hf-hub:`` folder layout."""
    import open_clip
    from safetensors.torch import save_file

    tok = build_clip_tokenizer(out_dir)  # open_clip's HFTokenizer reads it from the folder
    model_cfg = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 32, "head_width": 16,
                       "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": len(tok), "width": 32, "heads": 2,
                     "layers": 2, "hf_tokenizer_name": "tiny-clip"},
    }
    torch.manual_seed(0)
    model = open_clip.CLIP(**model_cfg)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(out_dir / "open_clip_model.safetensors"), metadata={"format": "pt"})
    config = {"model_cfg": model_cfg,
              "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD,
                                 "interpolation": "bicubic", "resize_mode": "shortest"}}
    (out_dir / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n")


PRESETS: dict[str, Callable[[Path], None]] = {
    "tiny-sdxl": build_tiny_sdxl,
    "tiny-dinov2": build_tiny_dinov2,
    "tiny-siglip": build_tiny_siglip,
    "tiny-clip": build_tiny_clip,
}
# Full-size random-weight presets for GPU benchmarks: built only when named, never by build_all.
LARGE_PRESETS: dict[str, Callable[[Path], None]] = {"sdxl-shaped": build_sdxl_shaped}


def _build_atomic(name: str, final: Path) -> None:
    """Build preset `name` into a sibling temp dir, then rename it to `final` (race-safe)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=final.parent))
    try:
        with torch.random.fork_rng(devices=[]):  # builders seed torch; callers' RNG is untouched
            {**PRESETS, **LARGE_PRESETS}[name](tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():  # a lost race leaves `final` in place; anything else is real
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def resolve_model(spec: str | os.PathLike) -> str:
    """Preset name -> built dir (built on first use); local dir -> itself; else hub id."""
    spec = str(spec)
    if spec in PLUGIN_PRESETS:  # built weights a plug-in ships (dcobench.plugins)
        return str(plugin_preset_dir(spec))
    if spec in PRESETS or spec in LARGE_PRESETS:
        final = cache_root() / spec
        if not final.is_dir():
            _build_atomic(spec, final)
        return str(final)
    return spec


def build_all(names: list[str] | None = None) -> dict[str, str]:
    """Build (or find) the given presets (default: every tiny one) and return name -> directory."""
    return {name: resolve_model(name) for name in (names or list(PRESETS))}


def load_sdxl(spec: str, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """A ``StableDiffusionXLPipeline`` from a preset, local dir or hub id."""
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(resolve_model(spec), dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_dino(spec: str):
    """(model, image_processor) for a DINOv2-style backbone, in eval mode."""
    from transformers import AutoImageProcessor, AutoModel

    path = resolve_model(spec)
    return AutoModel.from_pretrained(path).eval(), AutoImageProcessor.from_pretrained(path)


def load_siglip(spec: str):
    """(model, processor) for a SigLIP model; pass ``padding="max_length"`` for text."""
    from transformers import AutoModel, AutoProcessor

    path = resolve_model(spec)
    return AutoModel.from_pretrained(path).eval(), AutoProcessor.from_pretrained(path)


def load_open_clip(spec: str):
    """(model, preprocess, tokenizer) via open_clip; local dirs use ``local-dir:``, hub ``hf-hub:``.

    OpenAI CLIP weights (hub ids ending in ``.openai``, e.g. timm/vit_base_patch32_clip_224.openai)
    were trained with QuickGELU; it is forced for them so a hub config without the flag cannot
    silently build the model with plain GELU.
    """
    import open_clip

    path = resolve_model(spec)
    if path.startswith(("local-dir:", "hf-hub:")):
        name = path
    elif os.path.isdir(path):
        name = f"local-dir:{path}"
    else:
        name = f"hf-hub:{path}"
    quick_gelu = name.startswith("hf-hub:") and name.rstrip("/").endswith(".openai")
    model, _, preprocess = open_clip.create_model_and_transforms(name, force_quick_gelu=quick_gelu)
    return model.eval(), preprocess, open_clip.get_tokenizer(name)

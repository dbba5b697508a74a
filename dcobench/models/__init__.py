"""Model presets (tiny offline models), loaders and offline CLIP tokenizers."""

from .presets import (
    PRESETS,
    build_all,
    cache_root,
    load_dino,
    load_open_clip,
    load_sdxl,
    load_siglip,
    resolve_model,
)
from .tokenizer import build_clip_tokenizer, clip_vocab_and_merges

__all__ = [
    "PRESETS",
    "build_all",
    "build_clip_tokenizer",
    "cache_root",
    "clip_vocab_and_merges",
    "load_dino",
    "load_open_clip",
    "load_sdxl",
    "load_siglip",
    "resolve_model",
]

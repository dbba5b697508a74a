"""The tiny presets carry the hub models' values wherever our code reads them, and the code
takes the branch the real models take (SDXL's legacy `eos_token_id: 2`, SigLIP's SentencePiece
tokenizer).

Hub values are hard-coded below with their source file; sizes (widths, layers, image side) are
the presets' own and deliberately not compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dcobench.models import load_dino, load_sdxl, load_siglip, resolve_model, text

# stabilityai/stable-diffusion-xl-base-1.0, text_encoder/config.json and
# text_encoder_2/config.json (inherited from openai/clip-vit-large-patch14's legacy config; the
# same triple is quoted from stable-diffusion-v1-5 in huggingface/diffusers issue #10754).
SDXL_TEXT = {"bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
             "max_position_embeddings": 77}
SDXL_TEXT_ACT = {"text_encoder": "quick_gelu", "text_encoder_2": "gelu"}
SDXL_TEXT_CLASS = {"text_encoder": "CLIPTextModel",
                   "text_encoder_2": "CLIPTextModelWithProjection"}
# .../tokenizer/ and tokenizer_2/ (tokenizer_config.json, special_tokens_map.json)
SDXL_TOKENIZER = {"tokenizer": {"model_max_length": 77, "pad_token": "<|endoftext|>"},
                  "tokenizer_2": {"model_max_length": 77, "pad_token": "!"}}
# .../unet/config.json: the fields the code and diffusers' SDXL path branch on
SDXL_UNET = {"addition_embed_type": "text_time", "in_channels": 4, "out_channels": 4,
             "use_linear_projection": True}
# .../vae/config.json (the ×8 latent scale is 2 ** (len(block_out_channels) - 1))
SDXL_VAE = {"scaling_factor": 0.13025, "latent_channels": 4, "force_upcast": True}
SDXL_VAE_SCALE = 8
# .../scheduler/scheduler_config.json
SDXL_SCHEDULER = {"_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 1000,
                  "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                  "prediction_type": "epsilon", "timestep_spacing": "leading", "steps_offset": 1,
                  "clip_sample": False, "set_alpha_to_one": False}
# .../model_index.json
SDXL_INDEX = {"force_zeros_for_empty_prompt": True}
# facebook/dinov2-base, preprocessor_config.json: resize the short side to 256, crop 224
DINO_PROC = {"image_processor_type": "BitImageProcessor", "resample": 3, "do_center_crop": True,
             "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
DINO_RESIZE_OVER_CROP = 256 / 224
# google/siglip-so400m-patch14-384: preprocessor_config.json, tokenizer_config.json (spiece.model),
# config.json (text_config.max_position_embeddings 64)
SIGLIP_PROC = {"image_processor_type": "SiglipImageProcessor", "resample": 3,
               "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_resize": True}
SIGLIP_TOKENIZER = {"class": "SiglipTokenizer", "model_max_length": 64, "pad_token": "</s>",
                    "eos_token": "</s>"}
SIGLIP_TEXT_POSITIONS = 64


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _fields(obj, want: dict) -> dict:
    """`obj`'s attributes named in `want` (tuples as lists, as json writes them), the class name
    under the key ending in `_type`."""
    got = {}
    for k in want:
        v = type(obj).__name__ if k.endswith("_type") else getattr(obj, k)
        got[k] = list(v) if isinstance(v, tuple) else v
    return got


@pytest.fixture(scope="module")
def sdxl_dir(model_cache) -> Path:
    return Path(resolve_model("tiny-sdxl"))


@pytest.mark.parametrize("name", ["text_encoder", "text_encoder_2"])
def test_sdxl_text_encoder_configs_carry_the_hub_values(sdxl_dir, name):
    cfg = _json(sdxl_dir / name / "config.json")
    assert {k: cfg[k] for k in SDXL_TEXT} == SDXL_TEXT
    assert cfg["hidden_act"] == SDXL_TEXT_ACT[name]
    assert cfg["architectures"] == [SDXL_TEXT_CLASS[name]]


def test_sdxl_tokenizers_unet_vae_scheduler_carry_the_hub_values(sdxl_dir):
    pipe = load_sdxl(str(sdxl_dir))
    for name, want in SDXL_TOKENIZER.items():
        tok = getattr(pipe, name)
        assert type(tok).__name__.startswith("CLIPTokenizer")
        assert {k: getattr(tok, k) for k in want} == want
    assert {k: pipe.unet.config[k] for k in SDXL_UNET} == SDXL_UNET
    assert {k: pipe.vae.config[k] for k in SDXL_VAE} == SDXL_VAE
    assert 2 ** (len(pipe.vae.config.block_out_channels) - 1) == SDXL_VAE_SCALE
    sched = _json(sdxl_dir / "scheduler" / "scheduler_config.json")
    assert {k: sched[k] for k in SDXL_SCHEDULER} == SDXL_SCHEDULER
    assert {k: pipe.config[k] for k in SDXL_INDEX} == SDXL_INDEX


def test_dino_processor_carries_the_hub_values(model_cache):
    _, proc = load_dino("tiny-dinov2")
    assert _fields(proc, DINO_PROC) == DINO_PROC
    ratio = proc.size["shortest_edge"] / proc.crop_size["height"]
    assert ratio == pytest.approx(DINO_RESIZE_OVER_CROP, rel=0.01)


def test_siglip_processor_and_tokenizer_are_the_hub_classes(model_cache):
    """The hub's SigLIP tokenizer is SentencePiece (SiglipTokenizer, needs protobuf): loading it
    through AutoProcessor is what every SigLIP scoring job does first."""
    model, proc = load_siglip("tiny-siglip")
    tok = proc.tokenizer
    assert type(tok).__name__ == SIGLIP_TOKENIZER["class"]
    assert {k: getattr(tok, k) for k in SIGLIP_TOKENIZER if k != "class"} == {
        k: v for k, v in SIGLIP_TOKENIZER.items() if k != "class"}
    assert _fields(proc.image_processor, SIGLIP_PROC) == SIGLIP_PROC
    assert model.config.text_config.max_position_embeddings == SIGLIP_TEXT_POSITIONS
    ids = proc(text=["a photo of a dog"], padding="max_length", truncation=True,
               return_tensors="pt").input_ids
    assert ids.shape == (1, SIGLIP_TEXT_POSITIONS)
    assert int(ids.max()) < model.config.text_config.vocab_size


def test_protobuf_is_importable_for_the_sentencepiece_tokenizer():
    import google.protobuf  # noqa: F401  (SiglipTokenizer's requires_backends)


@pytest.fixture(scope="module")
def pipe(model_cache):
    return load_sdxl("tiny-sdxl")


def _eos_reference(pipe, prompts: list[str]) -> torch.Tensor:
    """text_encoder_2's projected final state at the first end-of-text token, by hand."""
    tok, enc = pipe.tokenizer_2, pipe.text_encoder_2
    ids = tok(prompts, padding="max_length", max_length=77, truncation=True,
              return_tensors="pt").input_ids
    last = enc(ids).last_hidden_state
    pos = [row.tolist().index(tok.eos_token_id) for row in ids]
    return enc.text_projection(last[torch.arange(len(prompts)), pos])


@torch.no_grad()
def test_pooled_is_taken_at_the_end_of_text_token_without_a_learned_token(pipe):
    prompts = ["a photo of a dog", "a watercolor painting of a bay"]
    _, pooled = text.encode_prompts(pipe, prompts)
    torch.testing.assert_close(pooled, _eos_reference(pipe, prompts))


@torch.no_grad()
def test_pooled_is_taken_at_the_end_of_text_token_with_a_learned_token(model_cache):
    """With eos_token_id 2, transformers pools at the largest id: the learned token's position.
    SDXL's add_text_embeds must still come from the end-of-text state."""
    pipe = load_sdxl("tiny-sdxl")
    text.add_learned_token(pipe, "<sks>", "dog")
    prompts = ["a photo of <sks> dog", "a <sks> dog on the beach"]
    _, pooled = text.encode_prompts(pipe, prompts)
    want = _eos_reference(pipe, prompts)
    torch.testing.assert_close(pooled, want)
    ids = pipe.tokenizer_2(prompts, padding="max_length", max_length=77,
                           return_tensors="pt").input_ids
    argmax_pooled = pipe.text_encoder_2(ids).text_embeds  # what transformers hands back
    assert (argmax_pooled - want).abs().max() > 1e-2  # the branch real SDXL takes differs


def test_eos_position_refuses_rows_without_an_end_of_text_token():
    ids = torch.tensor([[5, 7, 9, 9], [5, 9, 7, 7]])
    assert text.eos_position(ids, 9).tolist() == [2, 1]
    with pytest.raises(ValueError, match="no end-of-text"):
        text.eos_position(torch.tensor([[5, 7]]), 9)

"""Scorer math on fixed embeddings against hand-computed values; the embedding cache's files."""

import pytest
import torch

from dcobench.registry import UnknownNameError
from dcobench.score.embedders import EmbeddingCache, model_slug
from dcobench.score.scorers import SCORERS, metric_from_embeddings

# Generated images g0 = (2, 0), g1 = (0, 3); references r0 = (5, 0), r1 = (1, 1).
# cos(g0, r0) = 1, cos(g0, r1) = 1/√2 = 0.70710678 -> mean (1 + 0.70710678) / 2 = 0.85355339
# cos(g1, r0) = 0, cos(g1, r1) = 1/√2 = 0.70710678 -> mean 0.35355339
GEN = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
REFS = torch.tensor([[5.0, 0.0], [1.0, 1.0]])
IMAGE_IMAGE = [0.85355339, 0.35355339]

# Image-text pairs: (3, 4)·(4, 3) = 24, |·| = 5·5 -> cos 0.96; (1, 0)·(0, 2) = 0 -> cos 0;
# (1, 1) vs (2, 2) -> cos 1.
IMG = torch.tensor([[3.0, 4.0], [1.0, 0.0], [1.0, 1.0]])
TXT = torch.tensor([[4.0, 3.0], [0.0, 2.0], [2.0, 2.0]])
IMAGE_TEXT = [0.96, 0.0, 1.0]
# SigLIP with scale 10, bias -10: σ(10·0.96 − 10) = σ(−0.4) = 1 / (1 + e^0.4) = 1 / 2.49182470
# = 0.40131234; σ(10·0 − 10) = σ(−10) = 1 / (1 + 22026.4658) = 4.5397868e-05; σ(10·1 − 10) = 0.5
SIGLIP_10 = [0.40131234, 4.5397868e-05, 0.5]


@pytest.mark.parametrize("name", ["dino", "clip_i", "siglip_image"])
def test_image_image_scorers_are_mean_cosine_over_references(name):
    got = metric_from_embeddings(name, GEN, refs=REFS)
    assert got.tolist() == pytest.approx(IMAGE_IMAGE, abs=1e-6)


def test_clip_t_is_paired_cosine():
    got = metric_from_embeddings("clip_t", IMG, txt=TXT)
    assert got.tolist() == pytest.approx(IMAGE_TEXT, abs=1e-6)


def test_siglip_text_is_sigmoid_of_scaled_cosine_plus_bias():
    got = metric_from_embeddings("siglip_text", IMG, txt=TXT, scale=10.0, bias=-10.0)
    assert got.tolist() == pytest.approx(SIGLIP_10, rel=1e-5, abs=1e-9)
    # scale 1 (the paper's formula as printed), bias 0: σ(0.96) = 1 / (1 + e^-0.96) = 0.72312181
    got = metric_from_embeddings("siglip_text", IMG[:1], txt=TXT[:1], scale=1.0, bias=0.0)
    assert got.item() == pytest.approx(0.72312181, abs=1e-6)


def test_scores_do_not_depend_on_embedding_norms():
    scaled = metric_from_embeddings("dino", GEN * torch.tensor([[7.0], [0.1]]), refs=REFS * 3)
    assert scaled.tolist() == pytest.approx(IMAGE_IMAGE, abs=1e-6)


@pytest.mark.parametrize("name,model,reference", [
    ("dino", "dino", "subject"), ("siglip_text", "siglip", "text"),
    ("siglip_image", "siglip", "style"), ("clip_i", "clip", "subject"), ("clip_t", "clip", "text"),
])
def test_registry_declares_model_reference_and_direction(name, model, reference):
    scorer = SCORERS[name]
    assert (scorer.model, scorer.reference, scorer.higher_is_better) == (model, reference, True)


def test_unknown_scorer_name_suggests_close_match():
    with pytest.raises(UnknownNameError, match=r"unknown scorer 'dinov2' \(did you mean 'dino'"):
        metric_from_embeddings("dinov2", GEN, refs=REFS)


def test_missing_inputs_are_named():
    with pytest.raises(ValueError, match="'dino' needs subject reference images"):
        metric_from_embeddings("dino", GEN)
    with pytest.raises(ValueError, match="'siglip_image' needs style reference images"):
        metric_from_embeddings("siglip_image", GEN, refs=torch.empty(0, 2))
    with pytest.raises(ValueError, match="one text embedding per image"):
        metric_from_embeddings("clip_t", IMG, txt=TXT[:2])
    with pytest.raises(ValueError, match="logit scale and bias"):
        metric_from_embeddings("siglip_text", IMG, txt=TXT)


def test_cache_round_trip_and_model_isolation(tmp_path):
    key = "ab" + "0" * 62
    a = EmbeddingCache(tmp_path, "dino:facebook/dinov2-base:cls-v1")
    b = EmbeddingCache(tmp_path, "dino:facebook/dinov2-large:cls-v1")
    assert a.root != b.root and a.get("image", key) is None
    a.put("image", key, torch.tensor([1.0, 2.0, 3.0]))
    assert a.path("image", key) == a.root / "image" / "ab" / f"{key}.safetensors"
    assert a.get("image", key).tolist() == [1.0, 2.0, 3.0]
    assert b.get("image", key) is None  # another checkpoint never hits
    assert [p.name for p in a.path("image", key).parent.iterdir()] == [f"{key}.safetensors"]


def test_cache_ignores_damaged_entries_and_rewrites_them(tmp_path):
    cache = EmbeddingCache(tmp_path, "siglip:tiny-siglip:features-v1")
    key = "cd" + "1" * 62
    cache.path("text", key).parent.mkdir(parents=True)
    cache.path("text", key).write_bytes(b"not a safetensors file")
    assert cache.get("text", key) is None
    cache.put("text", key, torch.zeros(4))
    assert cache.get("text", key).tolist() == [0.0] * 4


def test_model_slug_is_readable_and_distinct():
    a = model_slug("clip:hf-hub:timm/vit_base_patch32_clip_224.openai:encode-v1")
    b = model_slug("clip:hf-hub:timm/vit_base_patch32_clip_224.openai:encode-v2")
    assert a != b and a.startswith("clip_hf-hub_timm_vit_base_patch32_clip_224.openai")
    assert "/" not in a and len(a) <= 71


def test_put_writes_through_a_temp_file_and_leaves_only_the_entry(tmp_path):
    """A writer renames a finished temp file into place; a stray temp file (a killed job) is
    never read as an entry, and the real entry replaces an older one whole."""
    cache = EmbeddingCache(tmp_path, "clip:tiny-clip:encode-v1")
    key = "ef" + "2" * 62
    folder = cache.path("image", key).parent
    folder.mkdir(parents=True)
    (folder / f".{key[:8]}.killed.tmp").write_bytes(b"partial")
    assert cache.get("image", key) is None
    cache.put("image", key, torch.ones(3))
    cache.put("image", key, torch.full((3,), 2.0))
    assert cache.get("image", key).tolist() == [2.0, 2.0, 2.0]
    assert sorted(p.name for p in folder.iterdir()) == [f".{key[:8]}.killed.tmp", f"{key}.safetensors"]

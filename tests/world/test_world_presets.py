"""The committed world presets load like the tiny ones and do their jobs (integration)."""

import hashlib
import json

import pandas as pd
import torch
from PIL import Image

from dcobench.models import load_sdxl, resolve_model
from dcobench.score.embedders import Embedder
from dcobench.world.render import SIZE, render
from dcobench.world.scenes import scenes
from dcobench.world.vocab import caption


def test_manifest_lists_every_file_with_its_sha256(world_root):
    manifest = json.loads((world_root / "manifest.json").read_text())
    files = {p.relative_to(world_root).as_posix() for p in world_root.rglob("*")
             if p.is_file() and p.name != "manifest.json"}
    assert set(manifest["sha256"]) == files
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256((world_root / name).read_bytes()).hexdigest() == digest, name
    assert manifest["command"].startswith("python -m dcobench world build")
    weights = sum((world_root / n).stat().st_size for n in files if n.endswith(".safetensors"))
    assert weights <= 30 * 2**20


def test_world_sdxl_loads_through_the_project_and_samples_32px(world_root):
    from dcobench.sample.denoise import GuideSpec, generate

    assert resolve_model("world-sdxl") == str(world_root / "world-sdxl")
    pipe = load_sdxl("world-sdxl")
    assert len(pipe.tokenizer) == len(pipe.tokenizer_2) == 49408  # the full CLIP BPE
    assert pipe.vae_scale_factor * pipe.unet.config.sample_size == SIZE
    prompts = [caption(s) for s in scenes(0, "heldout", 2)]
    images = generate(pipe, GuideSpec("cfg", 7.5), prompts, prompts, [1, 2], SIZE, 4)
    assert images.shape == (2, 3, SIZE, SIZE) and torch.isfinite(images).all()


def test_siglip_and_dino_embed_world_images(world_root, tmp_path):
    files = []
    for i, s in enumerate(scenes(0, "pretrain", 4)):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(render(s)).save(files[-1])
    sig = Embedder("siglip", "world-siglip")
    img, txt = sig.images(files), sig.texts([caption(s) for s in scenes(0, "pretrain", 4)])
    assert img.shape == txt.shape and img.shape[0] == 4
    assert Embedder("dino", "world-dinov2").images(files).shape[0] == 4


def _sample_folder(folder, items, prompts):
    folder.mkdir(parents=True)
    rows = []
    for i, (s, p) in enumerate(zip(items, prompts, strict=True)):
        Image.fromarray(render(s)).save(folder / f"{i:03d}.png")
        rows.append({"file": f"{i:03d}.png", "prompt_index": i, "seed": i, "prompt": p,
                     "scoring_prompt": p, "guide": "cfg", "guidance": "cfg", "w_rg": None,
                     "w_text": 7.5})
    pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
    return folder


def test_oracle_scorers_on_a_sample_folder(world_root, world_concepts, tmp_path):
    """True renders score high on prompt_acc, shuffled prompts low; subjects and styles are
    recognised in contexts their references never showed."""
    from dataclasses import replace

    from dcobench.cli.score import score_folder
    from dcobench.data.concept import load_concept
    from dcobench.world.gates import subject_renders

    items = scenes(0, "heldout", 40, start=10_000)
    right = _sample_folder(tmp_path / "right", items, [caption(s) for s in items])
    wrong = _sample_folder(tmp_path / "wrong", items,
                           [caption(s) for s in scenes(0, "heldout", 40, start=20_000)])
    emb = {"oracle": Embedder("oracle", "world-oracle")}
    subject = load_concept(world_concepts[0]).images  # split_star
    style = load_concept(world_concepts[-1]).images  # wavy_style
    metrics = ["prompt_acc", "subject_acc", "style_acc"]
    t_right = score_folder(right, metrics, emb, subject, style, {})
    t_wrong = score_folder(wrong, ["prompt_acc"], emb, subject, style, {})
    acc = t_right[t_right.metric == "prompt_acc"].value.mean()
    assert acc >= 0.9 and t_wrong.value.mean() < acc - 0.3
    assert t_right[t_right.metric == "subject_acc"].value.mean() < 0.2  # no subject drawn
    assert t_right[t_right.metric == "style_acc"].value.mean() < 0.2  # no personal style
    subj_items, ids = subject_renders(7)
    subj_items = [s for s, k in zip(subj_items, ids, strict=True) if k == 0]
    wavy = [replace(s, style="wavy") for s in items[:8]]
    both = _sample_folder(tmp_path / "subj", subj_items + wavy,
                          [caption(s) for s in subj_items + wavy])
    t = score_folder(both, ["subject_acc", "style_acc"], emb, subject, style, {})
    n = len(subj_items)
    assert t[t.metric == "subject_acc"].value[:n].mean() > 0.7
    assert t[t.metric == "style_acc"].value.iloc[-8:].mean() > 0.7

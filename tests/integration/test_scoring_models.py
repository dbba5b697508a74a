"""Scoring with the tiny DINOv2 / SigLIP / open_clip presets: cache, CLI tables, errors."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from dcobench.__main__ import main
from dcobench.cli.score import COLUMNS
from dcobench.sample.guides import Guide
from dcobench.score.embedders import Embedder, model_id


def _sample_folder(folder: Path, n: int = 5, seed: int = 0, guide: str = "cfg") -> Path:
    """PNGs of random blobs + an index.csv in the sampler's format."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        name = f"p{i:03d}_s0.png"
        pixels = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).resize((64, 64), Image.Resampling.NEAREST).save(folder / name)
        rows.append({"file": name, "prompt_index": i, "seed": 0,
                     "prompt": f"a <toy_robot> in scene {i}", "scoring_prompt": f"a robot in scene {i}",
                     **Guide.parse(guide).columns(7.5), "prompt_set": "customization" if i < 3 else "stylization"})
    pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
    return folder


def _cache_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.safetensors"))


def test_second_run_loads_from_cache_and_a_changed_file_gets_a_new_entry(model_cache, tmp_path):
    folder = _sample_folder(tmp_path / "cfg")
    files = sorted(folder.glob("*.png"))
    cache = tmp_path / "cache"
    first = Embedder("dino", "tiny-dinov2", "cpu", batch_size=2, cache_dir=cache)
    emb = first.images(files)
    assert emb.shape == (5, 32) and first.forward_calls == 3  # ceil(5 / 2) batches
    assert len(_cache_files(cache)) == 5

    second = Embedder("dino", "tiny-dinov2", "cpu", batch_size=2, cache_dir=cache)
    assert torch.equal(second.images(files), emb)
    assert second.forward_calls == 0 and second._loaded is None  # model never loaded

    Image.new("RGB", (64, 64), "orange").save(files[0])  # new content, same name
    third = Embedder("dino", "tiny-dinov2", "cpu", batch_size=2, cache_dir=cache)
    changed = third.images(files)
    assert third.forward_calls == 1 and len(_cache_files(cache)) == 6
    assert torch.equal(changed[1:], emb[1:]) and not torch.equal(changed[0], emb[0])


def test_model_id_names_the_checkpoint(model_cache, tmp_path):
    import shutil

    from dcobench.models import resolve_model

    tiny = model_id("dino", "tiny-dinov2")
    assert tiny.startswith("dino:tiny-dinov2:cls-v1:")
    copy = tmp_path / "my-dino"
    shutil.copytree(resolve_model("tiny-dinov2"), copy)
    assert model_id("dino", str(copy)) != tiny  # another spec: another cache folder
    assert model_id("dino", str(copy)).endswith(tiny.rsplit(":", 1)[1])  # same files, same fingerprint
    assert model_id("dino", "facebook/dinov2-base") == "dino:facebook/dinov2-base:cls-v1"


def test_siglip_text_equals_the_model_own_pair_probability(model_cache, tmp_path):
    """σ(logits_per_image) of SiglipModel's forward is the independent reference."""
    from dcobench.models import load_siglip
    from dcobench.score.scorers import score_images

    folder = _sample_folder(tmp_path / "cfg", n=3)
    files = sorted(folder.glob("*.png"))
    prompts = ["a robot", "a red mug on a table", "a mosaic of a cat"]
    embedder = Embedder("siglip", "tiny-siglip", "cpu", batch_size=2)
    ours = score_images("siglip_text", embedder, files, prompts, [], [])
    model, proc = load_siglip("tiny-siglip")
    inputs = proc(text=prompts, images=[Image.open(f).convert("RGB") for f in files],
                  padding="max_length", return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"]).logits_per_image
    assert ours.tolist() == pytest.approx(torch.sigmoid(logits.diagonal()).tolist(), abs=1e-5)


def _score(tmp_path, samples, out, demo_root, metrics="dino,siglip_text,clip_i,clip_t"):
    models = json.dumps({"dino": "tiny-dinov2", "siglip": "tiny-siglip", "clip": "tiny-clip"})
    meta = json.dumps({"exp": "t", "group": "subject", "concept": "toy_robot", "variant": "dco"})
    return main(["score", "--samples", *map(str, samples), "--out-dir", str(out), "--metrics", metrics,
                 "--models", models, "--subject", str(demo_root / "toy_robot"), "--meta", meta,
                 "--batch-size", "4", "--cache-dir", str(tmp_path / "cache")])


def test_cli_writes_long_tables_and_rescoring_is_identical_from_cache(model_cache, demo_root, tmp_path):
    samples = [_sample_folder(tmp_path / "s" / "cfg"), _sample_folder(tmp_path / "s" / "rg3", 4, 1, "rg3")]
    out = tmp_path / "scores"
    assert _score(tmp_path, samples, out, demo_root) == 0
    cfg = pd.read_csv(out / "cfg.csv")
    assert list(cfg.columns) == COLUMNS and len(cfg) == 5 * 4
    assert set(cfg["metric"]) == {"dino", "siglip_text", "clip_i", "clip_t"}
    assert (cfg[["exp", "concept", "variant", "group"]].iloc[0] == ["t", "toy_robot", "dco", "subject"]).all()
    assert cfg.groupby("prompt_set").size().to_dict() == {"customization": 12, "stylization": 8}
    assert cfg["value"].between(-1, 1).all() and cfg["value"].notna().all()
    assert len(pd.read_csv(out / "rg3.csv")) == 4 * 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(n > 0 for n in manifest["forward_calls"].values())

    again = tmp_path / "scores2"
    assert _score(tmp_path, samples, again, demo_root) == 0
    assert json.loads((again / "manifest.json").read_text())["forward_calls"] == {"dino": 0, "siglip": 0, "clip": 0}
    pd.testing.assert_frame_equal(pd.read_csv(again / "cfg.csv"), cfg)


def test_missing_index_or_image_is_named_and_writes_nothing(model_cache, demo_root, tmp_path, caplog):
    empty = tmp_path / "s" / "cfg"
    empty.mkdir(parents=True)
    out = tmp_path / "scores"
    assert _score(tmp_path, [empty], out, demo_root, "dino") == 1
    assert f"{empty}/index.csv is missing" in caplog.text

    folder = _sample_folder(tmp_path / "t" / "cfg")
    (folder / "p002_s0.png").unlink()
    assert _score(tmp_path, [folder], out, demo_root, "dino") == 1
    assert f"{folder}: index.csv lists 1 missing image(s): p002_s0.png" in caplog.text
    assert not list(out.glob("*.csv"))


def test_a_failure_after_the_first_folder_leaves_no_table(model_cache, demo_root, tmp_path, caplog):
    good = _sample_folder(tmp_path / "s" / "cfg")
    bad = _sample_folder(tmp_path / "s" / "rg3", guide="rg3")
    png = bad / "p001_s0.png"
    png.write_bytes(png.read_bytes()[:60])  # header intact, pixel data cut
    out = tmp_path / "scores"
    assert _score(tmp_path, [good, bad], out, demo_root, "dino") == 1
    assert f"{png}: cannot be read as an image" in caplog.text
    assert not list(out.glob("*.csv")) and not (out / "manifest.json").exists()

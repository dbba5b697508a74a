"""Grouped sampling and scoring (sample.group_size / score.group_size: concept): one process per
concept writes what one process per model writes, byte for byte, and hands every member the
unchanged base pipeline."""

import json

import pytest
import torch

from dcobench.__main__ import main
from dcobench.models import adapters, load_sdxl, text
from dcobench.models.finetuned import attach_model, load_finetuned
from dcobench.sample.group import BaseRestoreError, BaseState, check_members
from dcobench.spec.sample import SampleOptions

pytestmark = pytest.mark.slow

OPTIONS = {"num_prompts": 2, "seeds": [0], "steps": 2, "resolution": 64, "batch_size": 2}
GUIDES = {"a": ["cfg", "rg3"], "b": ["cfg", "rg3"], "pretrained": ["cfg"]}
SCORERS = {"dino": "tiny-dinov2", "siglip": "tiny-siglip", "clip": "tiny-clip"}


def _model(path, concept_token, seed):
    """A model folder as training writes it: a LoRA with nonzero B (so it changes the images)
    and a learned concept token whose rows differ from their initializer."""
    pipe = load_sdxl("tiny-sdxl")
    config = adapters.add_lora(pipe.unet, rank=4, alpha=4)
    adapters.randomize_lora_b(pipe.unet, 0.05, seed)
    path.mkdir()
    adapters.save_lora(path, adapters.lora_state_dict(pipe.unet), config)
    tokens = text.add_learned_token(pipe, concept_token, "robot")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for table, i in zip(tokens.tables(pipe), tokens.ids, strict=True):
            table[i] += 0.5 * torch.randn(table.shape[1], generator=g)
    text.save_learned_embeds(path / "learned_embeds.safetensors", pipe, tokens)
    return path


@pytest.fixture(scope="module")
def models(model_cache, demo_root, tmp_path_factory):
    from dcobench.data.concept import load_concept

    root = tmp_path_factory.mktemp("models")
    token = load_concept(demo_root / "toy_robot").token
    return {"a": _model(root / "a", token, 1), "b": _model(root / "b", token, 2), "pretrained": None}


def _members(models, out):
    return [{"model": str(m) if m else None, "out": str(out / name),
             "options": {**OPTIONS, "guides": GUIDES[name]}} for name, m in models.items()]


@pytest.fixture(scope="module")
def sampled(models, demo_root, tmp_path_factory):
    """(per-model root, grouped root): each member sampled by its own `sample` command, and all
    of them by one `sample --members` command (LoRA members first, the pretrained one last)."""
    root = tmp_path_factory.mktemp("sampled")
    concept = ["--subject", str(demo_root / "toy_robot"), "--base-model", "tiny-sdxl"]
    for m in _members(models, root / "single"):
        model = ["--model", m["model"]] if m["model"] else []
        assert main(["sample", *model, "--out", m["out"], *concept, "--options",
                     json.dumps(m["options"]), "--chunk", "1of1",
                     "--done", f"{m['out']}.done"]) == 0
    grouped = root / "group"
    assert main(["sample", "--members", json.dumps(_members(models, grouped)), *concept,
                 "--chunk", "1of1", "--done", str(grouped / "group.done")]) == 0
    for m in _members(models, root / "single") + _members(models, grouped):  # rule sample_join
        model = ["--model", m["model"]] if m["model"] else []
        assert main(["sample", *model, "--out", m["out"], *concept, "--options",
                     json.dumps(m["options"]), "--join"]) == 0
    return root / "single", grouped


def test_grouped_sampling_writes_the_per_model_images_byte_for_byte(sampled):
    single, grouped = sampled
    names = sorted(p.relative_to(single) for p in single.rglob("*") if p.suffix in (".png", ".csv"))
    # a, b: cfg + rg3; pretrained: cfg; 2 prompts × 1 seed; an index.csv per guide folder
    assert len(names) == 3 * (2 * 2 + 2 * 2 + 2) // 2
    assert names == sorted(p.relative_to(grouped) for p in grouped.rglob("*")
                           if p.suffix in (".png", ".csv"))
    for name in names:
        assert (single / name).read_bytes() == (grouped / name).read_bytes(), name
    # the members are different models: their LoRA and token move the images
    first = "cfg/p000_s0.png"
    images = {m: (grouped / m / first).read_bytes() for m in GUIDES}
    assert len(set(images.values())) == 3
    assert (grouped / "group.done").read_text() == "1of1\n"


def _state(pipe):
    """Every tensor the base pipeline holds, by value, and the tokenizers' sizes."""
    out = {f"{part}.{k}": v.detach().clone() for part in ("unet", "vae", "text_encoder", "text_encoder_2")
           for k, v in getattr(pipe, part).state_dict().items()}
    return out, [len(tok) for tok, _ in text.encoders(pipe)]


def test_the_base_is_restored_exactly_after_each_member(models, model_cache):
    pipe = load_finetuned("tiny-sdxl", None, "fp32")
    base = BaseState(pipe)
    before, sizes = _state(pipe)
    for name in ("a", "b"):
        attach_model(pipe, models[name])
        assert len(pipe.tokenizer) == sizes[0] + 1
        with pytest.raises(BaseRestoreError):  # the member's LoRA and token are on
            base.check(pipe)
        base.restore(pipe)
        after, after_sizes = _state(pipe)
        assert after_sizes == sizes and after.keys() == before.keys()
        for key, value in before.items():
            assert torch.equal(after[key], value), (name, key)


def test_a_base_weight_written_in_place_is_caught(model_cache):
    pipe = load_finetuned("tiny-sdxl", None, "fp32")
    base = BaseState(pipe)
    weight = next(pipe.unet.parameters())
    with torch.no_grad():
        weight.add_(0.0)  # equal values, but written: a merged LoRA would look like this
    with pytest.raises(BaseRestoreError, match="written in place"):
        base.check(pipe)


def test_members_must_share_the_base(demo_root, tmp_path):
    opts = [SampleOptions(out_dir=tmp_path / name, subject_dir=demo_root / "toy_robot",
                          guides=("cfg",), mixed_precision=precision)
            for name, precision in (("a", "fp32"), ("b", "bf16"))]
    with pytest.raises(ValueError, match="share mixed_precision"):
        check_members(opts)


def test_grouped_scoring_writes_the_per_model_tables(sampled, demo_root, tmp_path):
    single, _ = sampled
    common = ["--metrics", "dino,siglip_text,clip_i", "--models", json.dumps(SCORERS),
              "--subject", str(demo_root / "toy_robot"), "--batch-size", "3"]
    members = []
    for name, guides in GUIDES.items():
        samples = [str(single / name / g) for g in guides]
        meta = {"exp": "t", "group": "subject", "concept": "toy_robot", "variant": name}
        assert main(["score", "--samples", *samples, "--out-dir", str(tmp_path / "single" / name),
                     "--meta", json.dumps(meta), "--cache-dir", str(tmp_path / "cache1"), *common]) == 0
        members.append({"samples": samples, "out": str(tmp_path / "group" / name), "meta": meta})
    done = tmp_path / "group" / "done.json"
    assert main(["score", "--members", json.dumps(members), "--cache-dir", str(tmp_path / "cache2"),
                 "--done", str(done), *common]) == 0
    assert json.loads(done.read_text())["scores"] == [m["out"] for m in members]
    for name, guides in GUIDES.items():
        one, group = tmp_path / "single" / name, tmp_path / "group" / name
        assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in group.iterdir())
        for guide in guides:
            assert (one / f"{guide}.csv").read_bytes() == (group / f"{guide}.csv").read_bytes()
        a, b = (json.loads((d / "manifest.json").read_text()) for d in (one, group))
        for key in ("stage", "options", "samples", "model_ids", "sha256"):
            assert a[key] == b[key], (name, key)
        assert a["forward_calls"].keys() == b["forward_calls"].keys()


def test_sigterm_mid_group_then_rerun_equals_uninterrupted(models, demo_root, tmp_path):
    """A grouped job stopped by SLURM's SIGTERM exits 143 with the finished batches written;
    its rerun skips them and ends with the uninterrupted group's images, byte for byte."""
    import os
    import signal
    import subprocess
    import sys
    import time

    slow = {**OPTIONS, "steps": 6, "batch_size": 1}  # 10 batches: time to stop mid-group
    members = {}
    for run in ("whole", "stopped"):
        members[run] = _members(models, tmp_path / run)
        for m in members[run]:
            m["options"] = {**slow, "guides": m["options"]["guides"]}
    concept = ["--subject", str(demo_root / "toy_robot"), "--base-model", "tiny-sdxl"]
    assert main(["sample", "--members", json.dumps(members["whole"]), *concept]) == 0
    cmd = [sys.executable, "-m", "dcobench", "sample", "--members",
           json.dumps(members["stopped"]), *concept]
    proc = subprocess.Popen(cmd, env=os.environ.copy(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list((tmp_path / "stopped").glob("*/*/p*.png")):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no image after 300 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-3000:]
    written = list((tmp_path / "stopped").rglob("p*.png"))
    assert 0 < len(written) < 10
    assert main(["sample", "--members", json.dumps(members["stopped"]), *concept]) == 0
    whole = sorted(p.relative_to(tmp_path / "whole") for p in (tmp_path / "whole").rglob("*.png"))
    assert len(whole) == 10
    for name in whole:
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "stopped" / name).read_bytes()

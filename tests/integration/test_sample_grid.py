"""The sampling grid: every method and batch size sees the same noise per (seed, prompt) slot,
the master seed moves it, file names and index.csv encode the slot."""

import csv

import numpy as np
import pytest
from PIL import Image

from dcobench.models import adapters
from dcobench.sample.grid import SampleOptions, noise_seed, prompt_list, sample_grid

pytestmark = pytest.mark.slow

GUIDES = ("cfg", "rg3")


def _zero_lora(path):
    """A saved LoRA with B = 0 (peft's init): the fine-tuned model equals the base model."""
    from dcobench.models import load_sdxl

    pipe = load_sdxl("tiny-sdxl")
    config = adapters.add_lora(pipe.unet, rank=4, alpha=4)
    adapters.save_lora(path, adapters.lora_state_dict(pipe.unet), config)
    return path


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def grids(model_cache, demo_root, tmp_path_factory):
    """Two 'methods' (identical zero LoRAs in separate folders) sampled with different batch
    sizes, and a third run with another master seed."""
    root = tmp_path_factory.mktemp("grid")
    base = dict(subject_dir=demo_root / "toy_robot", guides=GUIDES, num_prompts=2, seeds=(0, 1),
                steps=3, resolution=64)
    runs = {"dco": dict(batch_size=4), "db": dict(batch_size=1), "dco_seed1": dict(batch_size=4, seed=1)}
    for name, extra in runs.items():
        lora = _zero_lora(root / f"lora_{name}")
        sample_grid(SampleOptions(out_dir=root / name, model_dir=lora, **base, **extra))
    return root


def test_methods_and_batch_sizes_share_noise(grids):
    for guide in GUIDES:
        names = sorted(p.name for p in (grids / "dco" / guide).glob("*.png"))
        assert names == ["p000_s0.png", "p000_s1.png", "p001_s0.png", "p001_s1.png"]
        for name in names:
            a, b = _pixels(grids / "dco" / guide / name), _pixels(grids / "db" / guide / name)
            # 8-bit PNGs: another batch shape changes fp32 rounding (~1e-5 on [-1, 1]), which can
            # move a pixel across a rounding boundary by one level, never more (1 level = 7.8e-3)
            assert np.abs(a - b).max() <= 1, (guide, name)
        s0, s1 = _pixels(grids / "dco" / guide / names[0]), _pixels(grids / "dco" / guide / names[1])
        assert np.abs(s0 - s1).mean() > 2  # the seed slot changes the noise


def test_master_seed_changes_every_image(grids):
    for name in ("p000_s0.png", "p001_s1.png"):
        a, b = _pixels(grids / "dco" / "cfg" / name), _pixels(grids / "dco_seed1" / "cfg" / name)
        assert np.abs(a - b).mean() > 2
    assert noise_seed(0, 1, 2) == noise_seed(0, 1, 2)
    assert len({noise_seed(0, 0, 1), noise_seed(0, 1, 0), noise_seed(1, 0, 1)}) == 3


def test_index_encodes_slot_prompt_and_guide(grids, demo_root):
    rows = list(csv.DictReader(open(grids / "dco" / "rg3" / "index.csv")))
    assert [(r["prompt_index"], r["seed"]) for r in rows] == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
    assert {r["guide"] for r in rows} == {"rg3"} and {(r["guidance"], float(r["w_rg"]), float(r["w_text"])) for r in rows} == {("rg", 3.0, 7.5)}
    # the zero LoRA's folder holds no learned token: θ reads the class words, never "<toy_robot>"
    # (data.captions); with a token, `prompt` keeps it (tests/integration/test_captions.py)
    assert all(r["prompt"] == r["scoring_prompt"] and "<" not in r["prompt"] for r in rows)
    cfg_rows = list(csv.DictReader(open(grids / "dco" / "cfg" / "index.csv")))
    assert {(r["guidance"], r["w_rg"], float(r["w_text"])) for r in cfg_rows} == {("cfg", "", 7.5)}


def test_set_seeds_add_images_to_one_set_on_the_same_noise(grids, demo_root, tmp_path):
    """`set_seeds` gives one prompt set its own seeds; the seeds it shares with `seeds` keep
    their images (the noise is a function of the slot)."""
    base = dict(subject_dir=demo_root / "toy_robot", guides=("cfg",), num_prompts=2, steps=3,
                resolution=64, batch_size=4, model_dir=_zero_lora(tmp_path / "lora"))
    name = prompt_list(SampleOptions(out_dir=tmp_path, **base))[0].prompt_set
    sample_grid(SampleOptions(out_dir=tmp_path / "more", set_seeds={name: (0, 1, 5)}, **base))
    rows = list(csv.DictReader(open(tmp_path / "more" / "cfg" / "index.csv")))
    assert [(r["prompt_index"], r["seed"]) for r in rows] == [
        (p, s) for p in ("0", "1") for s in ("0", "1", "5")]
    for name in ("p000_s0.png", "p001_s1.png"):
        a, b = _pixels(tmp_path / "more" / "cfg" / name), _pixels(grids / "dco" / "cfg" / name)
        assert np.abs(a - b).max() <= 1, name  # batch composition only (see above)
    with pytest.raises(ValueError, match="set_seeds"):
        SampleOptions(out_dir=tmp_path, set_seeds={name: (1, 1)}, **base)


def test_bad_options_are_refused(demo_root, tmp_path):
    with pytest.raises(ValueError, match="needs a fine-tuned model"):
        SampleOptions(out_dir=tmp_path, subject_dir=demo_root / "toy_robot", guides=("rg3",))
    with pytest.raises(ValueError, match="mixed_precision"):
        SampleOptions(out_dir=tmp_path, subject_dir=demo_root / "toy_robot", guides=("cfg",),
                      mixed_precision="fp8")


def test_chunks_then_join_write_what_one_job_writes(grids, demo_root, tmp_path):
    """Issue 36: a grid split into prompt chunks (separate jobs into the same folders) and
    joined gives the unchunked folder: same images, same index.csv; the join refuses a gap."""
    from dcobench.cli.sample import parse_chunk
    from dcobench.sample.grid import chunk_prompts, join_grid

    assert [chunk_prompts(list(range(5)), i, 2) for i in (1, 2)] == [[0, 1], [2, 3, 4]]
    assert parse_chunk("2of4") == (2, 4)
    with pytest.raises(ValueError):
        parse_chunk("5of4")
    opts = SampleOptions(out_dir=tmp_path / "dco", model_dir=grids / "lora_dco",
                         subject_dir=demo_root / "toy_robot", guides=GUIDES, num_prompts=2,
                         seeds=(0, 1), steps=3, resolution=64, batch_size=4)
    sample_grid(opts, chunk=(1, 2))
    assert not (tmp_path / "dco" / "cfg" / "index.csv").exists()  # not complete yet
    with pytest.raises(ValueError, match="2 of 4 images missing"):
        join_grid(opts)
    sample_grid(opts, chunk=(2, 2))
    join_grid(opts)
    for guide in GUIDES:
        ref, got = grids / "dco" / guide, tmp_path / "dco" / guide
        assert (got / "index.csv").read_text() == (ref / "index.csv").read_text()
        for name in ("p000_s0.png", "p001_s1.png"):
            assert np.abs(_pixels(got / name) - _pixels(ref / name)).max() <= 1

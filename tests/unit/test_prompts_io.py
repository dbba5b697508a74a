"""Prompt sets (data/prompts), the Parti subset rule, and real-image loading (EXIF, crop)."""

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from dcobench.data import prompts
from dcobench.io import load_image

# A local mirror of the public datasets (one folder per dataset); CI sets it, users may not.
MIRROR = os.environ.get("DCOBENCH_DATA_MIRROR")


@pytest.mark.parametrize("name,n", [("object_customization", 50), ("live_customization", 50),
                                    ("object_stylization", 50), ("live_stylization", 50),
                                    ("parti190", 190), ("merge", 25)])
def test_prompt_sets_sizes_unique_slots(name, n):
    templates = prompts.PROMPT_SETS[name]
    assert len(templates) == n and len(set(templates)) == n
    slot = "{style}" if name == "parti190" else "{subject}"
    assert all(t.count(slot) == 1 for t in templates)


def test_dreambooth_lists_open_the_customization_sets():
    assert prompts.OBJECT_CUSTOMIZATION[:25] == prompts.OBJECT_PROMPTS
    assert prompts.OBJECT_PROMPTS[0] == "a {subject} in the jungle"
    assert prompts.LIVE_PROMPTS[-6] == "a {subject} in a purple wizard outfit"


def test_build_prompts_by_kind_with_running_indices():
    got = prompts.build_prompts("subject", ["customization", "stylization"], True, 2,
                                {"subject": "<dog>"}, {"subject": "dog"})
    assert [(p.index, p.prompt_set) for p in got] == [
        (0, "live_customization"), (1, "live_customization"),
        (2, "live_stylization"), (3, "live_stylization")]
    assert got[0].theta == "a <dog> in the jungle" and got[0].base == "a dog in the jungle"
    default = prompts.build_prompts("subject", None, False, None, {"subject": "x"}, {"subject": "y"})
    assert [p.prompt_set for p in default] == ["object"] * 25
    with pytest.raises(KeyError, match="unknown prompt set 'parti190' for group 'subject'"):
        prompts.resolve_set("subject", "parti190", False)


def test_parti_subset_rule_reproduces_the_file():
    tsv = Path(MIRROR or "/nonexistent") / "parti" / "PartiPrompts.tsv"
    if not tsv.exists():
        pytest.skip(f"{tsv} not present (set DCOBENCH_DATA_MIRROR to a local mirror)")
    assert prompts.parti_subset(tsv) == prompts.PARTI190


def test_parti_subset_rule_on_a_small_table(tmp_path):
    tsv = tmp_path / "p.tsv"
    rows = ["Prompt\tCategory\tChallenge\tNote",
            "A red bus on a bridge.\tVehicles\tBasic\t", "a dog in oil paint style\tAnimals\tBasic\t",
            "a cat sleeping on a mat\tAnimals\tBasic\t", "a sign that says hi there\tArtifacts\tBasic\t",
            "a tall lighthouse on a cliff\tOutdoor Scenes\tStyle & Format\t",
            "a green apple on a plate\tFood & Beverage\tBasic\t", "a cat sleeping on a mat\tAnimals\tBasic\t"]
    tsv.write_text("\n".join(rows) + "\n")
    assert prompts.parti_subset(tsv, n=3) == [
        "a cat sleeping on a mat in {style} style", "a green apple on a plate in {style} style",
        "a red bus on a bridge in {style} style"]
    with pytest.raises(ValueError, match="only 3 prompts"):
        prompts.parti_subset(tsv, n=4)


def test_load_image_applies_exif_orientation_and_center_crop(tmp_path):
    img = Image.new("RGB", (300, 200), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 300, 50))  # red band on top
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display: the top band ends up on the right
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    x = load_image(tmp_path / "r.jpg", 32)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert -1.0 <= x.min() and x.max() <= 1.0
    right, left = x[:, :, -2:].mean(dim=(1, 2)), x[:, :, :2].mean(dim=(1, 2))
    assert right[0] > 0.5 and right[2] < -0.5  # red on the right
    assert left[2] > 0.5 and left[0] < -0.5  # blue on the left


def test_load_image_large_jpeg_decodes_to_resolution(tmp_path):
    img = Image.new("RGB", (2048, 1536), (10, 200, 30))
    img.paste((250, 250, 250), (0, 0, 256, 1536))  # white strip cropped away by the center crop
    img.save(tmp_path / "big.jpg", quality=90)
    x = load_image(tmp_path / "big.jpg", 64)
    assert x.shape == (3, 64, 64)
    g = x.mean(dim=(1, 2))
    assert g[1] > 0.4 and g[0] < -0.6  # all green: the white strip lies outside the crop

"""The committed world's gates (docs/world.md), read from resources/world/gates.json.

A gate the committed build has not reached is listed in SHORTFALLS with its measured figure:
the test for it is a strict xfail, so the suite states the shortfall and turns red as soon as
a rebuild reaches the gate (then remove the entry).
"""

import pytest

from dcobench.world.gates import GATES, check

SHORTFALLS: dict[str, str] = {}  # the committed build reaches every gate


def _gate(name):
    marks = [pytest.mark.xfail(strict=True, reason=SHORTFALLS[name])] if name in SHORTFALLS else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_gate(n) for n in ("vae_psnr", "vae_concepts", "oracle",
                                                     "sdxl_attributes",
                                                     "sdxl_all_right", "siglip_top1",
                                                     "dino_retrieval")])
def test_gate(world_gates, name):
    assert check(world_gates)[name], {k: v for k, v in world_gates.items() if k != "passed"}


def test_gate_file_is_consistent(world_gates):
    assert world_gates["thresholds"] == GATES
    assert world_gates["passed"] == check(world_gates)
    assert world_gates["sdxl"]["n_prompts"] >= 200 and world_gates["sdxl"]["cfg"] == 7.5


def test_retrieval_renders_show_exactly_one_subject_each():
    """Same-instance retrieval is defined only when a render holds one instance: any second
    object is an ordinary one with a colour (subjects have none)."""
    from dcobench.world.gates import subject_renders

    scenes, ids = subject_renders(seed=0)
    assert len(scenes) == 64 and sorted(set(ids)) == list(range(8))
    for scene, k in zip(scenes, ids, strict=True):
        assert [o.subject for o in scene.objects if o.subject] == [k + 1]
        assert all(o.color is not None for o in scene.objects[1:])


def test_vae_concepts_reads_what_a_codec_keeps():
    """The vae_concepts figure on a codec that returns its input reads exactly what the oracle
    reads on the renders, and on a codec that blanks the image the subject disappears."""
    import torch

    from dcobench.models import resolve_model
    from dcobench.world.gates import vae_concepts
    from dcobench.world.oracle import load_oracle

    class Codec:  # encode/decode with the shape of diffusers' AutoencoderKL outputs
        def __init__(self, blank):
            self.blank = blank

        def encode(self, x):
            return type("E", (), {"latent_dist": type("D", (), {"mean": x})()})()

        def decode(self, z):
            return type("S", (), {"sample": torch.zeros_like(z) if self.blank else z})()

    oracle = load_oracle(resolve_model("world-oracle"))
    same = vae_concepts(Codec(blank=False), oracle, seed=0)
    assert same["subject"] > 0.9 and same["style"] > 0.9  # the oracle knows the concepts
    assert same["subject_reconstructed"] == pytest.approx(same["subject"], abs=1e-6)
    assert same["style_reconstructed"] == pytest.approx(same["style"], abs=1e-6)
    blank = vae_concepts(Codec(blank=True), oracle, seed=0)
    assert blank["subject_reconstructed"] < 0.2 and blank["style_reconstructed"] < 0.2


def test_colour_is_not_asked_where_vintage_erases_it():
    """Under vintage a red and a blue object render almost alike (sepia keeps luminance only),
    so the oracle gate drops colour on vintage rows and nowhere else."""
    from dataclasses import replace

    import numpy as np

    from dcobench.world.data import dataset
    from dcobench.world.gates import readable_target
    from dcobench.world.oracle import HEAD_INDEX, IGNORE
    from dcobench.world.render import render
    from dcobench.world.vocab import STYLES, Obj, Scene

    red = Scene("photo", "gray", "plain", (Obj("star", "red", "large", "center"),), "vintage", 3)
    blue = replace(red, objects=(Obj("star", "blue", "large", "center"),))
    gap = np.abs(render(red).astype(int) - render(blue).astype(int)).max()
    assert gap <= 2 < np.abs(render(replace(red, style="none")).astype(int)
                             - render(replace(blue, style="none")).astype(int)).max()

    _, _, target, _ = dataset(0, "oracle", 200, start=5_000_000)
    out = readable_target(target)
    vintage = target[:, HEAD_INDEX["style"]] == STYLES.index("vintage")
    assert 0 < int(vintage.sum()) < len(target)
    colour = [i for name, i in HEAD_INDEX.items() if name.endswith(".color")]
    other = [i for i in range(target.shape[1]) if i not in colour]
    assert (target[vintage][:, colour] != IGNORE).any()
    assert (out[vintage][:, colour] == IGNORE).all()
    assert (out[~vintage] == target[~vintage]).all()
    assert (out[:, other] == target[:, other]).all()

"""The committed world's gates (docs/world.md), read from resources/world/gates.json.

A gate the committed build has not reached is listed in SHORTFALLS with its measured figure:
the test for it is a strict xfail, so the suite states the shortfall and turns red as soon as
a rebuild reaches the gate (then remove the entry).
"""

import pytest

from dcobench.world.gates import GATES, check

SHORTFALLS: dict[str, str] = {  # committed build: 5,000 UNet steps of batch 32
    "sdxl_attributes": "world-sdxl object class 0.83 on held-out (class, colour) prompts (gate "
                       "0.85; every other attribute >= 0.95); 9,000 steps gave 0.81",
}


def _gate(name):
    marks = [pytest.mark.xfail(strict=True, reason=SHORTFALLS[name])] if name in SHORTFALLS else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_gate(n) for n in ("vae_psnr", "oracle", "sdxl_attributes",
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

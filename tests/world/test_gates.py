"""The committed world's gates (docs/world.md), read from resources/world/gates.json.

A gate the committed build has not reached is listed in SHORTFALLS with its measured figure:
the test for it is a strict xfail, so the suite states the shortfall and turns red as soon as
a rebuild reaches the gate (then remove the entry).
"""

import pytest

from dcobench.world.gates import GATES, check

SHORTFALLS: dict[str, str] = {  # committed build: 5,000 UNet steps of batch 32 on shared CPUs
    "sdxl_attributes": "world-sdxl under-trained: class 0.18, colour 0.16, texture 0.30, size "
                       "0.42, medium 0.54, background 0.685, position 0.67 (gate 0.85 each)",
    "sdxl_all_right": "world-sdxl under-trained: 0.0 of 200 images all right (gate 0.5)",
    "dino_retrieval": "world-dinov2 same-subject retrieval 0.83 (gate 0.9)",
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
